"""Pose: a person on the floor, striking and kicking motions (MediaPipe pose, isolated environment).

Frames are decoded here (any MediaRef: a file, an encrypted object, an S3 object), resized to a fixed
320×240 — the same for every source, so a model cannot learn resolution — and streamed to
``pose_worker.py`` running under the pose environment's Python (MediaPipe 0.10.21 needs numpy<2;
``make pose`` builds that environment in ``.venv-pose``). The worker tracks one person (the most
prominent) per frame and returns 33 landmarks.

From the track come clip features for the violence classifier and time-ranged signals:
``pose_down`` (torso near horizontal for a second or more: someone on the floor) and ``pose_strike``
(a wrist or ankle moving faster than ~6 torso lengths per second: punches, kicks, blows).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custodes.media.decode import DecodeError, sampled_frames
from custodes.media.source import MediaRef

VERSION = "pose-2"
SIZE = (320, 240)
# at most this many frames a second (sources up to it keep every frame). MediaPipe tracks a person from frame
# to frame: on a fight-surv clip it finds someone in 60 % of frames at the source's 25 fps, 31 % at 15 and
# none at 10. pose-1 asked for 10 and, through a sampler bug, got about the source's rate.
FPS = 30.0
WORKER = Path(__file__).with_name("pose_worker.py")
REPO = Path(__file__).resolve().parents[3]

L_SH, R_SH, L_HIP, R_HIP, L_WR, R_WR, L_AN, R_AN, NOSE = 11, 12, 23, 24, 15, 16, 27, 28, 0
DOWN_DEG = 60.0
STRIKE_SPEED = 6.0  # torso lengths per second

FEATURE_NAMES = [
    "pose_present", "pose_torso_deg_mean", "pose_torso_deg_max", "pose_down_frac",
    "pose_wrist_speed_max", "pose_wrist_speed_p90", "pose_wrist_speed_mean",
    "pose_ankle_speed_max", "pose_ankle_speed_p90", "pose_wrist_jerk_mean",
    "pose_hands_up_frac", "pose_head_drop_max", "pose_centre_speed_max", "pose_scale_change",
    "pose_strike_frac", "pose_visibility_mean",
]


class PoseUnavailable(Exception):
    pass


def pose_python() -> str | None:
    """The pose environment's interpreter: CUSTODES_POSE_PYTHON, else .venv-pose next to the sources."""
    env = os.environ.get("CUSTODES_POSE_PYTHON")
    candidates = [env] if env else [str(REPO / ".venv-pose" / "bin" / "python"),
                                    str(Path.home() / ".cache" / "custodes" / "pose-venv" / "bin" / "python")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None


def rgb_frames(ref: MediaRef, fps: float = FPS, size: tuple[int, int] = SIZE, start_s: float = 0.0,
               end_s: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    return sampled_frames(ref, start_s, end_s, fps=fps, size=size, fmt="rgb24")


@dataclass
class PoseTrack:
    times: np.ndarray  # (n,)
    landmarks: np.ndarray  # (n, 33, 4) x, y, z, visibility; NaN where no person was found


def track(ref: MediaRef, start_s: float = 0.0, end_s: float | None = None, fps: float = FPS) -> PoseTrack:
    py = pose_python()
    if py is None:
        raise PoseUnavailable("the pose environment is not installed (make pose)")
    w, h = SIZE
    proc = subprocess.Popen([py, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    error: Exception | None = None
    try:
        proc.stdin.write(json.dumps({"width": w, "height": h}).encode() + b"\n")
        for t, img in rgb_frames(ref, fps, SIZE, start_s, end_s):
            proc.stdin.write(struct.pack("<d", t) + img.tobytes())
    except DecodeError as exc:
        error = exc
    except BrokenPipeError as exc:
        raise PoseUnavailable("the pose worker stopped") from exc
    finally:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        proc.wait(timeout=600)
        reader.join(timeout=60)
    if proc.returncode != 0:
        raise PoseUnavailable(f"the pose worker failed (exit {proc.returncode})")
    times, marks = [], []
    for line in lines:
        d = json.loads(line)
        times.append(d["t"])
        marks.append(np.asarray(d["lm"], dtype=np.float32) if d["lm"] else np.full((33, 4), np.nan, np.float32))
    if not times and error is not None:
        raise error
    return PoseTrack(np.asarray(times, dtype=np.float64), np.stack(marks) if marks else np.zeros((0, 33, 4)))


def _mid(lm: np.ndarray, a: int, b: int) -> np.ndarray:
    return (lm[:, a, :2] + lm[:, b, :2]) / 2


def kinematics(tr: PoseTrack) -> dict[str, np.ndarray]:
    """Per-frame quantities (NaN where no pose): torso angle, limb speeds in torso lengths per second."""
    with warnings.catch_warnings():  # frames without a person are NaN rows by design
        warnings.simplefilter("ignore", RuntimeWarning)
        return _kinematics(tr)


def _kinematics(tr: PoseTrack) -> dict[str, np.ndarray]:
    lm = tr.landmarks
    if len(lm) == 0:
        return {}
    sh, hip = _mid(lm, L_SH, R_SH), _mid(lm, L_HIP, R_HIP)
    v = sh - hip
    torso = np.hypot(v[:, 0], v[:, 1])
    scale = np.nanmedian(torso) if np.isfinite(torso).any() else np.nan
    scale = max(float(scale), 0.05) if np.isfinite(scale) else 0.05
    angle = np.degrees(np.arctan2(np.abs(v[:, 0]), np.maximum(-v[:, 1], 1e-6)))  # 0 = upright, 90 = lying
    angle = np.where(-v[:, 1] < 0, 180 - angle, angle)  # upside down counts as down too
    dt = np.diff(tr.times, prepend=tr.times[0] - 1 / FPS)
    dt = np.where(dt <= 0, 1 / FPS, dt)

    def speed(idx: int) -> np.ndarray:
        p = lm[:, idx, :2]
        d = np.vstack([np.full((1, 2), np.nan), np.diff(p, axis=0)])
        return np.hypot(d[:, 0], d[:, 1]) / scale / dt

    wrist = np.fmax(speed(L_WR), speed(R_WR))
    ankle = np.fmax(speed(L_AN), speed(R_AN))
    nose_dy = np.concatenate([[np.nan], np.diff(lm[:, NOSE, 1])]) / scale / dt
    centre = np.concatenate([[np.nan], np.hypot(*np.diff(hip, axis=0).T)]) / scale / dt
    hands_up = ((lm[:, L_WR, 1] < sh[:, 1]) | (lm[:, R_WR, 1] < sh[:, 1])).astype(float)
    hands_up[~np.isfinite(lm[:, L_WR, 1])] = np.nan
    return {"angle": angle, "wrist": wrist, "ankle": ankle, "nose_dy": nose_dy, "centre": centre,
            "hands_up": hands_up, "torso": torso / scale, "vis": np.nanmean(lm[:, :, 3], axis=1)}


def _stat(x: np.ndarray, fn: Any, default: float = 0.0) -> float:
    x = x[np.isfinite(x)]
    return float(fn(x)) if len(x) else default


def clip_features(tr: PoseTrack) -> np.ndarray:
    k = kinematics(tr)
    n = len(tr.times)
    if not k or n == 0:
        return np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    present = np.isfinite(k["angle"])
    wrist, ankle = k["wrist"], k["ankle"]
    jerk = np.abs(np.diff(wrist, n=2)) if len(wrist) > 2 else np.zeros(0)
    feats = [
        present.mean(),
        _stat(k["angle"], np.mean), _stat(k["angle"], np.max), _stat(k["angle"] > DOWN_DEG, np.mean),
        _stat(wrist, np.max), _stat(wrist, lambda x: np.percentile(x, 90)), _stat(wrist, np.mean),
        _stat(ankle, np.max), _stat(ankle, lambda x: np.percentile(x, 90)), _stat(jerk, np.mean),
        _stat(k["hands_up"], np.mean), _stat(k["nose_dy"], np.max), _stat(k["centre"], np.max),
        _stat(k["torso"], np.std), _stat(np.fmax(wrist, ankle) > STRIKE_SPEED, np.mean), _stat(k["vis"], np.mean),
    ]
    return np.nan_to_num(np.asarray(feats, dtype=np.float32), nan=0.0, posinf=50.0)


def signals(tr: PoseTrack, min_down_s: float = 1.0) -> list[tuple[str, float, float, float]]:
    """(kind, start_s, end_s, value) spans: pose_down (value: mean torso angle), pose_strike (peak speed)."""
    k = kinematics(tr)
    if not k:
        return []
    out: list[tuple[str, float, float, float]] = []
    t = tr.times

    def spans(mask: np.ndarray) -> Iterator[tuple[int, int]]:
        i = 0
        while i < len(mask):
            if mask[i]:
                j = i
                while j + 1 < len(mask) and mask[j + 1]:
                    j += 1
                yield i, j
                i = j + 1
            else:
                i += 1

    down = np.nan_to_num(k["angle"], nan=0.0) > DOWN_DEG
    for a, b in spans(down):
        if t[b] - t[a] + 1 / FPS >= min_down_s:
            out.append(("pose_down", float(t[a]), float(t[b] + 1 / FPS), float(np.nanmean(k["angle"][a:b + 1]))))
    fast = np.nan_to_num(np.fmax(k["wrist"], k["ankle"]), nan=0.0)
    for a, b in spans(fast > STRIKE_SPEED):
        out.append(("pose_strike", float(t[a] - 1 / FPS), float(t[b]), float(fast[a:b + 1].max())))
    return out


def available() -> bool:
    return pose_python() is not None


if __name__ == "__main__":  # python -m custodes.analyze.pose FILE: the signals of one video
    tr = track(sys.argv[1])
    print(json.dumps({"frames": len(tr.times), "features": dict(zip(FEATURE_NAMES, clip_features(tr).tolist(),
                                                                    strict=True)),
                      "signals": signals(tr)}, indent=2))

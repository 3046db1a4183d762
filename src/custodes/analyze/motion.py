"""Motion intensity and irregularity from dense optical flow (a ViF-style descriptor).

Frames come from ``media.decode.gray_frames`` at a fixed 160x120 and 15 fps,
so every number here is in the same units whatever the source resolution or
frame rate (the fight-surv training clips differ in resolution by class: a
model fed native resolution would learn the resolution, not the fight).

Per pair of frames we measure local motion (flow minus the median, i.e. minus
camera motion), its distribution, direction disorder and camera shake; per
triple, how abruptly flow magnitudes *change* in many places at once — the
Violent Flows observation (Hassner et al. 2012). A window (2 s) of such rows
is summarised by mean, spread, maximum and lower quartile.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

VERSION = "motion-2"
FPS = 15.0
SIZE = (160, 120)
WINDOW_S = 2.0
PAIR_NAMES = ["local_mean", "local_p90", "local_p99", "camera_shake", "dir_entropy", "frame_diff",
              "mag_lt_0.5", "mag_0.5_1", "mag_1_2", "mag_2_4", "mag_4_8", "mag_ge_8"]
CHANGE_NAMES = ["vif_change_mean", "vif_frac_gt1", "vif_frac_gt2", "vif_change_p90"]
_AGGS = ("mean", "std", "max", "p25")
FEATURE_NAMES = ([f"{n}_{a}" for a in _AGGS for n in PAIR_NAMES]
                 + [f"{n}_{a}" for a in _AGGS for n in CHANGE_NAMES] + ["accel_mean"])
MAG_BINS = [0, 0.5, 1, 2, 4, 8, 1e9]


def pair_rows(frames: Iterable[tuple[float, np.ndarray]]) -> Iterator[tuple[float, np.ndarray, np.ndarray | None]]:
    """For consecutive frames: (time, pair row, change row or None for the first pair)."""
    prev_frame = None
    prev_local = None
    for t, cur in frames:
        if prev_frame is not None:
            f = cv2.calcOpticalFlowFarneback(prev_frame, cur, None, 0.5, 2, 9, 2, 5, 1.1, 0)  # type: ignore[call-overload]
            f *= FPS / 10.0  # pixels per 1/10 s, whatever the analysis rate
            glob = np.median(f.reshape(-1, 2), axis=0)
            fx, fy = f[..., 0] - glob[0], f[..., 1] - glob[1]
            local = np.hypot(fx, fy)
            hist = np.histogram(local, bins=MAG_BINS)[0] / local.size
            ang = np.arctan2(fy, fx)
            dh, _ = np.histogram(ang, bins=8, range=(-np.pi, np.pi), weights=local)
            p = dh / (dh.sum() + 1e-9)
            ent = float(-(p * np.log(p + 1e-12)).sum() / np.log(8))
            diff = float(np.abs(cur.astype(np.int16) - prev_frame.astype(np.int16)).mean())
            p90, p99 = np.percentile(local, [90, 99])
            row = np.array([local.mean(), p90, p99, np.hypot(*glob), ent, diff, *hist], dtype=np.float32)
            change = None
            if prev_local is not None:
                ch = np.abs(local - prev_local)
                change = np.array([ch.mean(), (ch > 1).mean(), (ch > 2).mean(), np.percentile(ch, 90)],
                                  dtype=np.float32)
            yield t, row, change
            prev_local = local
        prev_frame = cur


def aggregate(rows: np.ndarray, changes: np.ndarray) -> np.ndarray | None:
    """Feature vector of one window from its pair rows and change rows."""
    if len(rows) < 3 or len(changes) < 2:
        return None
    out: list[float] = []
    for m in (rows, changes):
        out += list(m.mean(0)) + list(m.std(0)) + list(m.max(0)) + list(np.percentile(m, 25, axis=0))
    out.append(float(np.abs(np.diff(rows[:, 0])).mean()))  # order matches FEATURE_NAMES
    return np.asarray(out, dtype=np.float32)


def window_features(times: np.ndarray, rows: np.ndarray, changes: np.ndarray, change_times: np.ndarray,
                    start: float, end: float) -> np.ndarray | None:
    sel = (times >= start) & (times < end)
    csel = (change_times >= start) & (change_times < end)
    return aggregate(rows[sel], changes[csel])


def clip_features(frames: Iterable[tuple[float, np.ndarray]]) -> np.ndarray | None:
    """One feature vector for a whole short clip (how the fight-surv clips are used)."""
    ts, rs, cts, cs = [], [], [], []
    for t, r, c in pair_rows(frames):
        ts.append(t)
        rs.append(r)
        if c is not None:
            cts.append(t)
            cs.append(c)
    if not rs or not cs:
        return None
    return aggregate(np.asarray(rs), np.asarray(cs))

"""Experiment: camera motion as an affine field (shift, roll, zoom, shear) instead of one median shift.

Today's motion pass subtracts the median flow (a pan or a bob), but a body camera also rolls and zooms as
its wearer walks, and the frame difference feature is taken without any compensation. This script patches
``MotionTrack.add_frame`` (no change to the package) so that
  - the flow has a robust affine fit subtracted (least squares on every 4th pixel, refitted on the 70 % of
    points closest to the first fit: people moving are a minority of the frame), and
  - the frame difference is taken against the previous frame warped by that camera motion,
then scores calm and fight clips of fight-surv, still and with simulated wearer motion (triage/wearer_motion.py),
with the shipped motion model, both ways. Run: .venv/bin/python experiments/camera_motion/affine.py [N]

It rewrites motion-6's ``add_frame`` (the package at commit 40b8d2a, with its motion-6 models); motion-7
ships the ``phase`` mode in the package itself, and ``cross_source.py`` measures its parts.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from custodes.analyze import motion  # noqa: E402
from custodes.media.decode import gray_frames  # noqa: E402
from custodes.triage import score  # noqa: E402
from custodes.triage import wearer_motion as bodyworn  # noqa: E402

_grid: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def camera_field(flow_x: np.ndarray, flow_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = flow_x.shape
    if (h, w) not in _grid:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        xs, ys = xx[::4, ::4].ravel(), yy[::4, ::4].ravel()
        design = np.stack([np.ones_like(xs), xs - w / 2, ys - h / 2], axis=1)
        _grid[(h, w)] = (xx - w / 2, yy - h / 2, design)
    xx, yy, design = _grid[(h, w)]
    u, v = flow_x[::4, ::4].ravel(), flow_y[::4, ::4].ravel()
    keep = np.ones(len(u), bool)
    for _ in range(2):
        cu, *_ = np.linalg.lstsq(design[keep], u[keep], rcond=None)
        cv, *_ = np.linalg.lstsq(design[keep], v[keep], rcond=None)
        res = np.hypot(u - design @ cu, v - design @ cv)
        keep = res <= np.quantile(res, 0.7)
    mx = (cu[0] + cu[1] * xx + cu[2] * yy).astype(np.float32)
    my = (cv[0] + cv[1] * xx + cv[2] * yy).astype(np.float32)
    # prev -> cur as a forward affine map of pixel coordinates (centred coordinates shifted back)
    a = np.array([[1 + cu[1], cu[2], 0.0], [cv[1], 1 + cv[2], 0.0]], np.float64)
    c = np.array([w / 2, h / 2])
    a[:, 2] = np.array([cu[0], cv[0]]) + c - a[:, :2] @ c
    return mx, my, a


_ORIGINAL = motion.MotionTrack.add_frame
STABILISE = """flow_x, flow_y = expander.flow_planes(prev_exp, cur_exp, win, iterations=2)
    if stabilise:
        _x, _y, _a = camera_field(flow_x, flow_y)
        prev = cv2.warpAffine(prev, _a, (cur.shape[1], cur.shape[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        flow_x, flow_y = expander.flow_planes(expander.expand(prev), cur_exp, win, iterations=2)
"""


# the first estimate from phase correlation (a whole-frame shift, ~1 ms at this size) instead of a first flow:
# the previous frame shifted onto the current one, expanded again, and the flow computed once on the aligned pair
PHASE = """_win = _hann(prev.shape)
    (_dx, _dy), _resp = cv2.phaseCorrelate(prev.astype(np.float32), cur.astype(np.float32), _win)
    if stabilise and _resp > 0.05 and abs(_dx) + abs(_dy) > 0.5:
        prev = cv2.warpAffine(prev, np.float32([[1, 0, _dx], [0, 1, _dy]]), (cur.shape[1], cur.shape[0]),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        prev_exp = expander.expand(prev)
    flow_x, flow_y = expander.flow_planes(prev_exp, cur_exp, win, iterations=2)
"""
PHASE_INIT = """_win = _hann(prev.shape)
    (_dx, _dy), _resp = cv2.phaseCorrelate(prev.astype(np.float32), cur.astype(np.float32), _win)
    _init = (np.full(prev.shape, _dx, np.float32), np.full(prev.shape, _dy, np.float32))
    flow_x, flow_y = flow_from(expander, prev_exp, cur_exp, win, _init)
"""
_hanns: dict[tuple[int, ...], np.ndarray] = {}


def _hann(shape: tuple[int, ...]) -> np.ndarray:
    if shape not in _hanns:
        _hanns[shape] = cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F)
    return _hanns[shape]


INIT = """flow_x, flow_y = flow_from(expander, prev_exp, cur_exp, win, getattr(self, "_cam_prev", None))
"""


def flow_from(ex, prev, cur, winsize, init, iterations=2):
    """Expander.flow_planes started from ``init`` (the previous pair's camera field) instead of zero."""
    from custodes.analyze.farneback import _BORDER, _blur_solve, _update_matrices

    up = np.float32(1.0 / ex.params.pyr_scale)
    fx = fy = None
    n = len(ex.levels)
    for k, (R0, R1) in enumerate(zip(reversed(prev), reversed(cur), strict=True)):
        h, w = R0.shape[1:]
        if fx is None:
            if init is None:
                fx = np.zeros((h, w), dtype=np.float32)
                fy = np.zeros((h, w), dtype=np.float32)
            else:
                scale = np.float32(ex.params.pyr_scale ** (n - 1 - k))
                fx = cv2.resize(init[0], (w, h), interpolation=cv2.INTER_AREA) * scale
                fy = cv2.resize(init[1], (w, h), interpolation=cv2.INTER_AREA) * scale
        else:
            fx = cv2.resize(fx, (w, h), interpolation=cv2.INTER_LINEAR) * up
            fy = cv2.resize(fy, (w, h), interpolation=cv2.INTER_LINEAR) * up
        M = np.empty((5, h, w), dtype=np.float32)
        _update_matrices(R0, R1, fx, fy, M, _BORDER, 0, h)
        for i in range(iterations):
            _blur_solve(M, fx, fy, winsize, R0, R1, _BORDER, i < iterations - 1)
    return fx, fy


def patched_add_frame(stabilise: bool = False, init: bool = False, first: str = "flow", affine: bool = True) -> None:
    src = textwrap.dedent(inspect.getsource(_ORIGINAL))
    block = {"flow": INIT if init else STABILISE, "phase": PHASE, "phaseinit": PHASE_INIT}[first]
    src = src.replace("flow_x, flow_y = expander.flow_planes(prev_exp, cur_exp, win, iterations=2)\n", block)

    old_fx = "fx = flow_x - np.median(flow_x[::4, ::4]).astype(np.float32)"
    old_fy = "fy = flow_y - np.median(flow_y[::4, ::4]).astype(np.float32)"
    old_diff = "diff = float(cv2.absdiff(cur, prev).mean())"
    assert old_fx in src and old_fy in src and old_diff in src
    if affine:  # else (phasemedian) the shift alone, then today's median and frame difference
        src = src.replace(old_fx, "cam_x, cam_y, cam_a = camera_field(flow_x, flow_y)\n    fx = flow_x - cam_x")
        src = src.replace(old_fy, "fy = flow_y - cam_y")
        src = src.replace(old_diff, "diff = float(cv2.absdiff(cur, cv2.warpAffine(prev, cam_a, (cur.shape[1], "
                                    "cur.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)).mean())")
    if init:
        assert "fy = flow_y - cam_y" in src
        src = src.replace("fy = flow_y - cam_y", "fy = flow_y - cam_y\n    self._cam_prev = (cam_x, cam_y)")
    ns = dict(vars(motion))
    ns["camera_field"] = camera_field
    ns["cv2"] = cv2
    ns["stabilise"] = stabilise
    ns["flow_from"] = flow_from
    ns["_hann"] = _hann
    exec(compile(src, "affine_add_frame", "exec"), ns)
    motion.MotionTrack.add_frame = ns["add_frame"]


def features(path: Path, moved: bool) -> np.ndarray | None:
    frames = gray_frames(path, fps=motion.FPS, size=motion.SIZE)
    if moved:
        import os
        parts = os.environ.get("PARTS")
        frames = bodyworn.apply(frames, path.name, **({"parts": parts.split(",")} if parts else {}))
    return motion.clip_features(frames)


def run(n: int) -> None:
    from sklearn.metrics import roc_auc_score

    data = Path("/work/shared/data/fight-surv")
    fights = sorted((data / "fight").glob("*.mp4"))[:: max(1, 150 // n)][:n]
    calm = sorted((data / "noFight").glob("*.mp4"))[:: max(1, 150 // n)][:n]
    model = score.load_model()
    out = {}
    modes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["median", "affine", "stabilised"]
    for mode in modes:
        if mode != "median":
            patched_add_frame(stabilise=mode in ("stabilised", "phase", "phasemedian"), init=mode == "init",
                              first="phase" if mode == "phasemedian" else mode if mode in ("phase", "phaseinit")
                              else "flow", affine=mode != "phasemedian")
        for moved in (False, True):
            X = [features(p, moved) for p in fights + calm]
            ok = [i for i, x in enumerate(X) if x is not None]
            p = model.predict(np.stack([X[i] for i in ok]))
            y = np.array([1] * len(fights) + [0] * len(calm))[ok]
            out[(mode, moved)] = (roc_auc_score(y, p), p[y == 1].mean(), p[y == 0].mean(),
                                  (p[y == 0] >= score.SEGMENT_THRESHOLD).mean())
            auc, fight_p, calm_p, flagged = out[(mode, moved)]
            print(mode, "moved" if moved else "still", f"AUC {auc:.3f}  fight mean p {fight_p:.3f}  calm mean p "
                  f"{calm_p:.3f}  calm >= threshold {flagged:.2f}", flush=True)


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 30)

"""Motion intensity, irregularity and *direction changes* from dense optical flow.

Frames come from ``media.decode.gray_frames`` at a fixed 240x180, so every
number here is in the same units whatever the source resolution (the
fight-surv training clips differ in resolution by class: a model fed native
resolution would learn the resolution, not the fight), and at the source's own
frame rate up to 30 fps (``FPS``; a 60 fps body camera gives every other
frame). Not fewer: the back-and-forth of a blow lasts a tenth of a second, and
resampled to a true 15 fps the grouped AUC on fight-surv falls from 0.89 to
0.87. Flow is per frame pair, not per second: scaled by the frames' time
apart it falls further (0.88 at 30 fps, 0.86 at 15) — the training clips run
at 10-30 fps in both classes, and the model has learned that mixture.

Per pair of frames we measure, over the whole frame, local motion (flow minus
camera motion, which is not itself a feature), its distribution and direction
disorder; per triple, how abruptly flow magnitudes
*change* in many places at once — the Violent Flows observation (Hassner et
al. 2012). Flow is in pixels (at 240 px width) per analysed frame pair.

Per pair we also keep the mean flow vector, magnitude, change of flow and
share of pixels moving > 1 px in each 15 px cell (a 16x12 grid), and
summarise a window at three cell sizes (15, 30, 60 px). What separates a fight from people walking, in the same
scene and at any distance, is *where motion turns back on itself*: the share
of moving cells whose mean flow reverses from one frame to the next (at lags
of 1–5 frames), how little of a cell's motion adds up to a net drift over
8 and 15 frames, and how evenly a cell's motion spreads over eight directions and
their opposites. These are ratios, so a brawl far from the camera counts like
one close to it. Beside them, how concentrated motion is: the intensity of the
most moving cells against the rest (a fight is a knot of motion). On
fight-surv they lift the grouped cross-validated ROC AUC from 0.80 (the
whole-frame features alone) to 0.90 (``make bench``).

The flow is OpenCV's Farneback algorithm (pyramid scale 0.5, ``levels=2``, 2 iterations, polynomial 5/1.1)
computed by ``analyze.farneback``, which expands each frame once for both of its pairs: the same flow to
float rounding at ~0.6 of ``cv2.calcOpticalFlowFarneback``'s CPU, which was 70 % of the full triage pass.

Camera motion (motion-7). A body camera's wearer walks, sways and turns: the whole frame moves by
several pixels per pair, and Farneback's error grows with the displacement, so subtracting any camera model
from the flow afterwards leaves the error in (experiments/camera_motion: calm clips with simulated wearer
motion flagged 77 % with the median subtracted, 80 % with an affine field). What helps is computing the flow
on frames aligned first. The first estimate is cheap: a whole-frame shift by phase correlation
(``frame_shift``, ~1.5 ms a pair), applied from 2 px (``SHIFT_MIN_PX``: smaller camera motion, such as a
broadcast camera following play, Farneback measures well, and aligning it cost AUC across sources) and
trusted only where most of a 3x3 grid of tiles agree with it, because in a plain room the correlation locks
onto the people (on a synthetic struggle, with shifts from 0.5 px, it shifted 58 of 59 pairs by the
fighters' own motion; with the tiles, 8 pairs by at most 3.3 px). The previous frame is shifted and
expanded again, and what the shift leaves — roll, zoom, the rest of a pan — is a robust affine field fitted
to the flow (``camera_field``), subtracted from it; the frame difference is taken against the previous frame
warped by that field. LightGBM trained on clean fight-surv folds and scored on the held-out clips with simulated
wearer motion: AUC 0.747 -> 0.778, calm clips at p >= 0.5 87 % -> 78 %; across sources unchanged
(experiments/camera_motion/cross_source.py).

Grain is measured as it comes (``noise_sigma``) and frames grainier than the
training clips are smoothed before flow (``smoothing_for``): unsmoothed, the
random flow of a night camera's noise turns back on itself like a fight.
"""

from __future__ import annotations

import bisect
import functools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from custodes.analyze import farneback

VERSION = "motion-7"
# the most frames a second that are analysed; sources up to it keep every frame. motion-5 and before asked for
# 15 and, through a sampler that let every frame within half a slot through, got about the source's rate up
# to 30 (dropping a frame here and there): motion-6 does on purpose and exactly what that did by accident
FPS = 30.0
SIZE = (240, 180)
# the model learns from fight-surv clips of 2 s (median 2.01 s, 90 % under 2.7 s): triage scores windows of
# that length, so the window statistics (max, std, spread, drift) mean what they meant in training
WINDOW_S = 2.0
CELL_PX = 15
# Farneback's averaging window (px at SIZE). 9, not OpenCV's usual 11-15: a fight seen from a ceiling camera
# is a few people 20-30 px tall here, and a wider window smears their limbs into one blob. Same cost. On
# fight-surv (grouped CV, 6 shuffles not used to choose it) 9: 0.900, 11: 0.893 (a sweep of 5/7/9/11 peaked
# at 9); chosen inside each training fold instead (nested CV: 9 won 20 of 30 folds) 0.895, which is the
# honest figure for "a window picked on this data".
FLOW_WINSIZE = 9
# ...but on frames that were smoothed for grain the wider window holds better (robustness bench, night camera:
# 0.84 and calm clips' mean p 0.32 with 11 there, 0.83 and 0.36 with 9 everywhere); the smoothing already
# took the fine detail that 9 is for
GRAINY_WINSIZE = 11
MOVING = 0.3  # px per frame pair at 240 px width: a cell moving less is noise, not motion
NAN = float("nan")
GRID = (SIZE[1] // CELL_PX, SIZE[0] // CELL_PX)  # rows, columns
# No camera-motion feature: the training footage is fixed CCTV, the footage triaged is often a body
# camera, whose wearer moves it all the time — what a fixed camera's "shake" taught would not transfer.
PAIR_NAMES = ["local_mean", "local_p90", "local_p99", "dir_entropy", "frame_diff",
              "mag_lt_0.5", "mag_0.5_1", "mag_1_2", "mag_2_4", "mag_4_8", "mag_ge_8"]
CHANGE_NAMES = ["vif_change_mean", "vif_frac_gt1", "vif_frac_gt2", "vif_change_p90"]
_AGGS = ("mean", "std", "max", "p25")
CELL_LEVELS = (1, 2, 4)  # cells of 15, 30 and 60 px
REVERSAL_LAGS = (1, 2, 3, 5)
DRIFT_WINDOWS = (8, 15)  # frames
ACTIVE_LEVELS = (0.15, 0.6, 1.2)
_CELL_NAMES = ([f"{n}_lag{lag}" for lag in REVERSAL_LAGS for n in ("reversal_w", "cos_w", "strong_reversal",
                                                                   "reversal_active")]
               + [f"{n}_{w}f" for w in DRIFT_WINDOWS for n in ("drift_w", "drift_top", "drift_min")]
               + ["accel_rel", "cell_dir_entropy_w", "cell_dir_entropy_top0", "cell_dir_entropy_top1",
                  "opposite_w", "opposite_top0", "opposite_top4"]
               + [f"{n}_{a}" for a in ACTIVE_LEVELS for n in ("reversal", "active")]
               + [f"top{j}_{n}" for j in (0, 1) for n in ("motion_mean", "motion_std", "motion_max", "moving_1px")]
               + ["motion_peak_ratio", "cells_moving"])
CELL_FEATURE_NAMES = [f"c{CELL_PX * k}_{n}" for k in CELL_LEVELS for n in _CELL_NAMES]
FEATURE_NAMES = ([f"{n}_{a}" for a in _AGGS for n in PAIR_NAMES]
                 + [f"{n}_{a}" for a in _AGGS for n in CHANGE_NAMES] + ["accel_mean"] + CELL_FEATURE_NAMES)
# Sensor noise (a night camera's grain) makes dense flow see motion everywhere, and its random directions
# look like the reversals of a fight: calm clips with white noise of std 8 scored like fights (bench: AUC
# 0.90 -> 0.72). Frames noisier than the training clips are smoothed towards NOISE_TARGET. Up to NOISE_FLOOR
# nothing is smoothed: the model learned that much grain (its clips read 0 for 3 in 4, at most 2.5 over a
# clip), and clean footage is analysed exactly as it was trained on. Above it, the smoothing grows from 0,
# so that a camera whose grain hovers around the floor does not flip between two analyses.
NOISE_FLOOR = 2.5  # grey levels (std) at SIZE
NOISE_TARGET = 0.3  # chosen on the robustness bench (1.5, 1.0, 0.7, 0.5, 0.3 tried: lower was better on noisy footage)
# ... up to a point: smoothed by 7 px, white noise of std 8 loses the fights with the grain (bench AUC 0.88 at
# 4.3 px, 0.78 at 7 px); what grain is left beyond this is left to the caveat in the queue
MAX_SMOOTHING = 3.5  # px at SIZE
NOISE_EVERY = 5  # frame pairs between two noise estimates: noise changes with the light, not frame by frame
NOISE_MEMORY = 9  # estimates whose median sets the smoothing (3 s): one busy frame pair does not switch it
_LAPLACE_DIFF = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
MAG_EDGES = np.array([0.5, 1, 2, 4, 8], dtype=np.float32)  # bins: <0.5, 0.5–1, 1–2, 2–4, 4–8, ≥8


def _spatial_noise(frame: np.ndarray) -> float:
    # Immerkaer (1996): a mask that cancels smooth image content; its response to white noise has std 6 sigma
    lap = np.abs(cv2.filter2D(frame, cv2.CV_16S, _LAPLACE_DIFF))[1:-1:2, 1:-1:2].ravel()
    return float(np.partition(lap, lap.size // 2)[lap.size // 2]) / (6 * 0.6745)


def noise_sigma(prev: np.ndarray, cur: np.ndarray) -> float:
    """Std of the sensor noise in ``cur`` (grey levels): the smaller of two estimates that fail in opposite
    ways, each a median so that the textured or moving part of the frame does not count.

    Spatial: the Immerkaer estimate, inflated by texture. Taken at full and at half resolution (times 4,
    what halving does to white noise), the larger: grain that went through H.264 is blotchy, not white,
    and the full-resolution mask alone reads a night camera's grain at ~2/3 of what it does to flow.
    Temporal: consecutive frames differ by noise (std sigma * sqrt 2) where nothing moves; motion
    inflates it."""
    spatial = max(_spatial_noise(cur), 4.0 * _spatial_noise(cv2.pyrDown(cur)))
    hist = np.bincount(cv2.absdiff(cur, prev).ravel(), minlength=256).cumsum()
    temporal = float(np.searchsorted(hist, hist[-1] / 2)) / (0.6745 * np.sqrt(2))
    return min(spatial, temporal)


# frame_shift: a phase correlation's peak below this is noise (a still or textureless frame), a shift
# under SHIFT_MIN_PX is left to the flow, and at least SHIFT_TILES_AGREE of the 3x3 tiles must find the
# same shift within SHIFT_AGREE_PX: the camera moves every tile, a person only those they are in.
# SHIFT_MIN_PX is the trade between the two measures of issue 24 (experiments/camera_motion/cross_source.py,
# LightGBM; cross-source AUC fight-surv -> hockey / hockey -> fight-surv, and body-worn AUC / calm clips
# at p >= 0.5): no shift (motion-6) 0.898 / 0.815, 0.747 / 87 %; from 0.5 px 0.842 / 0.788, 0.834 / 63 %;
# from 1 px 0.870 / 0.816, 0.804 / 67 %; from 2 px 0.895 / 0.828, 0.778 / 78 %. A broadcast camera that
# follows the play moves ~1 px a pair (hockey), and aligning those pairs costs more across sources than it
# gains on a wearer's walk; Farneback measures such shifts well by itself. 2 px: nothing lost across sources
SHIFT_RESPONSE = 0.05
SHIFT_MIN_PX = 2.0
SHIFT_TILES = 3
SHIFT_TILES_AGREE = 5
SHIFT_AGREE_PX = 2.0
# camera_field: the share of sampled flow vectors kept for the second fit (people are a minority of the frame)
CAMERA_INLIERS = 0.7


@functools.lru_cache(maxsize=8)
def _hann(height: int, width: int) -> np.ndarray:
    return cv2.createHanningWindow((width, height), cv2.CV_32F)


def _phase(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    (dx, dy), response = cv2.phaseCorrelate(a, b, _hann(*a.shape))
    return float(dx), float(dy), float(response)


def frame_shift(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """The whole-frame shift (px) that carries ``prev`` onto ``cur`` when the camera moved, else (0, 0).

    Phase correlation of the whole frame, kept when its peak is clear, the shift is worth applying, and most
    tiles of a 3x3 grid find the same shift on their own."""
    a, b = prev.astype(np.float32), cur.astype(np.float32)
    dx, dy, response = _phase(a, b)
    if response <= SHIFT_RESPONSE or np.hypot(dx, dy) <= SHIFT_MIN_PX:
        return 0.0, 0.0
    h, w = a.shape
    th, tw = h // SHIFT_TILES, w // SHIFT_TILES
    tiles = SHIFT_TILES * SHIFT_TILES
    agree = disagree = 0
    # tiles in order until the count is decided either way: the answer of all nine, at 5 to 9 tiles' cost
    for k in range(tiles):
        i, j = divmod(k, SHIFT_TILES)
        tile = np.s_[i * th:(i + 1) * th, j * tw:(j + 1) * tw]
        tx, ty, _ = _phase(np.ascontiguousarray(a[tile]), np.ascontiguousarray(b[tile]))
        if np.hypot(tx - dx, ty - dy) <= SHIFT_AGREE_PX:
            agree += 1
            if agree >= SHIFT_TILES_AGREE:
                return dx, dy
        else:
            disagree += 1
            if disagree > tiles - SHIFT_TILES_AGREE:
                break
    return 0.0, 0.0


@functools.lru_cache(maxsize=4)
def _camera_design(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred column and row coordinates, and the affine design matrix of every 4th pixel of every 4th row."""
    xs = np.arange(width, dtype=np.float32) - width / 2
    ys = np.arange(height, dtype=np.float32) - height / 2
    gx, gy = np.meshgrid(xs[::4], ys[::4])
    design = np.stack([np.ones(gx.size, np.float32), gx.ravel(), gy.ravel()], axis=1).astype(np.float64)
    return xs, ys, design


def _quantile(a: np.ndarray, q: float) -> float:
    """``np.quantile(a, q)`` (linear interpolation, the same arithmetic to the last bit) from a partial sort:
    a sixth of its cost, which was half of ``camera_field``'s."""
    pos = (a.size - 1) * q
    lo = int(np.floor(pos))
    hi = min(lo + 1, a.size - 1)
    part = np.partition(a, (lo, hi))
    below, above, g = float(part[lo]), float(part[hi]), pos - lo
    # numpy's _lerp: from the nearer end, so that g = 1 gives ``above`` exactly
    return below + (above - below) * g if g < 0.5 else above - (above - below) * (1 - g)


def camera_field(flow_x: np.ndarray, flow_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera motion in a flow field as an affine field (shift, roll, zoom, shear): the flow's x and y planes
    of that field, and the 2x3 map that carries the previous frame's pixels onto the current one.

    Least squares on every 4th pixel, refitted on the CAMERA_INLIERS closest to the first fit, so that
    people moving on their own do not pull it."""
    h, w = flow_x.shape
    xs, ys, design = _camera_design(h, w)
    u = flow_x[::4, ::4].ravel().astype(np.float64)
    v = flow_y[::4, ::4].ravel().astype(np.float64)
    keep = slice(None)
    for _ in range(2):  # normal equations of a 3-parameter fit: a fraction of lstsq's cost
        d = design[keep]
        gram = d.T @ d
        cu = np.linalg.solve(gram, d.T @ u[keep])
        cv = np.linalg.solve(gram, d.T @ v[keep])
        res = np.hypot(u - design @ cu, v - design @ cv)
        keep = res <= _quantile(res, CAMERA_INLIERS)
    # the fields broadcast from a column and a row: a + b x + c y
    mx = ((cu[0] + cu[2] * ys)[:, None] + (cu[1] * xs)[None, :]).astype(np.float32)
    my = ((cv[0] + cv[2] * ys)[:, None] + (cv[1] * xs)[None, :]).astype(np.float32)
    a = np.array([[1 + cu[1], cu[2], 0.0], [cv[1], 1 + cv[2], 0.0]], np.float64)
    c = np.array([w / 2, h / 2])
    a[:, 2] = np.array([cu[0], cv[0]]) + c - a[:, :2] @ c
    return mx, my, a


def shifted(frame: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``frame`` moved by (``dx``, ``dy``) px, as the motion pass aligns a pair by ``frame_shift``."""
    return _warp(frame, np.array([[1, 0, dx], [0, 1, dy]], np.float64))


def _warp(frame: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``frame`` carried by the forward 2x3 map ``m`` (edges repeated where the camera brought in new ground)."""
    return cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


THUMB = (32, 24)


def _thumb(frame: np.ndarray) -> np.ndarray:
    """The frame's layout at 32x24, mean removed: what stays when detail and brightness are taken away."""
    t = cv2.resize(frame, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
    return t - t.mean()


def layout_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two thumbnails (``_thumb``): near 1 for two moments of one scene, even with people moving
    in it (on the 300 fight-surv clips the lowest of a clip's pairs is above 0.9 for 95 % of clips), near 0
    across a cut to another camera."""
    return float((a * b).sum() / (np.sqrt(float((a * a).sum()) * float((b * b).sum())) + 1e-6))


def smoothing_for(noise: float) -> float:
    """Gaussian sigma (px) for frames with noise of std ``noise``, rounded to 0.1 px; 0 up to NOISE_FLOOR.

    A Gaussian of sigma s divides white noise by 2 sqrt(pi) s, so s = noise / (2 sqrt(pi) NOISE_TARGET)
    brings it down to the target. Taking the floor's own s off in quadrature makes the smoothing start at
    0 at the floor and approach that s on grainier footage, up to MAX_SMOOTHING."""
    if noise <= NOISE_FLOOR:
        return 0.0
    k = 2 * np.sqrt(np.pi) * NOISE_TARGET
    return round(min(MAX_SMOOTHING, float(np.sqrt((noise / k) ** 2 - (NOISE_FLOOR / k) ** 2))), 1)


@functools.lru_cache(maxsize=4)
def _expander(width: int, height: int) -> farneback.Expander:
    return farneback.Expander((width, height), farneback.Params(pyr_scale=0.5, levels=2, poly_n=5, poly_sigma=1.1))


def _smooth(frame: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), sigma) if sigma else frame


@dataclass
class MotionTrack:
    """Per frame pair: whole-frame row, change row (from the second pair on) and cell statistics."""

    times: list[float] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    change_times: list[float] = field(default_factory=list)
    changes: list[np.ndarray] = field(default_factory=list)
    cells: list[np.ndarray] = field(default_factory=list)  # (5, rows, cols): vx, vy, magnitude, |Δflow|, share > 1 px
    noise_times: list[float] = field(default_factory=list)
    noise: list[float] = field(default_factory=list)  # grain (grey levels): first pairs, then every NOISE_EVERY
    smoothing: float = 0.0  # Gaussian sigma (px) applied to frames before flow now
    _recent_noise: deque[float] = field(default_factory=lambda: deque(maxlen=NOISE_MEMORY))
    _prev_raw: np.ndarray | None = None
    _prev_frame: np.ndarray | None = None
    _prev_expansion: list[np.ndarray] | None = None  # _prev_frame's polynomial expansions (farneback.Expander)
    _prev_flow: tuple[np.ndarray, np.ndarray] | None = None
    _prev_local: np.ndarray | None = None
    # per pair, how alike the two frames' layouts are (``layout_similarity``): not a model feature, it tells a
    # scene cut from motion (``analyze.scene_cuts``)
    similarity: list[float] = field(default_factory=list)
    _prev_thumb: np.ndarray | None = None

    def add_frame(self, t: float, cur: np.ndarray) -> None:
        prev_raw, self._prev_raw = self._prev_raw, cur
        thumb, prev_thumb = _thumb(cur), self._prev_thumb
        self._prev_thumb = thumb
        if prev_raw is None or prev_thumb is None:
            return
        self.similarity.append(layout_similarity(prev_thumb, thumb))
        # every pair until NOISE_MEMORY estimates are in (a clip's first busy frame pair alone must not decide)
        if len(self.times) < NOISE_MEMORY or len(self.times) % NOISE_EVERY == 0:
            n = noise_sigma(prev_raw, cur)
            self.noise_times.append(t)
            self.noise.append(n)
            self._recent_noise.append(n)
            s = smoothing_for(float(np.median(self._recent_noise)))
            if s != self.smoothing or self._prev_frame is None:
                self.smoothing = s
                self._prev_frame = _smooth(prev_raw, s)  # both frames of a pair smoothed alike
                self._prev_expansion = None
        prev = self._prev_frame
        assert prev is not None  # set by the estimate that the first pair always makes
        cur = self._prev_frame = _smooth(cur, self.smoothing)
        win = GRAINY_WINSIZE if self.smoothing else FLOW_WINSIZE
        # Farneback flow as cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 2, win, 2, 5, 1.1, 0) gives it,
        # with each frame's polynomial expansion computed once instead of once in each of its two pairs
        expander = _expander(prev.shape[1], prev.shape[0])
        prev_exp = self._prev_expansion
        # a moving camera: the previous frame shifted onto this one first (and expanded again), so the flow
        # measures what the shift leaves, which it measures well
        dx, dy = frame_shift(prev, cur)
        if dx or dy:
            prev = shifted(prev, dx, dy)
            prev_exp = None
        if prev_exp is None:
            prev_exp = expander.expand(prev)
        cur_exp = self._prev_expansion = expander.expand(cur)
        flow_x, flow_y = expander.flow_planes(prev_exp, cur_exp, win, iterations=2)
        # camera motion from every 4th pixel, quantiles and histograms from every 2nd (of every 2nd row):
        # the same statistics to within noise at a fraction of the sorting (they were 40 % of the pass)
        cam_x, cam_y, cam_map = camera_field(flow_x, flow_y)
        fx, fy = flow_x - cam_x, flow_y - cam_y
        local = cv2.magnitude(fx, fy)  # = np.hypot to 1e-7, 15x faster
        sub = local[::2, ::2].ravel()
        # share in each magnitude bin from the counts at or above each edge: the same as binning every value
        # with searchsorted, at a quarter of the cost
        above = np.array([sub.size, *(np.count_nonzero(sub >= e) for e in MAG_EDGES), 0])
        hist = (above[:-1] - above[1:]) / sub.size
        ang_bin = ((np.arctan2(fy[::2, ::2], fx[::2, ::2]).ravel() + np.pi) * (8 / (2 * np.pi))).astype(np.intp)
        dh = np.bincount(np.minimum(ang_bin, 7), weights=sub, minlength=8)
        p = dh / (dh.sum() + 1e-9)
        ent = float(-(p * np.log(p + 1e-12)).sum() / np.log(8))
        # exact |cur - prev| of uint8 frames, no widening, the camera's motion taken out
        diff = float(cv2.absdiff(cur, _warp(prev, cam_map)).mean())
        k90, k99 = int(0.90 * (sub.size - 1)), int(0.99 * (sub.size - 1))
        part = np.partition(sub, (k90, k99))
        self.times.append(t)
        self.rows.append(np.array([local.mean(), part[k90], part[k99], ent, diff, *hist], dtype=np.float32))
        if self._prev_local is not None:
            ch = cv2.absdiff(local, self._prev_local)
            chs = ch[::2, ::2].ravel()
            k = int(0.90 * (chs.size - 1))
            self.change_times.append(t)
            self.changes.append(np.array([ch.mean(), np.count_nonzero(ch > 1) / ch.size,
                                          np.count_nonzero(ch > 2) / ch.size, np.partition(chs, k)[k]],
                                         dtype=np.float32))
        dv = (np.zeros_like(local) if self._prev_flow is None
              else cv2.magnitude(fx - self._prev_flow[0], fy - self._prev_flow[1]))
        # cell means by area resampling: the frame is exactly GRID cells of CELL_PX, so this is the plain
        # mean of each cell, several times faster than reshaping and averaging in numpy
        cell_size = (GRID[1], GRID[0])
        self.cells.append(np.stack([cv2.resize(np.ascontiguousarray(a, dtype=np.float32), cell_size,
                                               interpolation=cv2.INTER_AREA)
                                    for a in (fx, fy, local, dv, (local > 1.0).astype(np.float32))]))
        self._prev_local = local
        self._prev_flow = (fx, fy)

    def noise_level(self, start: float = -np.inf, end: float = np.inf) -> float:
        """Median sensor-noise estimate over [start, end) (the latest before it when none falls inside)."""
        i0, i1 = bisect.bisect_left(self.noise_times, start), bisect.bisect_left(self.noise_times, end)
        if i1 > i0:
            return float(np.median(self.noise[i0:i1]))
        return self.noise[i1 - 1] if i1 > 0 else 0.0

    def pair_range(self, start: float = -np.inf, end: float = np.inf) -> tuple[int, int]:
        """Indices [i0, i1) of the frame pairs in [start, end)."""
        return bisect.bisect_left(self.times, start), bisect.bisect_left(self.times, end)

    def window_features(self, start: float = -np.inf, end: float = np.inf) -> np.ndarray | None:
        """Feature vector (``FEATURE_NAMES`` order) of the pairs in [start, end); None when too few."""
        # times only grow, so a window is a slice found by bisection (an hour-long span has 54,000 pairs)
        i0, i1 = self.pair_range(start, end)
        j0, j1 = bisect.bisect_left(self.change_times, start), bisect.bisect_left(self.change_times, end)
        if i1 - i0 < 3 or j1 - j0 < 2:
            return None
        whole = aggregate(np.asarray(self.rows[i0:i1]), np.asarray(self.changes[j0:j1]))
        return np.concatenate([whole, cell_features(np.stack(self.cells[i0:i1]))]).astype(np.float32)


def aggregate(rows: np.ndarray, changes: np.ndarray) -> np.ndarray:
    """Whole-frame features of one window from its pair rows and change rows."""
    out: list[float] = []
    for m in (rows, changes):
        out += list(m.mean(0)) + list(m.std(0)) + list(m.max(0)) + list(np.percentile(m, 25, axis=0))
    out.append(float(np.abs(np.diff(rows[:, 0])).mean()))  # order matches FEATURE_NAMES
    return np.asarray(out, dtype=np.float32)


def _pool(cells: np.ndarray, k: int) -> np.ndarray:
    t, c, h, w = cells.shape
    return cells[:, :, :h // k * k, :w // k * k].reshape(t, c, h // k, k, w // k, k).mean((3, 5))


def _ratio(num: float, den: float) -> float:
    return num / den if den > 1e-6 else NAN


def _level_features(cells: np.ndarray) -> list[float]:
    """Ratios over *moving* cells only (NaN when nothing moves): flow noise in a still scene has no
    direction worth measuring, and LightGBM treats NaN as "not measured", not as a value."""
    vx, vy, mag, dv = cells[:, 0], cells[:, 1], cells[:, 2], cells[:, 3]
    speed = np.hypot(vx, vy)
    n = len(mag)
    out: list[float] = []
    # cosine between a cell's mean flow and its own `lag` frames later
    cosines = {lag: (vx[lag:] * vx[:-lag] + vy[lag:] * vy[:-lag]) / (speed[lag:] * speed[:-lag] + 1e-6)
               for lag in REVERSAL_LAGS if n > lag}
    for lag in REVERSAL_LAGS:  # does a cell's mean flow turn back on itself `lag` frames later?
        if lag not in cosines:
            out += [NAN] * 4
            continue
        cos = cosines[lag]
        w = np.minimum(mag[lag:], mag[:-lag])
        active = w > MOVING
        w = w * active
        out += [_ratio(float((w * (cos < 0)).sum()), float(w.sum())), _ratio(float((w * cos).sum()), float(w.sum())),
                float((active & (cos < -0.5)).mean()), _ratio(float(((cos < 0) & active).sum()), float(active.sum()))]
    for win in DRIFT_WINDOWS:  # net displacement / motion over short spans: ~1 when walking, ~0 when flailing
        drifts, weights = [], []
        for s in range(0, max(1, n - win + 1), max(1, win // 2)):
            mx, my, mm = vx[s:s + win].mean(0), vy[s:s + win].mean(0), mag[s:s + win].mean(0)
            drifts.append((np.hypot(mx, my) / (mm + 1e-3)).ravel())
            weights.append(mm.ravel() * (mm.ravel() > MOVING))
        d, wt = np.asarray(drifts), np.asarray(weights)
        per_span = [_ratio(float((x * y).sum()), float(y.sum())) for x, y in zip(d, wt, strict=True)]
        measured = [v for v in per_span if not np.isnan(v)]
        out += [_ratio(float((d * wt).sum()), float(wt.sum())),
                float(d.ravel()[np.argmax(wt)]) if wt.max() > 0 else NAN, min(measured) if measured else NAN]
    moving = mag[1:] > MOVING
    out.append(_ratio(float((dv[1:] * moving).sum()), float((mag[1:] * moving).sum())))
    # direction spread of each moving cell's mean flow over the window, and balance of opposite directions
    bins = ((np.arctan2(vy, vx) + np.pi) / (2 * np.pi) * 8).astype(int) % 8
    hist = np.stack([(speed * (bins == i) * (mag > MOVING)).sum(0) for i in range(8)])
    total = hist.sum(0)
    prob = hist / (total + 1e-6)
    ent = (-(prob * np.log(prob + 1e-12)).sum(0) / np.log(8)).ravel()
    opp = (np.minimum(hist[:4], hist[4:]).sum(0) / (total + 1e-6)).ravel()
    share = (mag * (mag > MOVING)).sum(0).ravel()
    top = np.argsort(-share)
    if share.sum() > 1e-6:
        out += [float((share * ent).sum() / share.sum()), float(ent[top[0]]),
                float(ent[top[1]]) if share[top[1]] > 0 else NAN, float((share * opp).sum() / share.sum()),
                float(opp[top[0]]), float(opp[top[:4]][share[top[:4]] > 0].mean())]
    else:
        out += [NAN] * 6
    for level in ACTIVE_LEVELS:
        if 1 not in cosines:
            out += [NAN, 0.0]
            continue
        cos = cosines[1]
        active = np.minimum(mag[1:], mag[:-1]) > level
        out += [_ratio(float(((cos < 0) & active).sum()), float(active.sum())), float(active.mean())]
    # how intense and how concentrated: the most moving cells (a fight is a knot of motion, a round is not)
    act = mag.mean(0).ravel()
    flat_mag, flat_moving = mag.reshape(n, -1), cells[:, 4].reshape(n, -1)
    for j in np.argsort(-act)[:2]:
        col = flat_mag[:, j]
        out += [float(act[j]), float(col.std()), float(col.max()), float(flat_moving[:, j].mean())]
    out += [float(act.max() / (act.mean() + 1e-6)), float((act > 0.5).mean())]
    return out


def cell_features(cells: np.ndarray) -> np.ndarray:
    """``CELL_FEATURE_NAMES`` from a (pairs, 5, rows, cols) stack of cell statistics."""
    out: list[float] = []
    for k in CELL_LEVELS:
        out += _level_features(_pool(cells, k))
    return np.asarray(out, dtype=np.float32)


def track(frames: Iterable[tuple[float, np.ndarray]]) -> MotionTrack:
    tr = MotionTrack()
    for t, f in frames:
        tr.add_frame(t, f)
    return tr


def clip_features(frames: Iterable[tuple[float, np.ndarray]]) -> np.ndarray | None:
    """One feature vector for a whole short clip (how the fight-surv clips are used)."""
    return track(frames).window_features()

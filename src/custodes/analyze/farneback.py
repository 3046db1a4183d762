"""Farneback dense optical flow that expands each frame once, not twice.

``cv2.calcOpticalFlowFarneback(prev, cur, ...)`` fits a quadratic polynomial around every pixel of *both*
frames at every pyramid level on each call, so in a stream of frame pairs every frame is expanded twice, and
the expansion is over half the cost (at 240x180, OpenCV with no flow iterations at all takes 3.6 of the
6.7 ms a pair that two iterations take). Here a frame's pyramid of
expansions (``expand``) is computed once and serves as the second frame of one pair and the first of the
next; the expansion itself runs as separable filters (``cv2.sepFilter2D``, vectorised) instead of
OpenCV's scalar loop. The flow updates are OpenCV's own code, step for step (the same float32 and double
operations in the same order, a multiply and an add fused where the CPU can), compiled with numba; about half
OpenCV's CPU a frame pair in all.

The result is OpenCV's flow up to float rounding (the filters sum in another order): ``tests/analyze/
test_farneback.py`` holds it to a mean of 1e-4 px of ``cv2.calcOpticalFlowFarneback`` on a synthetic struggle
(on real footage ~5e-6 px), so the models trained on OpenCV's flow see the same numbers. Only what
``analyze.motion`` uses is implemented: box window (flags 0), no initial flow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit

MIN_SIZE = 32  # OpenCV stops adding pyramid levels below this many pixels a side


def _cv_round(x: float) -> int:
    return int(round(x))  # both round half to even, as cvRound does under the default FPU mode


@dataclass(frozen=True)
class Params:
    pyr_scale: float = 0.5
    levels: int = 2  # as OpenCV counts them: levels + 1 images in the pyramid (while each side >= MIN_SIZE)
    poly_n: int = 5
    poly_sigma: float = 1.1


def _gaussian(n: int, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float, float, float]:
    """OpenCV's FarnebackPrepareGaussian: the applicability g and its moments, and the inverse Gram entries."""
    if sigma < np.finfo(np.float32).eps:
        sigma = n * 0.3
    x = np.arange(-n, n + 1)
    g = np.exp(-(x * x) / (2 * sigma * sigma)).astype(np.float32)
    s = 1.0 / float(np.sum(g.astype(np.float64)))
    g = (g.astype(np.float64) * s).astype(np.float32)
    xg = (x * g.astype(np.float64)).astype(np.float32)
    xxg = (x * x * g.astype(np.float64)).astype(np.float32)
    gd = g.astype(np.float64)
    xx = (x * x).astype(np.float64)
    G = np.zeros((6, 6))
    G[0, 0] = np.sum(np.outer(gd, gd))
    G[1, 1] = np.sum(np.outer(gd, gd * xx))
    G[3, 3] = np.sum(np.outer(gd, gd * xx * xx))
    G[5, 5] = np.sum(np.outer(gd * xx, gd * xx))
    G[2, 2] = G[0, 3] = G[0, 4] = G[3, 0] = G[4, 0] = G[1, 1]
    G[4, 4] = G[3, 3]
    G[3, 4] = G[4, 3] = G[5, 5]
    ig = np.linalg.inv(G)
    return g, xg, xxg, float(ig[1, 1]), float(ig[0, 3]), float(ig[3, 3]), float(ig[5, 5])


class Expander:
    """Per-level polynomial expansions of one frame, for a fixed frame size and parameters."""

    def __init__(self, size: tuple[int, int], params: Params = Params()):
        w, h = size
        self.params = params
        k, scale = 0, 1.0
        while k < params.levels:
            scale *= params.pyr_scale
            if w * scale < MIN_SIZE or h * scale < MIN_SIZE:
                break
            k += 1
        self.levels: list[tuple[int, int, int, float]] = []  # (width, height, blur size, blur sigma), finest first
        for level in range(k + 1):
            scale = params.pyr_scale ** level
            sigma = (1.0 / scale - 1) * 0.5
            smooth = max(_cv_round(sigma * 5) | 1, 3)
            self.levels.append((_cv_round(w * scale), _cv_round(h * scale), smooth, sigma))
        g, xg, xxg, ig11, ig03, ig33, ig55 = _gaussian(params.poly_n, params.poly_sigma)
        even = (ig03 * g.astype(np.float64) + ig33 * xxg.astype(np.float64)).astype(np.float32)
        # the five stored coefficients (OpenCV's order: y, x, yy, xx, xy) as (kernel along x, kernel along y)
        self.kernels = [(g, (xg * ig11).astype(np.float32)), ((xg * ig11).astype(np.float32), g), (g, even),
                        (even, g), (xg, (xg * ig55).astype(np.float32))]

    def expand(self, frame: np.ndarray) -> list[np.ndarray]:
        """uint8 grey frame → one (5, h, w) float32 expansion per pyramid level, finest first."""
        f = frame.astype(np.float32)
        out = []
        for w, h, smooth, sigma in self.levels:
            img = cv2.GaussianBlur(f, (smooth, smooth), sigma, sigmaY=sigma)
            if img.shape[1] != w or img.shape[0] != h:
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
            planes = np.empty((5, h, w), dtype=np.float32)
            for c, (kx, ky) in enumerate(self.kernels):
                cv2.sepFilter2D(img, cv2.CV_32F, kx, ky, dst=planes[c], borderType=cv2.BORDER_REPLICATE)
            out.append(planes)
        return out

    def flow_planes(self, prev: list[np.ndarray], cur: list[np.ndarray], winsize: int,
                    iterations: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Dense flow from the frame expanded as ``prev`` to the one expanded as ``cur`` (both by this
        expander's ``expand``), as its x and y planes, (h, w) float32 each: what ``cv2.calcOpticalFlowFarneback(
        prev, cur, None, pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, 0)`` returns with this
        expander's parameters, channel by channel. The pyramid's scale is the one the frames were expanded at:
        it is stated once, in ``params``."""
        if len(prev) != len(self.levels) or len(cur) != len(self.levels):
            raise ValueError(f"expansions of {len(prev)} and {len(cur)} levels, not this expander's {len(self.levels)}")
        up = np.float32(1.0 / self.params.pyr_scale)
        fx: np.ndarray | None = None
        fy: np.ndarray | None = None
        for R0, R1 in zip(reversed(prev), reversed(cur), strict=True):
            h, w = R0.shape[1:]
            if fx is None or fy is None:
                fx = np.zeros((h, w), dtype=np.float32)
                fy = np.zeros((h, w), dtype=np.float32)
            else:  # OpenCV resizes the two-channel flow: the same as each channel alone
                fx = cv2.resize(fx, (w, h), interpolation=cv2.INTER_LINEAR) * up
                fy = cv2.resize(fy, (w, h), interpolation=cv2.INTER_LINEAR) * up
            M = np.empty((5, h, w), dtype=np.float32)
            _update_matrices(R0, R1, fx, fy, M, _BORDER, 0, h)
            for i in range(iterations):
                _blur_solve(M, fx, fy, winsize, R0, R1, _BORDER, i < iterations - 1)
        assert fx is not None and fy is not None
        return fx, fy

    def flow(self, prev: list[np.ndarray], cur: list[np.ndarray], winsize: int, iterations: int = 2) -> np.ndarray:
        """``flow_planes`` as OpenCV lays it out: (h, w, 2) float32."""
        return np.dstack(self.flow_planes(prev, cur, winsize, iterations))


_BORDER = np.array([0.14, 0.14, 0.4472, 0.4472, 0.4472], dtype=np.float32)


def _compiled(fn: Callable[..., None]) -> Callable[..., None]:
    """Compiled once and cached beside this file (or in the user's cache); where neither is writable (a
    read-only install), compiled in each process instead (a few seconds) rather than failing the import."""
    # "contract": a multiply and the add that follows it may become one fused multiply-add, rounded once
    # instead of twice (what GCC does by default). The only rounding change it allows, and it took 10-15 %
    # off a frame pair's flow (4.2-4.8 -> 3.5-4.3 ms, the same frames alternately); the mean difference to
    # OpenCV's flow stayed at 2e-6 px. The other fast-math flags would let LLVM reorder the running sums.
    try:
        return njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})(fn)  # type: ignore[no-any-return]
    except RuntimeError:
        return njit(nogil=True, error_model="numpy", fastmath={"contract"})(fn)  # type: ignore[no-any-return]


@_compiled
def _update_matrices(R0: np.ndarray, R1: np.ndarray, flow_x: np.ndarray, flow_y: np.ndarray, M: np.ndarray,
                     border: np.ndarray, y0: int, y1: int) -> None:  # pragma: no cover - compiled
    """OpenCV's FarnebackUpdateMatrices on planes, rows [y0, y1): R0, R1, M (5, h, w); flow (h, w) each. Flat
    unsigned indices: numba then skips its negative-index checks."""
    height, width = flow_x.shape
    n = height * width
    r0 = R0.reshape(5 * n)
    r1 = R1.reshape(5 * n)
    m = M.reshape(5 * n)
    fxs = flow_x.reshape(n)
    fys = flow_y.reshape(n)
    nb = border.shape[0]
    one = np.float32(1.0)
    half = np.float32(0.5)
    for y in range(y0, y1):
        for x in range(width):
            p = np.uint64(y * width + x)
            dx = fxs[p]
            dy = fys[p]
            fx = np.float32(x) + dx
            fy = np.float32(y) + dy
            # floor, as cvFloor: int() truncates towards zero (math.floor costs a third of this loop in numba)
            x1 = int(fx)
            y1 = int(fy)
            if x1 > fx:
                x1 -= 1
            if y1 > fy:
                y1 -= 1
            fx = fx - np.float32(x1)
            fy = fy - np.float32(y1)
            if 0 <= x1 < width - 1 and 0 <= y1 < height - 1:
                a00 = (one - fx) * (one - fy)
                a01 = fx * (one - fy)
                a10 = (one - fx) * fy
                a11 = fx * fy
                q = np.uint64(y1 * width + x1)
                q1 = q + np.uint64(1)
                q2 = q + np.uint64(width)
                q3 = q2 + np.uint64(1)
                un = np.uint64(n)
                r2 = a00 * r1[q] + a01 * r1[q1] + a10 * r1[q2] + a11 * r1[q3]
                q += un; q1 += un; q2 += un; q3 += un  # noqa: E702
                r3 = a00 * r1[q] + a01 * r1[q1] + a10 * r1[q2] + a11 * r1[q3]
                q += un; q1 += un; q2 += un; q3 += un  # noqa: E702
                r4 = a00 * r1[q] + a01 * r1[q1] + a10 * r1[q2] + a11 * r1[q3]
                q += un; q1 += un; q2 += un; q3 += un  # noqa: E702
                r5 = a00 * r1[q] + a01 * r1[q1] + a10 * r1[q2] + a11 * r1[q3]
                q += un; q1 += un; q2 += un; q3 += un  # noqa: E702
                r6 = a00 * r1[q] + a01 * r1[q1] + a10 * r1[q2] + a11 * r1[q3]
                r4 = (r0[p + np.uint64(2 * n)] + r4) * half
                r5 = (r0[p + np.uint64(3 * n)] + r5) * half
                r6 = (r0[p + np.uint64(4 * n)] + r6) * np.float32(0.25)
            else:
                r2 = np.float32(0.0)
                r3 = np.float32(0.0)
                r4 = r0[p + np.uint64(2 * n)]
                r5 = r0[p + np.uint64(3 * n)]
                r6 = r0[p + np.uint64(4 * n)] * half
            r2 = (r0[p] - r2) * half
            r3 = (r0[p + np.uint64(n)] - r3) * half
            r2 += r4 * dy + r6 * dx
            r3 += r6 * dy + r5 * dx
            if x < nb or x >= width - nb or y < nb or y >= height - nb:
                s = one
                if x < nb:
                    s *= border[x]
                if x >= width - nb:
                    s *= border[width - x - 1]
                if y < nb:
                    s *= border[y]
                if y >= height - nb:
                    s *= border[height - y - 1]
                r2 *= s
                r3 *= s
                r4 *= s
                r5 *= s
                r6 *= s
            m[p] = r4 * r4 + r6 * r6
            m[p + np.uint64(n)] = (r4 + r5) * r6
            m[p + np.uint64(2 * n)] = r5 * r5 + r6 * r6
            m[p + np.uint64(3 * n)] = r4 * r2 + r6 * r3
            m[p + np.uint64(4 * n)] = r6 * r2 + r5 * r3


@_compiled
def _blur_solve(M: np.ndarray, flow_x: np.ndarray, flow_y: np.ndarray, block: int, R0: np.ndarray, R1: np.ndarray,
                border: np.ndarray, update: bool) -> None:  # pragma: no cover - compiled
    """OpenCV's FarnebackUpdateFlow_Blur: M (5, h, w) averaged over block x block (edges replicated, running
    sums in double), each pixel's 2x2 system solved into flow (h, w) each, and, with ``update``, M recomputed
    from the new flow in stripes of rows the blur has left behind (while they are still in cache)."""
    height, width = flow_x.shape
    mm = block // 2
    scale = 1.0 / (block * block)
    pad = mm + 1
    vsum = np.zeros((5, width + 2 * pad))  # column sums, the edge columns repeated pad times either side
    stripe = max(1024 // width, block)
    y0 = 0
    for c in range(5):
        for x in range(width):
            acc = np.float64(M[c, 0, x] * np.float32(mm + 1))
            for k in range(1, mm + 1):
                acc += np.float64(M[c, min(k, height - 1), x])
            vsum[c, x + pad] = acc
    for y in range(height):
        if y > 0:
            lo = max(y - mm - 1, 0)
            hi = min(y + mm, height - 1)
            for c in range(5):
                for x in range(width):
                    vsum[c, x + pad] += np.float64(M[c, hi, x] - M[c, lo, x])
        for c in range(5):
            for j in range(pad):
                vsum[c, j] = vsum[c, pad]
                vsum[c, width + pad + j] = vsum[c, width + pad - 1]
        g11 = vsum[0, pad] * (mm + 1)
        g12 = vsum[1, pad] * (mm + 1)
        g22 = vsum[2, pad] * (mm + 1)
        h1 = vsum[3, pad] * (mm + 1)
        h2 = vsum[4, pad] * (mm + 1)
        for k in range(1, mm + 1):
            g11 += vsum[0, pad + k]
            g12 += vsum[1, pad + k]
            g22 += vsum[2, pad + k]
            h1 += vsum[3, pad + k]
            h2 += vsum[4, pad + k]
        for x in range(width):
            if x > 0:
                a = x + 2 * mm + 1
                g11 += vsum[0, a] - vsum[0, x]
                g12 += vsum[1, a] - vsum[1, x]
                g22 += vsum[2, a] - vsum[2, x]
                h1 += vsum[3, a] - vsum[3, x]
                h2 += vsum[4, a] - vsum[4, x]
            g11_ = g11 * scale
            g12_ = g12 * scale
            g22_ = g22 * scale
            h1_ = h1 * scale
            h2_ = h2 * scale
            idet = 1.0 / (g11_ * g22_ - g12_ * g12_ + 1e-3)
            flow_x[y, x] = np.float32((g11_ * h2_ - g12_ * h1_) * idet)
            flow_y[y, x] = np.float32((g22_ * h1_ - g12_ * h2_) * idet)
        if update:
            # rows below y - block are no longer read by the blur (it reaches y - mm - 1 next)
            y1 = height if y == height - 1 else y - block
            if y1 == height or y1 >= y0 + stripe:
                _update_matrices(R0, R1, flow_x, flow_y, M, border, y0, y1)
                y0 = y1

"""Verification of a near-duplicate candidate on the pixels of a few aligned frame pairs.

Frame hashes say two pictures look alike; on footage from one fixed camera two *different* moments
look alike too (the same room, the same light). A copy differs from another moment in what moves: the
copy's people move exactly as the source's. So a candidate is verified in three steps:

1. the two pictures are registered by local features (ORB keypoints, ratio test, a RANSAC homography;
   mirrored first when the hashes matched mirrored) — this also measures crop, zoom, rotation and
   perspective;
2. at a few aligned times, the *motion* (the difference to a frame 0.4 s later) of the copy, warped onto
   the other, must correlate with the other's motion; a scene where nothing moves is decided by how well
   the pictures themselves agree, and said so;
3. what differs consistently after registration, where the other copy moves and this one does not, is
   an overlay (a caption, a logo), reported with its region.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import av
import cv2
import numpy as np

from custodes.media.source import MediaRef, av_source

WIDTH = 320  # frames are compared at this width (after stripping borders)
MOTION_DT = 0.4  # seconds between the two frames whose difference is the motion
MIN_INLIERS = 12
MIN_MOTION = 2.0  # mean absolute grey-level change under which a scene counts as still
MIN_MOTION_CORR = 0.6  # copies at their offset measure >= 0.9; other moments of one camera <= 0.45
MIN_MOVING_PICTURE_CORR = 0.75  # copies measured >= 0.83 (caption overlays the lowest); other moments <= 0.66
MIN_PICTURE_CORR = 0.99  # still scenes only: other moments of one still camera measured up to 0.981
CHECK_TIMES = 5


@dataclass
class Frames:
    """Decoded grey (and RGB) frames of one video at the requested times, borders stripped."""

    times: list[float]
    grey: list[np.ndarray]
    rgb: list[np.ndarray]


_cache: OrderedDict[str, tuple[np.ndarray, list[np.ndarray]]] = OrderedDict()
_CACHE_VIDEOS = 48
_CACHE_MAX_S = 30.0  # short videos are decoded once at 5 frames/s and kept (a few MB each)


def _decode_all(ref: MediaRef, fps: float, limit_s: float | None = None,
                start_s: float = 0.0) -> tuple[np.ndarray, list[np.ndarray]]:
    times, imgs = [], []
    step = 1.0 / fps
    next_t = start_s
    with av.open(av_source(ref)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
        if start_s > 2.0 and vs.time_base:
            c.seek(int((start_s - 1.0 + t0) / vs.time_base), stream=vs, backward=True)
        try:
            for frame in c.decode(vs):
                if frame.time is None:
                    continue
                t = frame.time - t0
                if limit_s is not None and t > limit_s:
                    break
                if t + 1e-6 < next_t:
                    continue
                next_t = t + step
                w = min(frame.width, WIDTH)
                h = max(2, int(round(frame.height * w / frame.width / 2)) * 2)
                times.append(t)
                imgs.append(frame.reformat(width=w, height=h, format="rgb24").to_ndarray())
        except (av.error.FFmpegError, EOFError):
            pass
    return np.asarray(times), imgs


def grab(sha: str, ref: MediaRef, duration_s: float, times: list[float],
         borders: list[float] | None) -> Frames:
    """Frames nearest to ``times`` (seconds from the start), cut to the picture inside ``borders``."""
    if duration_s <= _CACHE_MAX_S:
        if sha not in _cache:
            _cache[sha] = _decode_all(ref, 10.0)
            while len(_cache) > _CACHE_VIDEOS:
                _cache.popitem(last=False)
        _cache.move_to_end(sha)
        ts, imgs = _cache[sha]
        picked = [imgs[int(np.argmin(np.abs(ts - t)))] for t in times] if len(ts) else []
        got = [float(ts[int(np.argmin(np.abs(ts - t)))]) for t in times] if len(ts) else []
    else:
        picked, got = [], []
        for t in times:
            ts, imgs = _decode_all(ref, 10.0, limit_s=t + 0.2, start_s=max(0.0, t - 0.2))
            if len(ts):
                i = int(np.argmin(np.abs(ts - t)))
                picked.append(imgs[i])
                got.append(float(ts[i]))
    out_rgb = []
    for im in picked:
        if borders:
            h, w = im.shape[:2]
            top, bottom = int(round(borders[0] * h)), int(round(borders[1] * h))
            left, right = int(round(borders[2] * w)), int(round(borders[3] * w))
            im = im[top:h - bottom, left:w - right]
        out_rgb.append(np.ascontiguousarray(im))
    return Frames(got, [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in out_rgb], out_rgb)


@dataclass
class Verdict:
    ok: bool
    reason: str
    inliers: int = 0
    motion_corr: float | None = None
    picture_corr: float | None = None
    still: bool = False
    homography: list[list[float]] | None = None
    geometry: dict[str, Any] = field(default_factory=dict)
    overlay: dict[str, Any] | None = None
    greyscale: list[str] = field(default_factory=list)


_orb = None


def _features(img: np.ndarray) -> tuple[Any, Any]:
    global _orb
    if _orb is None:
        _orb = cv2.ORB.create(nfeatures=1500, fastThreshold=10)
    big = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_LINEAR)
    kp, des = _orb.detectAndCompute(big, None)
    for k in kp:
        k.pt = (k.pt[0] / 2, k.pt[1] / 2)
    return kp, des


def register(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Homography mapping a's pixel coordinates to b's, and its RANSAC inliers."""
    ka, da = _features(a)
    kb, db = _features(b)
    if da is None or db is None or len(ka) < 8 or len(kb) < 8:
        return None, 0
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(da, db, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < 8:
        return None, 0
    pa = np.array([ka[m.queryIdx].pt for m in good], dtype=np.float32)
    pb = np.array([kb[m.trainIdx].pt for m in good], dtype=np.float32)
    cv2.setRNGSeed(7)  # RANSAC's samples: the same verdict on every run
    h, mask = cv2.findHomography(pa, pb, cv2.RANSAC, 3.0)
    if h is None or mask is None:
        return None, 0
    return h, int(mask.sum())


def _view_geometry(shape_a: tuple[int, ...], shape_b: tuple[int, ...], scale_a: float, scale_b: float) -> np.ndarray:
    """The homography the hash views imply: a's centre share scale_a matches b's centre share scale_b."""
    ha, wa = shape_a[:2]
    hb, wb = shape_b[:2]
    # a pixel (x, y) of a's centre crop → normalised → b's centre crop
    sx = (wb * scale_b) / (wa * scale_a)
    sy = (hb * scale_b) / (ha * scale_a)
    tx = wb / 2 - sx * wa / 2
    ty = hb / 2 - sy * ha / 2
    return np.array([[sx, 0, tx], [0, sy, ty], [0, 0, 1]], dtype=np.float64)


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x.astype(np.float32), (0, 0), 2.0)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 50:
        return 0.0
    x = x - x.mean()
    y = y - y.mean()
    d = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / d) if d > 1e-6 else 0.0


def _geometry(h: np.ndarray, shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> dict[str, Any]:
    """What the registration says about a relative to b: the share of b's picture a shows, rotation,
    perspective."""
    ha, wa = shape_a[:2]
    hb, wb = shape_b[:2]
    h = h / h[2, 2]
    corners = np.array([[0, 0], [wa, 0], [wa, ha], [0, ha]], dtype=np.float32).reshape(-1, 1, 2)
    q = cv2.perspectiveTransform(corners, h).reshape(-1, 2)
    area_in_b = float(cv2.contourArea(q)) / float(wa * 0 + wb * hb)
    angle = float(np.degrees(np.arctan2(h[1, 0] - h[0, 1], h[0, 0] + h[1, 1])))
    persp = float(max(abs(h[2, 0]) * wa, abs(h[2, 1]) * ha))
    cx, cy = q[:, 0].mean() / wb, q[:, 1].mean() / hb
    return {"a_shows_share_of_b": round(float(np.sqrt(max(area_in_b, 0.0))), 3),
            "a_centre_in_b": [round(float(cx), 3), round(float(cy), 3)],
            "rotation_deg": round(angle, 1), "perspective": round(persp, 3)}


def verify(fa: Frames, fa2: Frames, fb: Frames, fb2: Frames, mirrored: bool,
           view_scales: tuple[float, float]) -> Verdict:
    """``fa``/``fb``: aligned frames of a and b; ``fa2``/``fb2``: the same MOTION_DT later (in each one's time)."""
    n = min(len(fa.grey), len(fb.grey), len(fa2.grey), len(fb2.grey))
    if n == 0:
        return Verdict(False, "no frames could be decoded for verification")
    flip = (lambda x: np.ascontiguousarray(x[:, ::-1])) if mirrored else (lambda x: x)
    a1 = [flip(x) for x in fa.grey[:n]]
    a2 = [flip(x) for x in fa2.grey[:n]]
    best_h, best_in = None, 0
    for i in range(n):
        h, k = register(a1[i], fb.grey[i])
        if h is not None and k > best_in:
            best_h, best_in = h, k
    if best_h is None or best_in < MIN_INLIERS:
        best_h = _view_geometry(a1[0].shape, fb.grey[0].shape, *view_scales)
        registered = False
    else:
        registered = True
    shape = a1[0].shape[:2]
    mcorr, pcorr, energy_a, energy_b = [], [], [], []
    resid, still_a, still_b = [], [], []
    for i in range(n):
        ones = np.ones(fb.grey[i].shape, np.float32)
        valid = cv2.warpPerspective(ones, best_h, (shape[1], shape[0]), flags=cv2.WARP_INVERSE_MAP) > 0.99
        valid = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if valid.sum() < 0.2 * valid.size:
            continue
        b1 = cv2.warpPerspective(_blur(fb.grey[i]), best_h, (shape[1], shape[0]), flags=cv2.WARP_INVERSE_MAP)
        b2 = cv2.warpPerspective(_blur(fb2.grey[i]), best_h, (shape[1], shape[0]), flags=cv2.WARP_INVERSE_MAP)
        x1, x2 = _blur(a1[i]), _blur(a2[i])
        ma, mb = np.abs(x2 - x1), np.abs(b2 - b1)
        energy_a.append(float(ma[valid].mean()))
        energy_b.append(float(mb[valid].mean()))
        mcorr.append(_corr(ma[valid], mb[valid]))
        pcorr.append(_corr(x1[valid], b1[valid]))
        za = (x1 - x1[valid].mean()) / (x1[valid].std() + 1e-6)
        zb = (b1 - b1[valid].mean()) / (b1[valid].std() + 1e-6)
        r = np.where(valid, np.abs(za - zb), 0.0)
        resid.append(r)
        still_a.append(np.where(valid, ma, 0.0))
        still_b.append(np.where(valid, mb, 0.0))
    if not mcorr:
        return Verdict(False, "the registered pictures hardly overlap", best_in)
    motion = float(min(np.median(energy_a), np.median(energy_b)))
    mc, pc = float(np.median(mcorr)), float(np.median(pcorr))
    still = motion < MIN_MOTION
    ok = pc >= MIN_PICTURE_CORR if still else (mc >= MIN_MOTION_CORR and pc >= MIN_MOVING_PICTURE_CORR)
    reason = ("still scene: decided by how well the pictures agree" if still else
              "what moves agrees" if ok else "the pictures look alike but what moves differs (another moment)")
    v = Verdict(ok, reason, best_in, round(mc, 3), round(pc, 3), still,
                [[round(float(x), 5) for x in row] for row in best_h])
    v.geometry = _geometry(best_h, shape, fb.grey[0].shape) | {"registered_by_features": registered}
    # overlay: consistently different after registration, on ≥ 1.5 % of the picture
    rmin = np.min(np.stack(resid), axis=0)
    mask = cv2.morphologyEx((rmin > 0.8).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    # an overlay is a few solid regions, not scattered speckle: keep components of >= 0.3 % of the picture
    count, labels, cstats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    big = [i for i in range(1, count) if cstats[i, cv2.CC_STAT_AREA] >= 0.003 * mask.size]
    mask = np.isin(labels, big).astype(np.uint8) if big else np.zeros_like(mask)
    share = float(mask.mean())
    if ok and share >= 0.01:
        ys, xs = np.nonzero(mask)
        box = [round(xs.min() / shape[1], 3), round(ys.min() / shape[0], 3),
               round((xs.max() + 1) / shape[1], 3), round((ys.max() + 1) / shape[0], 3)]
        sa = float(np.mean([m[mask > 0].mean() for m in still_a]))
        sb = float(np.mean([m[mask > 0].mean() for m in still_b]))
        v.overlay = {"share": round(share, 3), "box_in_a": box, "static_in": "a" if sa < sb else "b"}
    for name, fr in (("a", fa), ("b", fb)):
        sat = [float(cv2.cvtColor(x, cv2.COLOR_RGB2HSV)[..., 1].mean()) for x in fr.rgb[:n]]
        if sat and max(sat) < 6.0:
            v.greyscale.append(name)
    return v

"""Simulated wearer motion: what a body-worn camera does to a scene that is calm.

Two uses: the body-worn condition of ``make bench`` (bench/bodyworn_bench.py, each clip's draw seeded by its
name) and the LightGBM model's training (``triage.dataset.with_wearer_motion``, a draw seeded by "train|" and
the name), so the model sees the camera's own motion in fights and calm clips alike.

The wearer walks (a vertical bob at the step rate, 1.5-2 Hz, and a sideways sway at half of it), rolls the
camera a few degrees with each step, walks forward (a slow zoom), turns (a fast horizontal pan, 30-90 deg/s,
over part of the clip), sometimes puts a hand or a door in front of the lens (a dark blob that sweeps in for
a few frames and out again), and looks through a fisheye lens (barrel distortion). None of it is violence.

Every number is drawn once per clip from a generator seeded by the clip's name (``wearer_for``), so a clip
moves the same way in every run. Amplitudes are in pixels at the analysed 240x180 (``REF_WIDTH``) and scale
with the frame's width. The camera motion and the lens are one ``cv2.remap`` per frame: each output pixel
is traced back through the lens (barrel model, corners to corners) and then through the camera's similarity
(shift, roll, zoom) into the source frame, whose outside is its mirror image (``BORDER_REFLECT_101``: a
static wider scene, so a pan moves all of it one way, as a real pan does).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

VERSION = "bodyworn-1"
REF_WIDTH = 240  # amplitudes below are pixels at this width (motion.SIZE)
BASE_ZOOM = 1.12  # the camera sees a slightly zoomed frame, so that its shake and roll stay mostly inside it
PX_PER_DEG = 2.0  # a body camera's ~120 degree view over 240 px
# the parts of the motion, each of which can be applied alone (``apply(..., parts=...)``)
PARTS = ("bob", "roll", "turn", "hand", "fisheye")  # bob = bob and sway (translation); roll = roll and walk zoom
Frames = Iterator[tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Wearer:
    """One clip's wearer motion (pixels at ``REF_WIDTH``, degrees, seconds from the clip's first frame)."""

    step_hz: float  # bob frequency; sway and roll at half of it (one sway per two steps)
    bob_px: float
    bob_phase: float
    sway_px: float
    sway_phase: float
    roll_deg: float
    roll_phase: float
    walk_zoom_per_s: float  # walking forward: the scene grows by this share a second
    turn_start_s: float
    turn_s: float
    turn_deg_s: float  # peak angular speed of the turn; its sign is the direction
    fisheye_k: float  # barrel strength: the corners come from (1 + k) times further out than in a plain lens
    hand: tuple[float, float, int, float, float] | None  # start s, duration s, side (0 left, 1 right, 2 bottom),
    #                                                      reach (share of the frame covered at most), grey level


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{VERSION}|{name}".encode()).digest()[:8], "little")


def wearer_for(name: str) -> Wearer:
    """The wearer motion of the clip called ``name`` (the same name gives the same motion, always)."""
    rng = np.random.default_rng(_seed(name))
    u = rng.uniform
    hand = None
    if u() < 0.35:  # some clips: a hand or a door in front of the lens for a few frames
        hand = (float(u(0.2, 1.2)), float(u(0.25, 0.5)), int(rng.integers(3)), float(u(0.25, 0.45)),
                float(u(15, 40)))
    return Wearer(step_hz=float(u(1.5, 2.0)), bob_px=float(u(2.0, 4.0)), bob_phase=float(u(0, 2 * np.pi)),
                  sway_px=float(u(1.5, 3.0)), sway_phase=float(u(0, 2 * np.pi)), roll_deg=float(u(1.0, 3.0)),
                  roll_phase=float(u(0, 2 * np.pi)), walk_zoom_per_s=float(u(0.02, 0.05)),
                  turn_start_s=float(u(0.1, 0.9)), turn_s=float(u(0.5, 0.9)),
                  turn_deg_s=float(u(30, 90) * rng.choice([-1, 1])), fisheye_k=float(u(0.2, 0.35)), hand=hand)


def pan_px(w: Wearer, t: float) -> float:
    """Horizontal offset of the turn at ``t`` (px at REF_WIDTH): a raised-cosine speed profile whose peak is
    ``turn_deg_s``, so the pan starts and stops smoothly; its integral over the turn is ``turn_deg_s *
    turn_s / 2`` degrees."""
    x = min(max((t - w.turn_start_s) / w.turn_s, 0.0), 1.0)
    degrees = w.turn_deg_s * w.turn_s * (x - math.sin(2 * math.pi * x) / (2 * math.pi)) / 2
    return degrees * PX_PER_DEG


def camera(w: Wearer, t: float, parts: Iterable[str] = PARTS) -> tuple[float, float, float, float]:
    """(dx, dy, roll in degrees, zoom) at ``t``: the picture's content moves by (dx, dy) px at REF_WIDTH."""
    parts = set(parts)
    dx = dy = roll = 0.0
    zoom = BASE_ZOOM if parts & {"bob", "roll", "turn"} else 1.0
    if "bob" in parts:
        dy += w.bob_px * math.sin(2 * math.pi * w.step_hz * t + w.bob_phase)
        dx += w.sway_px * math.sin(math.pi * w.step_hz * t + w.sway_phase)
    if "roll" in parts:
        roll = w.roll_deg * math.sin(math.pi * w.step_hz * t + w.roll_phase)
        zoom *= 1.0 + w.walk_zoom_per_s * t
    if "turn" in parts:
        dx -= pan_px(w, t)  # turning right moves the scene left
    return dx, dy, roll, zoom


@functools.lru_cache(maxsize=8)
def _grid(width: int, height: int, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel looks in a plain (rectilinear) picture, relative to the centre: the barrel
    lens, corners to corners, so nothing outside the picture comes in at the corners."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = xs - cx, ys - cy
    if k:
        r2 = (x * x + y * y) / (cx * cx + cy * cy)
        f = (1.0 + k * r2) / (1.0 + k)
        x, y = x * f, y * f
    return x.astype(np.float32), y.astype(np.float32)


def warp(frame: np.ndarray, w: Wearer, t: float, parts: Iterable[str] = PARTS) -> np.ndarray:
    """``frame`` as the moving body camera sees it at ``t`` (camera motion and lens; no hand)."""
    parts = set(parts)
    h, wd = frame.shape[:2]
    s = wd / REF_WIDTH
    gx, gy = _grid(wd, h, w.fisheye_k if "fisheye" in parts else 0.0)
    dx, dy, roll, zoom = camera(w, t, parts)
    if not (dx or dy or roll) and zoom == 1.0 and "fisheye" not in parts:
        return frame
    # output q = c + zoom * R(roll) (src - c) + d, so src = c + R(-roll) (q - c - d) / zoom
    a = math.radians(roll)
    ca, sa = math.cos(a) / zoom, math.sin(a) / zoom
    qx, qy = gx - dx * s, gy - dy * s
    map_x = ((wd - 1) / 2 + ca * qx + sa * qy).astype(np.float32)
    map_y = ((h - 1) / 2 - sa * qx + ca * qy).astype(np.float32)
    return cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def hand_mask(w: Wearer, t: float, width: int, height: int) -> np.ndarray | None:
    """Opacity (0-1, float32) of the hand at ``t``, or None when there is none then: an ellipse that comes in
    from one side up to ``reach`` of the frame and goes back out, with a soft edge."""
    if w.hand is None:
        return None
    start, dur, side, reach, _ = w.hand
    x = (t - start) / dur
    if not 0.0 < x < 1.0:
        return None
    depth = math.sin(math.pi * x) * reach  # how far in it has come, as a share of the frame
    m = np.zeros((height, width), np.float32)
    ax, ay = int(width * 0.35), int(height * 0.45)  # the half-axes of a hand close to the lens
    if side == 0:
        centre = (int(width * depth) - ax, height // 2)
    elif side == 1:
        centre = (width - int(width * depth) + ax, height // 2)
    else:
        ax, ay = int(width * 0.45), int(height * 0.35)
        centre = (width // 2, height - int(height * depth) + ay)
    cv2.ellipse(m, centre, (ax, ay), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(m, (0, 0), max(1.0, width / REF_WIDTH * 3))


def apply(frames: Iterable[tuple[float, np.ndarray]], name: str, parts: Iterable[str] = PARTS,
          wearer: Wearer | None = None) -> Frames:
    """The clip's frames (grey or colour, any size) with the wearer motion of ``name`` (or ``wearer``),
    only the ``parts`` given; times are taken from the clip's first frame."""
    parts = frozenset(parts)
    unknown = parts - set(PARTS)
    if unknown:
        raise ValueError(f"unknown wearer-motion parts {sorted(unknown)}: known are {', '.join(PARTS)}")
    w = wearer or wearer_for(name)
    t0: float | None = None
    for t, f in frames:
        t0 = t if t0 is None else t0
        rel = t - t0
        out = warp(f, w, rel, parts)
        if "hand" in parts and w.hand is not None:
            m = hand_mask(w, rel, f.shape[1], f.shape[0])
            if m is not None:
                if out.ndim == 3:
                    m = m[..., None]
                out = (out * (1.0 - m) + w.hand[4] * m).astype(np.uint8)
        yield t, out


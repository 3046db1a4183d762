"""The simulated wearer motion (triage/wearer_motion.py: the body-worn bench's test condition and the motion
model's training augmentation): deterministic per clip name, and it moves the picture by what it says."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from custodes.triage import wearer_motion as bodyworn

W, H = 240, 180


def _scene(seed: int = 0) -> np.ndarray:
    """A textured grey picture (smoothed noise and a few blocks): every shift shows in phase correlation."""
    rng = np.random.default_rng(seed)
    f = cv2.GaussianBlur(rng.uniform(0, 255, (H, W)).astype(np.float32), (0, 0), 2.0)
    for _ in range(6):
        x, y = rng.integers(20, W - 40), rng.integers(20, H - 40)
        f[y:y + 20, x:x + 30] = rng.uniform(0, 255)
    return np.clip(f, 0, 255).astype(np.uint8)


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How far the content of ``b`` moved against ``a`` (px), centre crop (away from the mirrored border)."""
    ca, cb = (x[40:140, 50:190].astype(np.float32) for x in (a, b))
    win = cv2.createHanningWindow(ca.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(ca, cb, win)
    return dx, dy


def _still(name: str) -> bodyworn.Wearer:
    return replace(bodyworn.wearer_for(name), sway_px=0.0, turn_deg_s=0.0, hand=None)


def test_same_name_same_motion_other_name_other_motion() -> None:
    frames = [(i / 30, _scene(i)) for i in range(40)]
    a = [f for _, f in bodyworn.apply(iter(frames), "clip_001")]
    b = [f for _, f in bodyworn.apply(iter(frames), "clip_001")]
    c = [f for _, f in bodyworn.apply(iter(frames), "clip_002")]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert bodyworn.wearer_for("clip_001") != bodyworn.wearer_for("clip_002")
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    # times are from the clip's own first frame: the same clip later in a file moves the same way
    later = [f for _, f in bodyworn.apply(iter([(t + 100.0, f) for t, f in frames]), "clip_001")]
    assert all(np.array_equal(x, y) for x, y in zip(a, later, strict=True))


@pytest.mark.parametrize("bob", [2.0, 4.0])
def test_a_bob_of_n_px_moves_the_picture_n_px(bob: float) -> None:
    w = replace(_still("clip_003"), bob_px=bob, bob_phase=0.0, step_hz=2.0)
    scene = _scene()
    t_peak, t_trough = 1 / (4 * w.step_hz), 3 / (4 * w.step_hz)  # sin = +1 and -1
    base = bodyworn.warp(scene, w, 0.0, ("bob",))  # the zoomed frame at rest (sin 0 = 0)
    up = bodyworn.warp(scene, w, t_peak, ("bob",))
    down = bodyworn.warp(scene, w, t_trough, ("bob",))
    dx, dy = _shift(base, up)
    assert abs(dy - bob) < 0.3 and abs(dx) < 0.3
    dx, dy = _shift(up, down)
    assert abs(dy + 2 * bob) < 0.4 and abs(dx) < 0.3
    # at twice the width the same motion is twice the pixels (amplitudes are at 240 px)
    big = cv2.resize(scene, (2 * W, 2 * H))
    moved = bodyworn.warp(big, w, t_peak, ("bob",))
    dx, dy = _shift(cv2.resize(bodyworn.warp(big, w, 0.0, ("bob",)), (W, H)), cv2.resize(moved, (W, H)))
    assert abs(dy - bob) < 0.3


def test_turn_pans_by_its_speed_and_stops() -> None:
    w = replace(_still("clip_004"), bob_px=0.0, turn_start_s=0.2, turn_s=0.6, turn_deg_s=60.0)
    # the whole turn: peak 60 deg/s over 0.6 s, raised cosine, so 18 degrees, 36 px at 2 px a degree
    assert bodyworn.pan_px(w, 0.0) == 0.0
    assert bodyworn.pan_px(w, 2.0) == pytest.approx(60 * 0.6 / 2 * bodyworn.PX_PER_DEG)
    scene = _scene(1)
    before = bodyworn.warp(scene, w, 0.1, ("turn",))
    mid = bodyworn.warp(scene, w, 0.5, ("turn",))  # the middle of the turn: half the pan
    dx, dy = _shift(before, mid)
    assert abs(dx + bodyworn.pan_px(w, 0.5)) < 0.5 and abs(dy) < 0.3  # turning right moves the scene left
    # speed at the middle: the peak, 60 deg/s = 4 px per frame at 30 fps
    dx, _ = _shift(bodyworn.warp(scene, w, 0.5, ("turn",)), bodyworn.warp(scene, w, 0.5 + 1 / 30, ("turn",)))
    assert abs(-dx - 60 * bodyworn.PX_PER_DEG / 30) < 0.4
    after = [bodyworn.warp(scene, w, t, ("turn",)) for t in (1.0, 1.5)]
    assert np.array_equal(after[0], after[1])  # the turn is over: the camera is still again


def test_fisheye_magnifies_the_centre_and_keeps_the_corners() -> None:
    w = bodyworn.wearer_for("clip_005")
    k = w.fisheye_k
    ramp = np.tile(np.arange(W, dtype=np.float32), (H, 1))  # each pixel's value is its column
    out = bodyworn.warp(ramp, w, 0.0, ("fisheye",))
    c = (W - 1) / 2
    # near the centre a step of 10 px in the output looks 10 / (1 + k) px across the scene (magnified)
    assert out[H // 2, int(c + 10.5)] - out[H // 2, int(c + 0.5)] == pytest.approx(10 / (1 + k), abs=0.2)
    assert out[0, W - 1] == pytest.approx(W - 1, abs=0.5) and out[H - 1, 0] == pytest.approx(0, abs=0.5)
    # barrel: at the top the same output column shows the scene from further out than in the middle, so a
    # straight vertical line near the edge bows outwards in the middle
    assert out[0, 200] > out[H // 2, 200] + 3


def test_hand_darkens_part_of_the_frame_for_a_moment_only() -> None:
    name = next(f"c{i}" for i in range(100) if bodyworn.wearer_for(f"c{i}").hand is not None)
    w = bodyworn.wearer_for(name)
    start, dur, _, reach, grey = w.hand  # type: ignore[misc]
    scene = np.full((H, W), 200, np.uint8)
    times = [0.0, start + dur / 2, start + dur + 0.1]
    out = [f for _, f in bodyworn.apply(iter([(t, scene) for t in times]), name, ("hand",))]
    assert np.array_equal(out[0], scene) and np.array_equal(out[2], scene)
    dark = (out[1] < 100).mean()
    assert 0.5 * reach * 0.5 < dark < 1.0  # covers a good part of the frame, never all of it
    assert out[1].min() <= grey + 2


def test_unknown_part_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown wearer-motion parts"):
        list(bodyworn.apply(iter([(0.0, _scene())]), "x", ("jump",)))

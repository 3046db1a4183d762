"""Our Farneback flow is OpenCV's (to float rounding), computed with each frame expanded once."""

from datetime import datetime

import cv2
import numpy as np
import pytest

from custodes.analyze import farneback, motion
from custodes.media.decode import gray_frames
from custodes.media.synth import ClipSpec, write_clip

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """A struggle and its camera, at the size the motion pass analyses."""
    path = write_clip(tmp_path_factory.mktemp("flow") / "struggle.mp4",
                      ClipSpec("CAM-1", datetime(2026, 1, 1), 3, seed=5, struggles=[(0, 3)]))
    return [f for _, f in gray_frames(path, fps=motion.FPS, size=motion.SIZE)]


@pytest.mark.parametrize("winsize", [motion.FLOW_WINSIZE, motion.GRAINY_WINSIZE])
def test_flow_is_opencvs(frames, winsize):
    ex = farneback.Expander(motion.SIZE)
    errors, moving = [], []
    for a, b in zip(frames, frames[1:], strict=False):
        ref = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, winsize, 2, 5, 1.1, 0)
        ours = ex.flow(ex.expand(a), ex.expand(b), winsize)
        assert ours.shape == ref.shape and ours.dtype == np.float32
        errors.append(np.abs(ours - ref))
        moving.append(np.abs(ref).max())
    err = np.stack(errors)
    assert max(moving) > 2  # the clip does move: the comparison is not of two zero fields
    # sums in another order: a few 1e-6 px on average; a pixel whose flow crosses the frame's edge in one
    # and not the other may differ more, and such pixels are rare
    assert err.mean() < 1e-4
    assert np.quantile(err, 0.999) < 1e-2


def test_an_expander_flows_at_its_own_pyramid_scale(frames):
    """The pyramid scale is stated once, in the expander's parameters: its flow is OpenCV's at that scale."""
    params = farneback.Params(pyr_scale=0.6, levels=3)
    ex = farneback.Expander(motion.SIZE, params)
    a, b = frames[10], frames[11]
    ref = cv2.calcOpticalFlowFarneback(a, b, None, 0.6, 3, 9, 2, 5, 1.1, 0)
    at_half = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 2, 5, 1.1, 0)
    ours = ex.flow(ex.expand(a), ex.expand(b), 9)
    assert np.abs(ours - ref).mean() < 1e-4
    assert np.abs(at_half - ref).mean() > 1e-3  # the scale matters: a wrong one would show


def test_expansions_of_another_pyramid_are_refused(frames):
    coarse = farneback.Expander(motion.SIZE, farneback.Params(levels=1))
    fine = farneback.Expander(motion.SIZE)
    with pytest.raises(ValueError, match="levels"):
        fine.flow(coarse.expand(frames[0]), coarse.expand(frames[1]), 9)


def test_a_shifted_texture_flows_by_the_shift():
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (220, 280)).astype(np.uint8), (0, 0), 2)
    a, b = texture[20:200, 20:260], texture[20:200, 17:257]  # content moves 3 px right
    ex = farneback.Expander((240, 180))
    f = ex.flow(ex.expand(a), ex.expand(b), 9)
    inner = f[20:-20, 20:-20]
    assert np.median(inner[..., 0]) == pytest.approx(3.0, abs=0.05)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.05)


def test_the_motion_pass_expands_each_frame_once(frames, monkeypatch):
    calls = []
    expand = farneback.Expander.expand

    def counting(self, frame):
        calls.append(frame.shape)
        return expand(self, frame)

    shifts = []
    frame_shift = motion.frame_shift

    def recording(prev, cur):
        shifts.append(frame_shift(prev, cur))
        return shifts[-1]

    monkeypatch.setattr(farneback.Expander, "expand", counting)
    monkeypatch.setattr(motion, "frame_shift", recording)
    tr = motion.track((i / 15, f) for i, f in enumerate(frames))
    assert len(tr.times) == len(frames) - 1
    # once per frame, plus the previous frame of each pair shifted for camera motion (a fixed camera: few),
    # plus the frames re-expanded when the grain smoothing changed (clean footage: never)
    shifted = sum(1 for s in shifts if s != (0.0, 0.0))
    assert shifted <= len(shifts) // 4
    assert len(calls) == len(frames) + shifted


def test_each_pair_of_the_motion_pass_flows_as_opencv_on_its_frames_when_the_grain_smoothing_switches(
        tmp_path, monkeypatch):
    """Clean footage that turns grainy: the smoothing starts mid-clip, the frame kept from the last pair is
    smoothed again, and its cached expansion must not be reused. Every pair's flow is OpenCV's on that
    pair's two frames, smoothed alike."""
    path = write_clip(tmp_path / "dusk.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 6, seed=8, struggles=[(1, 5)]))
    rng = np.random.default_rng(2)
    frames = []
    for i, (_, f) in enumerate(gray_frames(path, fps=motion.FPS, size=motion.SIZE)):
        if i >= 30:
            f = np.clip(f + rng.normal(0, 8, f.shape), 0, 255).astype(np.uint8)
        frames.append(f)
    flows = []
    ours = farneback.Expander.flow_planes

    def recording(self, p, c, w, iterations=2):
        fx, fy = ours(self, p, c, w, iterations)
        flows.append((w, np.dstack((fx, fy))))
        return fx, fy

    monkeypatch.setattr(farneback.Expander, "flow_planes", recording)
    tr = motion.MotionTrack()
    smoothing = []  # what each pair was smoothed by (set before its flow)
    for i, f in enumerate(frames):
        tr.add_frame(i / 15, f)
        smoothing.append(tr.smoothing)
    assert len(flows) == len(frames) - 1
    assert smoothing[1] == 0 and smoothing[-1] > 0  # it did switch
    for i, ((win, flow), s) in enumerate(zip(flows, smoothing[1:], strict=True)):
        a, b = motion._smooth(frames[i], s), motion._smooth(frames[i + 1], s)
        dx, dy = motion.frame_shift(a, b)
        if dx or dy:  # a pair the camera-motion step aligned: the flow is of the shifted previous frame
            a = motion.shifted(a, dx, dy)
        assert win == (motion.GRAINY_WINSIZE if s else motion.FLOW_WINSIZE)
        ref = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, win, 2, 5, 1.1, 0)
        assert np.abs(flow - ref).mean() < 1e-3, i

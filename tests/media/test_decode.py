"""Cheapest decoding passes."""

from datetime import datetime
from fractions import Fraction

import av
import numpy as np
import pytest

from custodes.media.decode import gray_frames, keyframe_cuts, packet_timeline
from custodes.media.synth import ClipSpec, write_clip

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database


def test_scene_cut_between_two_cameras_is_found(tmp_path):
    a = write_clip(tmp_path / "a.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 6, seed=1, scene=0))
    b = write_clip(tmp_path / "b.mp4", ClipSpec("CAM-2", datetime(2026, 1, 1), 6, seed=2, scene=2, grey=True))
    joined = tmp_path / "edit.mp4"
    with av.open(str(joined), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 640, 360, "yuv420p"
        vs.options = {"g": "10"}  # a keyframe every second, as body cameras write them
        for src in (a, b):
            with av.open(str(src)) as c:
                for f in c.decode(video=0):
                    for p in vs.encode(av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")):
                        out.mux(p)
        for p in vs.encode():
            out.mux(p)
    cuts = keyframe_cuts(joined)
    assert len(cuts) == 1 and 5.5 <= cuts[0] <= 7.0
    assert keyframe_cuts(a) == []


def test_packet_timeline_reads_no_pixels(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 8, seed=4, struggles=[(4, 8)]))
    pt = packet_timeline(clip)
    assert len(pt.video_bytes_per_s) == 8 and pt.keyframes
    assert pt.video_bytes_per_s[5:].mean() > 2 * pt.video_bytes_per_s[:3].mean()  # the struggle costs bits


def _numbered_video(path, rate, seconds=4):
    """Frame i is a flat grey of level 4 * (i % 60): the sampled frames say which source frames they were."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=Fraction(rate).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.options = {"crf": "0", "g": "30"}
        n = int(round(float(rate) * seconds))
        for i in range(n):
            img = np.full((48, 64, 3), 4 * (i % 60), np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path, n


def _sample(path, fps, start_s=0.0, end_s=None):
    return [(t, int(round(float(f.mean()) / 4))) for t, f in gray_frames(path, start_s, end_s, fps=fps, size=(32, 24))]


def test_faster_source_is_thinned_to_the_nearest_frame_per_slot(tmp_path):
    path, n = _numbered_video(tmp_path / "v60.mp4", 60)
    got = _sample(path, 30)
    assert [k for _, k in got] == [i % 60 for i in range(0, n, 2)]  # exactly every other frame
    path, n = _numbered_video(tmp_path / "v25.mp4", 25)
    got = _sample(path, 15)
    gaps = np.diff([t for t, _ in got])
    assert abs(len(got) - 15 * n / 25) <= 1  # 15 a second...
    assert set(np.round(gaps, 2)) <= {0.04, 0.08}  # ...each the source frame nearest to its slot


def test_slower_or_equal_source_keeps_every_frame(tmp_path):
    for rate, fps in ((10, 15), (30000 / 1001, 30), (30, 30), (25, 30)):
        path, n = _numbered_video(tmp_path / f"v{rate:.0f}.mp4", rate)
        got = _sample(path, fps)
        assert [k for _, k in got] == [i % 60 for i in range(n)], (rate, fps)


def test_window_holds_only_its_own_frames(tmp_path):
    path, n = _numbered_video(tmp_path / "w.mp4", 30)
    got = _sample(path, 15, start_s=1.0, end_s=2.0)
    assert all(1.0 <= t < 2.0 for t, _ in got)
    assert [k for _, k in got] == [i % 60 for i in range(30, 60, 2)]


def test_frames_are_scaled_exactly_as_a_per_frame_reformat_scales_them(tmp_path):
    # the models learned these pixels: the pass's shared scaler (a speed-up) must not change one of them
    clip = write_clip(tmp_path / "c.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 3, seed=5, struggles=[(0, 3)]))
    with av.open(str(clip)) as c:
        expected = [f.reformat(width=240, height=180, format="gray").to_ndarray() for f in c.decode(video=0)]
    got = [g for _, g in gray_frames(clip, fps=1000, size=(240, 180))]
    assert len(got) == len(expected) > 10
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))

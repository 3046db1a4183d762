"""Cheapest decoding passes."""

from datetime import datetime

import av

from custodes.media.decode import keyframe_cuts, packet_timeline
from custodes.media.synth import ClipSpec, write_clip


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

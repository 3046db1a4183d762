"""Scene cuts between keyframes: found in the full pass's frame pairs, dated to the frame, reported once."""

from datetime import datetime

import av
import pytest

from custodes.analyze import scene_cuts
from custodes.media.decode import keyframe_cuts
from custodes.media.synth import ClipSpec, write_clip
from custodes.triage.score import analyze_video

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database

TIMES = [i / 10 for i in range(1, 11)]


def test_one_pair_whose_frames_differ_in_layout_between_pairs_that_do_not_is_a_cut():
    diffs = [0.3, 0.4, 16.0, 0.5, 0.3, 0.2, 0.4, 0.3, 0.2, 0.3]
    similarity = [0.99, 0.98, 0.2, 0.97, 0.99, 0.99, 0.98, 0.99, 0.99, 0.99]
    assert scene_cuts.between_frames(TIMES, diffs, similarity) == [0.3]


def test_motion_is_not_a_cut():
    # a struggle close to the camera: large differences, the scene's layout stays
    struggle = [3.0, 6.0, 11.0, 12.5, 14.0, 12.0, 9.0, 5.0, 2.0, 1.0]
    assert scene_cuts.between_frames(TIMES, struggle, [0.95, 0.9, 0.8, 0.75, 0.7, 0.75, 0.85, 0.9, 0.95, 0.97]) == []
    # a camera swung round: the layout goes over several pairs, none stands out
    swing = [4.0, 12.0, 18.0, 20.0, 19.0, 15.0, 9.0, 4.0, 2.0, 1.0]
    assert scene_cuts.between_frames(TIMES, swing, [0.8, 0.45, 0.3, 0.25, 0.3, 0.4, 0.6, 0.8, 0.9, 0.95]) == []
    # frames sent three times each (10 fps as 30): every third pair changes, and only a little
    repeated = [0.0, 0.0, 11.0, 0.0, 0.0, 12.0, 0.0, 0.0, 10.5, 0.0]
    assert scene_cuts.between_frames(TIMES, repeated, [1.0, 1.0, 0.9, 1.0, 1.0, 0.88, 1.0, 1.0, 0.9, 1.0]) == []


def test_a_cut_found_by_both_passes_is_reported_once_at_the_frame():
    keyframes = [0.0, 3.0, 6.0, 9.0]
    merged = scene_cuts.merge(keyframe_cuts=[6.0, 9.0], frame_cuts=[4.6, 10.1], keyframes=keyframes)
    # 4.6 lies between keyframes 3 and 6: the keyframe cut at 6 is that cut; the one at 9 is not explained
    assert merged == [(4.6, "frames"), (9.0, "keyframes"), (10.1, "frames")]


@pytest.fixture(scope="module")
def spliced_edit(tmp_path_factory):
    """Two cameras' recordings, each with a struggle, spliced every 2.3 s; keyframes every 3 s."""
    d = tmp_path_factory.mktemp("edit")
    a = write_clip(d / "a.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 20, seed=1, scene=0, struggles=[(3, 9)]))
    b = write_clip(d / "b.mp4", ClipSpec("CAM-2", datetime(2026, 1, 1), 20, seed=2, scene=1, struggles=[(10, 16)]))
    frames = [[f.to_ndarray(format="rgb24") for f in av.open(str(p)).decode(video=0)] for p in (a, b)]
    out, cuts, src = d / "edit.mp4", [], 0
    with av.open(str(out), "w") as o:
        vs = o.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 640, 360, "yuv420p"
        # no keyframe at the cuts (sc_threshold 0): the splice hides between keyframes
        vs.options = {"g": "30", "sc_threshold": "0", "crf": "31"}
        for i in range(200):
            if i and i % 23 == 0:
                src ^= 1
                cuts.append(i / 10)
            for p in vs.encode(av.VideoFrame.from_ndarray(frames[src][i], format="rgb24")):
                o.mux(p)
        for p in vs.encode():
            o.mux(p)
    return out, cuts, a


def test_cuts_spliced_between_keyframes_are_found_to_the_frame(spliced_edit):
    path, truth, _ = spliced_edit
    assert len(keyframe_cuts(path)) < len(truth)  # the keyframe pass alone misses most of them
    res = analyze_video(path, with_audio_events=False)
    found = sorted((s.start_s, s.data["found_by"]) for s in res.signals if s.kind == "scene_cut")
    assert [t for t, _ in found] == pytest.approx(truth, abs=0.051)
    assert {how for _, how in found} == {"frames"}  # the keyframe cut (at 3 s) is the frame cut at 2.3 s
    assert all(s.version == scene_cuts.VERSION for s in res.signals if s.kind == "scene_cut")


def test_an_unedited_recording_with_a_struggle_has_no_cuts(spliced_edit):
    _, _, original = spliced_edit
    res = analyze_video(original, with_audio_events=False)
    assert res.ok and not [s for s in res.signals if s.kind == "scene_cut"]

"""The face tracker: detections joined over time, gaps filled, the mask kept on the face."""

import numpy as np
import pytest

from custodes.redact.faces import LOOK_AHEAD, FaceTracker
from custodes.redact.testclips import box_mask, mask_figures

pytestmark = pytest.mark.no_database
W, H = 640, 360


def moving_face(n: int = 60) -> list[tuple[int, int, int, int]]:
    """A face crossing the frame fast (14 px a frame) and growing, as true boxes."""
    return [(20 + 14 * i, 80 + i, 20 + 14 * i + 30 + i, 80 + i + 36 + i) for i in range(n)]


def detections(truth, missed, jitter=2.0, seed=0):
    """What a detector gives: a box a little larger than the face, jittered, none in the ``missed`` frames."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (x1, y1, x2, y2) in enumerate(truth):
        if i in missed:
            out.append(np.zeros((0, 5), np.float32))
            continue
        w, h = x2 - x1, y2 - y1
        b = np.array([x1 - 0.1 * w, y1 - 0.1 * h, x2 + 0.1 * w, y2 + 0.1 * h], np.float32) + rng.normal(0, jitter, 4)
        out.append(np.array([[*b, 0.6]], np.float32))
    return out


def run(dets):
    tr = FaceTracker(W, H)
    masks = []
    for i, d in enumerate(dets):
        tr.add(i, d)
        if i >= LOOK_AHEAD:
            masks.append(tr.boxes(i - LOOK_AHEAD))
    masks += [tr.boxes(j) for j in range(max(0, len(dets) - LOOK_AHEAD), len(dets))]
    return masks


def test_a_moving_face_missed_for_stretches_is_covered_in_every_frame():
    truth = moving_face()
    # missed in its first two frames, for five frames in a row, and here and there
    missed = {0, 1, 12, 13, 14, 15, 16, 30, 33, 41, 42, 50}
    masks = run(detections(truth, missed))
    assert len(masks) == len(truth)
    fig = mask_figures([box_mask(m, W, H) for m in masks], truth)
    assert fig["faces_under_90pct"] == 0, fig
    assert fig["outside_over_face_area"] < 3, fig
    # one mask a frame where one face is: a track, not a pile of boxes from the frames around it
    assert max(len(m) for m in masks) == 1


def test_the_union_of_neighbouring_boxes_would_mask_far_more():
    """What the tracker replaced: every box of +-8 frames on every frame hides several times the face."""
    truth = moving_face()
    dets = detections(truth, set())
    union = [[tuple(int(v) for v in d[0, :4]) for d in dets[max(0, i - 8):i + 9] if len(d)] for i in range(len(dets))]
    tracked = mask_figures([box_mask(m, W, H) for m in run(dets)], truth)
    merged = mask_figures([box_mask(m, W, H) for m in union], truth)
    assert merged["outside_over_face_area"] > 3 * tracked["outside_over_face_area"]


def test_two_faces_crossing_keep_their_own_tracks():
    a = moving_face(40)
    b = [(600 - 14 * i - 40, 100, 600 - 14 * i, 148) for i in range(40)]
    da, db = detections(a, {20, 21}), detections(b, {19, 22}, seed=1)
    dets = [np.concatenate([x, y]) for x, y in zip(da, db, strict=True)]
    masks = run(dets)
    for truth in (a, b):
        fig = mask_figures([box_mask(m, W, H) for m in masks], truth)
        assert fig["faces_under_90pct"] == 0, fig


def test_a_lone_false_alarm_is_held_only_briefly():
    dets = [np.zeros((0, 5), np.float32) for _ in range(30)]
    dets[10] = np.array([[100, 100, 130, 130, 0.25]], np.float32)
    masked = [i for i, m in enumerate(run(dets)) if m]
    assert 10 in masked and len(masked) <= 3

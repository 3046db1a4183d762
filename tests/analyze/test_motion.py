from datetime import datetime

import cv2
import numpy as np
import pytest

from custodes.analyze import motion
from custodes.analyze.motion import FEATURE_NAMES, FPS, SIZE, clip_features, noise_sigma, track
from custodes.media.decode import gray_frames
from custodes.media.synth import ClipSpec, transcode, write_clip
from custodes.triage.score import load_model

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("motion")
    calm = write_clip(d / "calm.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 6, seed=3))
    fight = write_clip(d / "fight.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 6, seed=3, struggles=[(0, 6)]))
    small = transcode(fight, d / "fight_small.mp4", 320, 180)
    return calm, fight, small


def feats(path):
    return dict(zip(FEATURE_NAMES, clip_features(gray_frames(path, fps=FPS, size=SIZE)), strict=True))


def test_struggle_has_more_irregular_motion_than_a_round(clips):
    calm, fight, _ = clips
    c, f = feats(calm), feats(fight)
    assert f["local_mean_mean"] > 3 * c["local_mean_mean"]
    assert f["vif_change_mean_mean"] > 3 * c["vif_change_mean_mean"]
    assert f["c15_strong_reversal_lag1"] > c["c15_strong_reversal_lag1"]


def test_features_do_not_depend_on_source_resolution(clips):
    _, fight, small = clips
    a, b = feats(fight), feats(small)
    for k in ("local_mean_mean", "vif_change_mean_mean", "moving_frac_mean" if "moving_frac_mean" in a else
              "mag_1_2_mean"):
        assert b[k] == pytest.approx(a[k], rel=0.25), k


def test_shipped_model_matches_feature_set_and_ranks_real_fights_first(fight_surv):
    """Real CCTV from one camera (a source of the training set): each fight above each non-fight.

    Not evidence of accuracy (the grouped cross-validation in `make bench` is); evidence that
    the shipped model, the features and their order are the ones it was trained with.
    """
    model = load_model()
    assert model.num_feature() == len(FEATURE_NAMES)
    rows = [clip_features(gray_frames(fight_surv / d / f"{n}.mp4", fps=FPS, size=SIZE))
            for d, n in (("fight", "fi001"), ("fight", "fi002"), ("noFight", "nofi001"), ("noFight", "nofi002"))]
    p = model.predict(np.stack(rows))
    assert min(p[:2]) > max(p[2:])


def _blob_frames(steps, size=40, seed=0):
    """A textured square on a textured wall, moved by ``steps`` pixels (x) frame by frame."""
    rng = np.random.default_rng(seed)
    wall = rng.integers(60, 120, (SIZE[1], SIZE[0])).astype(np.uint8)
    wall = np.repeat(np.repeat(wall[::4, ::4], 4, 0), 4, 1)[:SIZE[1], :SIZE[0]]
    patch = rng.integers(0, 255, (size // 4, size // 4)).astype(np.uint8)
    patch = np.repeat(np.repeat(patch, 4, 0), 4, 1)
    x = SIZE[0] // 2 - size // 2
    for i, dx in enumerate([0, *steps]):
        x += dx
        f = wall.copy()
        f[70:70 + size, x:x + size] = patch
        yield i / FPS, f


def _cell_feats(steps, size=40):
    return dict(zip(FEATURE_NAMES, track(_blob_frames(steps, size)).window_features(), strict=True))


def test_back_and_forth_reverses_and_does_not_drift_while_walking_drifts():
    flail = _cell_feats([3, 3, -3, -3] * 8)  # a limb striking back and forth, 4 frames a cycle
    walk = _cell_feats([3] * 32)
    assert flail["c30_reversal_w_lag2"] > 0.7 > 0.1 > walk["c30_reversal_w_lag2"]
    assert walk["c30_drift_w_8f"] > 0.7 > 0.4 > flail["c30_drift_w_8f"]
    assert flail["c15_opposite_w"] > walk["c15_opposite_w"]


def test_direction_features_are_ratios_so_distance_does_not_matter():
    near = _cell_feats([4, 4, -4, -4] * 8, size=48)
    far = _cell_feats([2, 2, -2, -2] * 8, size=24)  # the same motion twice as far from the camera
    for k in ("c30_reversal_w_lag2", "c30_drift_w_8f", "c15_reversal_active_lag2"):
        assert far[k] == pytest.approx(near[k], abs=0.15), k


def test_a_still_scene_has_no_direction_to_measure():
    still = _cell_feats([0] * 20)
    assert np.isnan(still["c30_reversal_w_lag1"]) and np.isnan(still["c15_drift_w_8f"])
    assert still["c30_strong_reversal_lag1"] == 0.0


def _grain(frames, sigma, seed=1):
    rng = np.random.default_rng(seed)
    for t, f in frames:
        yield t, np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8)


def _smooth_scene(shift=0):
    y, x = np.mgrid[0:SIZE[1], 0:SIZE[0]]
    return (128 + 60 * np.sin((x + shift) / 9.0) * np.cos(y / 13.0)).astype(np.uint8)


@pytest.mark.parametrize("sigma", [3.0, 6.0, 10.0])
def test_noise_estimate_reads_the_grain_added(sigma):
    (_, a), (_, b) = _grain([(0, _smooth_scene()), (0, _smooth_scene())], sigma)
    assert noise_sigma(a, b) == pytest.approx(sigma, rel=0.15)


def test_noise_estimate_is_not_fooled_by_texture_or_by_motion():
    frames = [f for _, f in _blob_frames([0])]  # sharp blocky texture, nothing moves: the spatial read is high
    assert noise_sigma(frames[0], frames[1]) < 1.0
    # a smooth scene panning by 4 px: every pixel changes (the temporal read is high), none is noisy
    assert noise_sigma(_smooth_scene(0), _smooth_scene(4)) < 1.0


def test_clean_frames_are_analysed_unsmoothed_and_grainy_ones_smoothed():
    steps = [3, 3, -3, -3] * 6
    clean = track(_blob_frames(steps))
    assert clean.smoothing == 0.0 and max(clean.noise) < 1.0
    grainy = track(_grain(_blob_frames(steps), 8.0))
    assert grainy.noise_level() == pytest.approx(8.0, rel=0.2) and grainy.smoothing > 1.0


def test_smoothing_keeps_grain_from_reading_as_violent_motion(monkeypatch):
    """A still, dim, smooth scene with heavy grain (a cell at night): unsmoothed, flow sees every cell move."""
    still = list(_grain([(i / FPS, _smooth_scene()) for i in range(31)], 8.0))
    smoothed = dict(zip(FEATURE_NAMES, track(still).window_features(), strict=True))
    monkeypatch.setattr(motion, "NOISE_FLOOR", float("inf"))
    raw = dict(zip(FEATURE_NAMES, track(still).window_features(), strict=True))
    assert raw["local_mean_mean"] > 1.5 * smoothed["local_mean_mean"]
    assert raw["c15_cells_moving"] == 1.0 and smoothed["c15_cells_moving"] == 0.0


def _room(seed=4, size=(300, 240)):
    """A textured still room larger than the frame, so that a camera can move over it."""
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, size[::-1]).astype(np.uint8), (0, 0), 2.5)


def _view(room, x, y):
    w, h = SIZE
    return np.ascontiguousarray(room[y:y + h, x:x + w])


def test_frame_shift_reads_a_pan_and_not_a_still_camera():
    room = _room()
    dx, dy = motion.frame_shift(_view(room, 30, 20), _view(room, 24, 22))  # the camera pans left and down
    assert dx == pytest.approx(6, abs=0.3) and dy == pytest.approx(-2, abs=0.3)
    assert motion.frame_shift(_view(room, 30, 20), _view(room, 30, 20)) == (0.0, 0.0)


def test_frame_shift_is_not_taken_from_one_person_moving_in_a_plain_room():
    """The camera moves every tile; a person only the tiles they are in: a phase correlation of the whole frame
    alone follows the person (what the tile check is for)."""
    plain = np.full(SIZE[::-1], 90, np.uint8)
    a, b = plain.copy(), plain.copy()
    rng = np.random.default_rng(0)
    person = cv2.GaussianBlur(rng.integers(0, 255, (70, 40)).astype(np.uint8), (0, 0), 1.5)
    a[60:130, 100:140] = person
    b[60:130, 108:148] = person  # 8 px to the right
    assert motion.frame_shift(a, b) == (0.0, 0.0)


def test_camera_field_fits_a_roll_and_a_zoom_and_ignores_a_person():
    h, w = SIZE[1], SIZE[0]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xc, yc = xx - w / 2, yy - h / 2
    roll, zoom = np.deg2rad(1.5), 0.02
    u = zoom * xc - roll * yc + 1.0
    v = roll * xc + zoom * yc - 0.5
    fu, fv = u.copy(), v.copy()
    fu[40:100, 60:100] += 6  # a person moving on their own
    fx, fy, m = motion.camera_field(fu, fv)
    assert np.abs(fx - u).max() < 0.05 and np.abs(fy - v).max() < 0.05
    # the 2x3 map carries a previous pixel to where the flow says it went
    x0, y0 = 30.0, 150.0
    assert m @ [x0, y0, 1] == pytest.approx([x0 + u[150, 30], y0 + v[150, 30]], abs=0.05)


def test_a_camera_panning_over_a_still_room_shows_little_local_motion():
    """A body camera's wearer turning: the whole frame moves 4-7 px a pair, nobody moves. Without alignment
    the flow's error on large displacements reads as local motion: on these frames motion-6 (the median flow
    subtracted) read a local mean of 0.38 px and a frame difference of 8.1 grey levels, the affine field
    without the shift 0.40 and 0.65, motion-7 0.02 and 0.14."""
    room = _room(seed=9, size=(420, 240))
    frames = [(i / 15, _view(room, 170 - int(5.5 * i), 30 + (i % 3))) for i in range(30)]
    tr = motion.track(frames)
    rows = np.asarray(tr.rows)
    assert rows[:, 0].mean() < 0.1  # local_mean, px
    assert rows[:, 4].mean() < 0.4  # frame_diff, grey levels

from datetime import datetime

import numpy as np
import pytest

from custodes.analyze.motion import FEATURE_NAMES, FPS, SIZE, clip_features
from custodes.media.decode import gray_frames
from custodes.media.synth import ClipSpec, transcode, write_clip
from custodes.triage.score import load_model


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
    assert f["camera_shake_mean"] > c["camera_shake_mean"]


def test_features_do_not_depend_on_source_resolution(clips):
    _, fight, small = clips
    a, b = feats(fight), feats(small)
    for k in ("local_mean_mean", "vif_change_mean_mean", "moving_frac_mean" if "moving_frac_mean" in a else
              "mag_1_2_mean"):
        assert b[k] == pytest.approx(a[k], rel=0.25), k


def test_shipped_model_matches_feature_set_and_separates(clips):
    calm, fight, _ = clips
    model = load_model()
    assert model.num_feature() == len(FEATURE_NAMES)
    p = model.predict(np.stack([np.array(list(feats(calm).values())), np.array(list(feats(fight).values()))]))
    assert p[1] > p[0]

"""Windows and candidate spans: what the learned model is shown must look like what it learned from."""

import json

import numpy as np
import pytest

from custodes.analyze import motion
from custodes.triage import score

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database


def test_windows_last_as_long_as_the_training_clips():
    # the model's window statistics (max, spread, drift over the window) are learned on clips of one length;
    # scoring windows twice as long shows it numbers it never saw
    # (hockey's clips are 1.64 s, fight-surv's 2.0: each source within 0.4 s of the window)
    meta = json.loads((score.MODEL_DIR / f"{score.LGB_MODEL_NAME}.json").read_text())
    assert meta["clip_s_median_per_source"].keys() == {"fight-surv", "hockey"}
    assert all(abs(s - motion.WINDOW_S) <= 0.4 for s in meta["clip_s_median_per_source"].values())
    wins = score._windows(10.0, 20.0)
    assert all(abs((b - a) - motion.WINDOW_S) < 1e-9 for a, b in wins)
    assert [a for a, _ in wins] == [10.0 + k for k in range(len(wins))]  # 1-s hop
    assert wins[-1][1] == 20.0


def test_a_short_span_is_one_window():
    assert score._windows(5.0, 6.5) == [(5.0, 6.5)]


def test_bursts_of_motion_and_sound_in_a_long_video_become_spans_padded_by_one_window():
    bitrate = np.full(600, 1000.0)
    bitrate[300:310] = 5000.0  # a burst of motion
    loud = np.full(1200, -50.0)
    loud[100:104] = -20.0  # a shout at 50-52 s
    assert score.FULL_ANALYSIS_MAX_S < 600.0
    pad = motion.WINDOW_S
    assert score.candidate_spans(600.0, bitrate, loud, 0.5) == [(50.0 - pad, 52.0 + pad), (300.0 - pad, 310.0 + pad)]


def test_short_videos_are_analysed_whole():
    assert score.candidate_spans(90.0, np.zeros(90), None, 0.5) == [(0.0, 90.0)]


def _window(start: float, score_: float) -> dict:
    return {"start": start, "end": start + motion.WINDOW_S, "score": score_, "reasons": [{"signal": "x"}]}


def test_a_short_lull_does_not_split_an_event():
    # above threshold 100-104 s, one calm second, above again 105-109 s: one event, one segment
    scores = [0.9, 0.8, 0.9, 0.3, 0.3, 0.8, 0.9, 0.95, 0.7]
    segs = score.make_segments([_window(100.0 + i, s) for i, s in enumerate(scores)])
    assert [(s.start_s, s.end_s, s.score) for s in segs] == [(100.0, 108.0 + motion.WINDOW_S, 0.95)]


def test_events_far_apart_stay_separate_and_a_calm_video_keeps_its_best_window():
    wins = [_window(10.0, 0.9), _window(11.0, 0.2), _window(40.0, 0.7)]
    assert [(s.start_s, s.score) for s in score.make_segments(wins)] == [(10.0, 0.9), (40.0, 0.7)]
    calm = [_window(10.0, 0.1), _window(11.0, 0.3), _window(12.0, 0.2)]
    assert [(s.start_s, s.score) for s in score.make_segments(calm)] == [(11.0, 0.3)]


def test_grainy_footage_puts_a_caveat_on_what_fired_and_no_reason_of_its_own():
    fired = {"p_visual": 0.9, "noise": motion.NOISE_FLOOR + 3.0}
    _, reasons = score.combine(fired)
    assert [r["signal"] for r in reasons] == ["p_visual", "caveat:sensor_noise"]
    assert "grainy" in reasons[-1]["text"]
    same_score, _ = score.combine({**fired, "noise": 0.0})
    assert score.combine(fired)[0] == same_score  # a caveat, not a penalty: the reviewer decides
    assert [r["signal"] for r in score.combine({**fired, "noise": 0.0})[1]] == ["p_visual"]
    assert score.combine({"p_visual": 0.1, "noise": 9.0})[1] == []


def test_frames_come_in_batches_and_those_before_a_decoding_failure_are_kept():
    def frames():
        for i in range(70):
            yield i / 15, np.full((2, 2), i, dtype=np.uint8)
        raise score.DecodeError("decoding stopped: invalid data")

    got = []
    try:
        for batch in score._in_batches(frames(), 32):
            got.append([t for t, _ in batch])
    except score.DecodeError as exc:
        assert "invalid data" in str(exc)
    else:
        raise AssertionError("the decoding error was swallowed")
    assert [len(b) for b in got] == [32, 32, 6]
    assert [t for b in got for t in b] == [i / 15 for i in range(70)]


def test_the_motion_model_names_both_sources_and_tempers_what_it_is_sure_of():
    meta = json.loads((score.MODEL_DIR / f"{score.LGB_MODEL_NAME}.json").read_text())
    assert "fight-surv" in meta["data"] and "Hockey Fights" in meta["data"]
    assert 1.0 < meta["temperature"] <= 4.0  # fitted across sources: a model trained on one is over-sure on another
    model = score.load_model()
    X = np.random.default_rng(0).normal(size=(50, model.num_feature())).astype(np.float32)
    margin = model.booster.predict(X, raw_score=True)
    np.testing.assert_allclose(model.predict(X), 1 / (1 + np.exp(-margin / meta["temperature"])), rtol=1e-6)
    # tempered, a confident margin is less extreme but the order is the same
    assert np.array_equal(np.argsort(model.predict(X)), np.argsort(margin))

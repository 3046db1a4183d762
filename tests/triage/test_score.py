"""Windows and candidate spans: what the learned model is shown must look like what it learned from."""

import json

import numpy as np

from custodes.analyze import motion
from custodes.triage import score


def test_windows_last_as_long_as_the_training_clips():
    # the model's window statistics (max, spread, drift over the window) are learned on clips of one length;
    # scoring windows twice as long shows it numbers it never saw
    meta = json.loads((score.MODEL_DIR / f"{score.MODEL_NAME}.json").read_text())
    assert abs(meta["clip_s_median"] - motion.WINDOW_S) <= 0.25
    wins = score._windows(10.0, 20.0)
    assert all(abs((b - a) - motion.WINDOW_S) < 1e-9 for a, b in wins)
    assert [a for a, _ in wins] == [10.0 + k for k in range(len(wins))]  # 1-s hop
    assert wins[-1][1] == 20.0


def test_a_short_span_is_one_window():
    assert score._windows(5.0, 6.5) == [(5.0, 6.5)]


def test_one_busy_second_becomes_a_span_padded_by_one_window():
    bitrate = np.full(600, 1000.0)
    bitrate[300] = 5000.0
    spans = score.candidate_spans(600.0, bitrate, None, 0.5)
    assert spans == [(300.0 - motion.WINDOW_S, 301.0 + motion.WINDOW_S)]


def test_loud_half_seconds_become_candidates_too():
    bitrate = np.full(600, 1000.0)
    loud = np.full(1200, -40.0)
    loud[100:104] = -20.0  # 50.0-52.0 s, 20 dB over the median
    spans = score.candidate_spans(600.0, bitrate, loud, 0.5)
    assert spans == [(50.0 - motion.WINDOW_S, 52.0 + motion.WINDOW_S)]


def test_short_videos_are_analysed_whole():
    assert score.candidate_spans(90.0, np.zeros(90), None, 0.5) == [(0.0, 90.0)]

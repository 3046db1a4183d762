"""The video network's second look (triage/video_check.py): which windows, how fused, the shipped head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from custodes.triage import video_check
from custodes.triage.score import VideoResult, analyze_video
from tests.conftest import FIGHT_SURV as DATA

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="fight-surv is not here")


def _windows(scores: list[float]) -> list[dict]:
    return [{"start": float(i), "end": i + 2.0, "p_visual": p} for i, p in enumerate(scores)]


def test_the_best_window_is_always_checked_and_the_rest_by_budget_without_overlaps() -> None:
    ws = _windows([0.1, 0.9, 0.85, 0.2, 0.7, 0.01, 0.6])
    assert video_check.pick(ws, 10.0) == [1]  # one check for a short video: its best window
    assert video_check.budget(10.0) == 1 and video_check.budget(2 * video_check.CHECK_EVERY_S) == 3
    chosen = video_check.pick(ws, 2 * video_check.CHECK_EVERY_S)
    # 0.85 at [2, 4) overlaps the best [1, 3): skipped for 0.7 at [4, 6) and 0.6 at [6, 8)
    assert chosen == [1, 4, 6]
    # windows the motion models all but rule out are not worth a check, except a video's best
    low = _windows([0.01, 0.02, 0.001])
    assert video_check.pick(low, 10 * video_check.CHECK_EVERY_S) == [1]
    assert video_check.pick([], 100.0) == []


def test_the_video_network_can_raise_a_window_and_never_lowers_one() -> None:
    assert video_check.fused(0.2, 0.9) == pytest.approx(0.55)
    assert video_check.fused(0.8, 0.0) == 0.8
    for m in np.linspace(0, 1, 11):
        for v in np.linspace(0, 1, 11):
            assert m <= video_check.fused(m, v) <= max(m, v)


def test_the_head_predicts_as_the_standardised_logistic_regression_it_was_fitted_as() -> None:
    from custodes.triage.generalise import logistic_scores

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 16)) * rng.uniform(0.5, 3, size=16) + rng.normal(size=16)
    X[:, 5] = 1.0  # a constant feature: sklearn's scaler leaves it at scale 1
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=200) > X[:, 0].mean()).astype(int)
    test = rng.normal(size=(50, 16))
    head = video_check.train(X, y)
    np.testing.assert_allclose(head.predict(test), logistic_scores(X, y, test), atol=1e-6)


def test_the_shipped_head_names_its_network_data_and_mask() -> None:
    from custodes.analyze import video_net

    meta = json.loads((video_check.MODEL_DIR / f"{video_check.MODEL_NAME}.json").read_text())
    assert meta["network"] == video_net.VERSION and meta["clips"] == 1300 and meta["positives"] == 650
    assert "fight-surv" in meta["data"] and "Hockey Fights" in meta["data"] and "hockey_mask" in meta["masks"]
    assert len(meta["coef"]) == len(meta["mean"]) == len(meta["scale"]) == 512
    head = video_check.load_head()
    assert head.predict(np.asarray(meta["mean"])).shape == (1,)


@needs_data
def test_a_checked_clip_carries_both_scores_and_the_network_separates_fights_from_calm() -> None:
    fights = sorted((DATA / "fight").glob("*.mp4"))[:4]
    calm = sorted((DATA / "noFight").glob("*.mp4"))[:4]
    p_video = {}
    for clip in fights + calm:
        r = analyze_video(clip, with_audio_events=False)
        assert r.ok
        checked = [s for s in r.signals if s.kind == "p_visual" and s.data and "video_net" in s.data]
        assert len(checked) == 1  # a two-second clip: its best window
        d = checked[0].data
        assert checked[0].value >= d["motion"] - 1e-4  # raised or kept, never lowered
        p_video[clip] = d["video_net"]
    # training clips of the head (it is not judged here, only shown to be wired): fights score higher
    assert np.mean([p_video[c] for c in fights]) > np.mean([p_video[c] for c in calm]) + 0.3


def _struggle_clip(tmp_path: Path) -> tuple[Path, VideoResult]:
    """A 6-s synthetic struggle and its analysis without the video check."""
    from datetime import datetime

    from custodes.media.synth import ClipSpec, write_clip

    clip = tmp_path / "c.mp4"
    write_clip(clip, ClipSpec("CAM-1", datetime(2026, 1, 1), 6, fps=15, size=(320, 240), struggles=[(2.0, 5.0)],
                              seed=3))
    return clip, analyze_video(clip, with_audio_events=False, with_video_check=False)


def test_without_its_head_triage_goes_on_with_the_motion_score_and_says_so(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clip, plain = _struggle_clip(tmp_path)
    monkeypatch.setattr(video_check, "MODEL_DIR", tmp_path / "nowhere")
    video_check.load_head.cache_clear()
    try:
        r = analyze_video(clip, with_audio_events=False)
    finally:
        video_check.load_head.cache_clear()
    assert r.ok and "cannot be read" in r.stats["video_check"] and "motion score" in r.stats["video_check"]
    assert [s.score for s in r.segments] == [s.score for s in plain.segments]


def test_every_version_triage_stores_fits_its_column() -> None:
    # PostgreSQL refuses a longer string (SQLite would take it): a version that grows must be caught here
    from custodes.store import db
    from custodes.triage import score

    limits = {"analysis_runs": db.AnalysisRun.__table__.c.version.type.length,
              "jobs": db.Job.__table__.c.version.type.length,
              "signals": db.Signal.__table__.c.version.type.length,
              "segments": db.Segment.__table__.c.model_version.type.length}
    assert len(score.TRIAGE_VERSION) <= min(limits["analysis_runs"], limits["jobs"])
    assert len(score.MODEL_NAME) <= min(limits["signals"], limits["segments"])


def test_a_video_network_that_breaks_mid_check_leaves_the_motion_scores(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from custodes.analyze import video_net

    clip, plain = _struggle_clip(tmp_path)

    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("onnxruntime: bad allocation")

    monkeypatch.setattr(video_net, "embed", broken)
    r = analyze_video(clip, with_audio_events=False)
    assert r.ok and "check failed (RuntimeError: onnxruntime: bad allocation)" in r.stats["video_check"]
    assert [s.score for s in r.segments] == [s.score for s in plain.segments]

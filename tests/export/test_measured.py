"""The method statement's error rates come from what `make bench` measured, named by run, never typed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from custodes.export import measured

REPO = Path(__file__).resolve().parents[2]


def _benches() -> dict:
    run = {"date": "2026-12-02 14:00 UTC", "commit": "abc1234"}
    return {
        "speech: custodes transcribe vs faster-whisper run directly (Whisper base int8, same weights, same files)":
            {"run": run, "result": {"en": {"custodes_wer": 0.058}, "ru": {"custodes_wer": 0.155}}},
        "violence model, fight-surv cross-validation": {"run": run, "result": {
            "clips": 300, "visual_score_grouped": {"roc_auc": 0.909}}},
        "face redaction vs deface (astronaut face over 20 clips)": {"run": run, "result": {
            "frames": 1200, "custodes": {"faces_under_90pct": 0}}},
        "ingest (zip of 5,000 small members)": {"run": run, "result": {"ratio_vs_sha256sum": 0.01}},
    }


def test_figures_are_picked_with_their_run_and_said_in_both_languages() -> None:
    figures = measured.pick(_benches())
    assert set(figures) == {"speech_wer", "triage_auc", "redaction"}
    en = " ".join(measured.sentences("en", figures))
    assert "English 5.8 %" in en and "Russian 15.5 %" in en and "ROC AUC 0.909 on 300" in en
    assert "0 of 1200 test frames" in en and en.count("(make bench, 2026-12-02 14:00 UTC, abc1234)") == 3
    ru = " ".join(measured.sentences("ru", figures))
    assert "русский 15.5 %" in ru and "ROC AUC 0.909" in ru


def test_nothing_measured_says_so_instead_of_a_number() -> None:
    assert measured.sentences("en", {}) == []
    assert measured.pick({"speech: custodes transcribe x": {"run": {}, "result": {"en": "no synthesiser"}}}) == {}


def test_the_bench_report_writes_the_figures_the_report_reads(tmp_path: Path, monkeypatch) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import report

    target = tmp_path / "measured.json"
    monkeypatch.setattr(measured, "FILE", target)
    report.write_measured({"benches": _benches()})
    assert json.loads(target.read_text())["speech_wer"]["ru"] == 0.155
    assert any("15.5 %" in x for x in measured.sentences("en"))


def test_the_shipped_figures_parse() -> None:
    # what the package report quotes today: valid JSON (possibly empty), each figure with its run
    doc = json.loads(measured.FILE.read_text())
    for fig in doc.values():
        assert fig["date"] and fig["commit"]

"""Triage replaces its own results for a video, and only those: the in-file edits the timeline found survive."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.db import AnalysisRun, Signal
from tests.analyze.test_edits import clip, cut_minute
from tests.conftest import run_cli

pytest.importorskip("rapidocr_onnxruntime")


def _edits(case_dir: Path) -> list[tuple[str, float]]:
    with Case(case_dir).sessions() as s:
        return [(g.kind, g.start_s) for g in s.scalars(select(Signal).where(Signal.analyzer == "edits"))]


@pytest.mark.slow
def test_triage_and_forced_retriage_keep_the_edits_found_by_the_timeline(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    clip(drive / "cut.mp4", cut_minute, 60)
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    run_cli("ingest", str(case_dir), str(drive), check=True)
    run_cli("timeline", str(case_dir), check=True)
    found = _edits(case_dir)
    assert any(kind == "clock_jump_forward" for kind, _ in found), found
    run_cli("triage", str(case_dir), check=True)
    assert _edits(case_dir) == found
    run_cli("triage", str(case_dir), "--force", check=True)
    assert _edits(case_dir) == found
    with Case(case_dir).sessions() as s:  # triage ran again, and its own results are there once
        runs = list(s.scalars(select(AnalysisRun).where(AnalysisRun.analyzer == "triage")))
    assert len(runs) == 1 and runs[0].status == "ok"
    assert run_cli("verify", str(case_dir)).returncode == 0

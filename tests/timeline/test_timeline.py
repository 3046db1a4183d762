"""Overlay OCR and timelines on the demo drive: camera IDs, clocks, the deleted interval."""

import hashlib
import json
from datetime import datetime

import pytest

from custodes.analyze.overlay import parse_camera, parse_clock
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import Recording
from custodes.timeline.build import build_timeline, read_recordings, write_svg
from tests.conftest import cli_json, run_cli


@pytest.mark.parametrize("text,expected", [
    ("CAM-01  2026-03-14 02:01:00", datetime(2026, 3, 14, 2, 1, 0)),
    ("CAM-01 2026-03-1402:01:00", datetime(2026, 3, 14, 2, 1, 0)),  # OCR lost the space
    ("КАМ-3 14.03.2026 23:59:58", datetime(2026, 3, 14, 23, 59, 58)),  # Cyrillic, day first
    ("2O26/O3/14 O2:O1:O5", datetime(2026, 3, 14, 2, 1, 5)),  # letter O for zero
    ("no clock here", None),
    ("2026-13-40 25:61:00", None),  # impossible date
])
def test_parse_clock(text, expected):
    assert parse_clock(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("CAM-01  2026-03-14 02:01:00", "CAM-01"),
    ("САМ-02 2026-03-14 02:01:00", "CAM-02"),  # Cyrillic С, А, М
    ("Камера 3  14.03.2026 02:00:00", "CAM-3"),
    ("CAM07 2026-01-02 03:04:05", "CAM-07"),
    ("2026-03-14 02:01:00", None),
])
def test_parse_camera(text, expected):
    assert parse_camera(text) == expected


@pytest.fixture(scope="module")
def timeline_case(tmp_path_factory, demo_drive):
    drive, truth = demo_drive
    case = Case.init(tmp_path_factory.mktemp("timeline") / "case", "tester")
    Ingestor(case, "tester").run([drive])
    assert read_recordings(case) == 8
    return case, drive, truth


def sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_overlay_clock_and_camera_exact_on_sampled_frames(timeline_case):
    case, drive, truth = timeline_case
    readings = ok = 0
    with case.sessions() as s:
        for rel, info in truth.clips.items():
            if not (drive / rel).exists():  # the CCTV clips live inside the zip; checked below by start
                continue
            rec = s.get(Recording, sha(drive / rel))
            start = datetime.fromisoformat(info["start"])
            assert rec.camera_id == info["camera"]
            assert abs((rec.start_at - start).total_seconds()) <= 1
            for r in rec.data["readings"]:
                readings += 1
                if r["camera"] == info["camera"] and r["clock"] and abs(
                        (datetime.fromisoformat(r["clock"]) - start).total_seconds() - r["t"]) <= 1:
                    ok += 1
    assert readings >= 30
    assert ok / readings >= 0.95


def test_deleted_interval_is_reported_as_a_gap(timeline_case):
    case, _, truth = timeline_case
    doc = build_timeline(case)
    gaps = doc["gaps"]
    assert len(gaps) == 1
    g = gaps[0]
    assert g["camera"] == truth.gap["camera"]
    assert abs((g["start"] - datetime.fromisoformat(truth.gap["start"])).total_seconds()) <= 1
    assert abs((g["end"] - datetime.fromisoformat(truth.gap["end"])).total_seconds()) <= 1
    assert {c["camera"] for c in doc["cameras"]} == set(truth.cameras)
    # the WhatsApp re-encode reads as CAM-01 at the same time: it merges into coverage, no false gap
    assert [len(c["coverage"]) for c in doc["cameras"] if c["camera"] == "CAM-01"] == [1]
    assert any(set(o["cameras"]) == {"CAM-01", "CAM-02", "CAM-03"} for o in doc["overlaps"])


def test_timeline_cli_json_and_plot(timeline_case):
    case, _, truth = timeline_case
    doc = cli_json("timeline", str(case.root), "--camera", "CAM-02")
    assert [c["camera"] for c in doc["cameras"]] == ["CAM-02"]
    assert doc["gaps"][0]["start"].startswith(truth.gap["start"][:16])
    svg = (case.root / "reports" / "timeline.svg").read_text()
    assert svg.startswith("<svg") and "gap" in svg
    json.dumps(doc)


def test_plot_without_recordings(tmp_path):
    p = write_svg({"cameras": []}, tmp_path / "t.svg")
    assert "no placed recordings" in p.read_text()


REGISTER = """ref,start,end,facility,unit,person,text,camera
K-101,2026-03-14 02:00:28,2026-03-14 02:00:33,IK-7,Block B cell 14,P-3,Beaten after the door was opened,CAM-02
K-102,14.03.2026 02:00:05,14.03.2026 02:00:10,IK-7,Block B,P-5,Heard screaming,CAM-01
K-103,2026-03-14 01:00,2026-03-14 01:10,IK-7,Block A,P-9,Denied medication,
"""


def test_complaints_are_checked_against_coverage_and_gaps(timeline_case, tmp_path):
    from custodes.store.verify import verify_case
    from custodes.timeline.complaints import complaints_report, import_csv

    case, _, truth = timeline_case
    reg = tmp_path / "register.csv"
    reg.write_text(REGISTER)
    doc = import_csv(case, reg, "tester")
    assert doc["imported"] == 3
    assert import_csv(case, reg, "tester")["imported"] == 0  # re-import changes nothing
    rows = {r["ref"]: r for r in complaints_report(case)}
    # the demo's CAM-02 gap (02:00:20–02:00:40 with 20-s clips) swallows K-101 exactly
    assert rows["K-101"]["gaps"] and rows["K-101"]["gaps"][0]["camera"] == "CAM-02"
    assert "recording missing during the complaint window" in rows["K-101"]["flags"]
    assert rows["K-101"]["covered_by"] == []
    # about CAM-02: the flag says so, and the other cameras recording then are listed, opened at that moment
    assert "no recording of this camera covers the complaint window" in rows["K-101"]["flags"]
    others = rows["K-101"]["others_recording"]
    assert others and "CAM-02" not in {o["camera"] for o in others} and all(o["at_s"] >= 0 for o in others)
    assert [c["camera"] for c in rows["K-102"]["covered_by"]] == ["CAM-01"] and rows["K-102"]["flags"] == []
    assert rows["K-102"]["covered_by"][0]["at_s"] > 0  # the link opens at the complaint's moment, not at 0 s
    assert rows["K-103"]["flags"] == ["no recording covers the complaint window"]
    assert verify_case(case).ok  # the register itself is preserved as evidence
    assert any(e["action"] == "complaints.import" for e in case.ledger.entries())


@pytest.mark.parametrize("content,message", [
    ("start,end,text\n2026-03-14 02:00,yesterday,x\n", "line 2"),
    ("when,what\n2026-03-14,x\n", "need columns"),
    ("start,end\n2026-03-14 03:00,2026-03-14 02:00\n", "end is before start"),
    ("", "empty file"),
])
def test_bad_registers_are_refused_whole(tmp_path, case, content, message):
    from custodes.store.db import Complaint
    from custodes.timeline.complaints import ComplaintsError, import_csv

    reg = tmp_path / "bad.csv"
    reg.write_text(content)
    with pytest.raises(ComplaintsError, match=message):
        import_csv(case, reg, "tester")
    assert case.count(Complaint) == 0


def test_complaints_cli(tmp_path, case):
    reg = tmp_path / "latin1.csv"
    reg.write_bytes("start,end,text\n2026-03-14 02:00,2026-03-14 02:01,caf\xe9\n".encode("latin-1"))
    from tests.conftest import run_cli

    proc = run_cli("complaints", "import", str(case.root), str(reg))
    assert proc.returncode == 1 and "UTF-8" in proc.stderr


def test_cyrillic_overlay_is_read(tmp_path):
    from custodes.analyze.overlay import read_overlay, tesseract_available
    from custodes.media.synth import ClipSpec, write_clip

    if not tesseract_available():
        pytest.skip("tesseract with the Russian model is not installed")
    clip = write_clip(tmp_path / "k4.mp4", ClipSpec("КАМЕРА-4", datetime(2026, 3, 14, 23, 59, 50), 20, seed=9))
    res = read_overlay(clip, 20.0)
    assert res.camera_id == "CAM-4"
    assert abs((res.start - datetime(2026, 3, 14, 23, 59, 50)).total_seconds()) <= 1  # and across midnight
    assert res.confidence >= 0.95
    assert any("КАМЕРА" in r.text for r in res.readings)


def test_cuts_inside_a_recording_are_on_the_timeline_at_their_clock_time(timeline_case):
    """A scene cut found by triage inside a placed recording is listed with its camera and wall-clock time."""
    from sqlalchemy import delete

    from custodes.store.db import Signal

    case, _, _ = timeline_case
    doc = build_timeline(case)
    assert doc["cuts"] == []  # the demo's recordings are unedited
    rec = doc["cameras"][0]["recordings"][0]
    with case.sessions() as s:
        s.add(Signal(sha256=rec["sha256"], analyzer="scene cuts", version="cuts-2", kind="scene_cut", start_s=7.5,
                     end_s=7.5, value=1.0, data={"found_by": "frames"}))
        s.commit()
    try:
        doc = build_timeline(case)
        assert [(k["camera"], k["sha256"], k["offset_s"]) for k in doc["cuts"]] == [
            (doc["cameras"][0]["camera"], rec["sha256"], 7.5)]
        assert (doc["cuts"][0]["at"] - rec["start"]).total_seconds() == pytest.approx(7.5)
        out = cli_json("timeline", str(case.root))
        assert out["cuts"][0]["offset_s"] == 7.5 and out["cuts"][0]["at"].startswith(f"{rec['start']:%Y-%m-%d}")
        text = run_cli("timeline", str(case.root))
        assert text.returncode == 0 and "CUT" in text.stdout and "7.5 s in" in text.stdout
    finally:
        with case.sessions() as s:
            s.execute(delete(Signal).where(Signal.sha256 == rec["sha256"], Signal.kind == "scene_cut"))
            s.commit()

import json
import re

from tests.conftest import cli_json, run_cli


def test_demo_command_builds_a_verifiable_case(tmp_path):
    case = tmp_path / "demo-case"
    proc = run_cli("demo", str(case), "--no-serve", "--clip-seconds", "20")
    assert proc.returncode == 0, proc.stderr
    assert "deleted interval" in proc.stderr and "CAM-02" in proc.stderr
    err = " ".join(proc.stderr.split())
    assert "tops the queue" in err and "is reported as a gap" in err
    assert "Complaint K-101" in err and "recording missing" in err
    # not on a terminal: progress as plain lines that stay in a log, not bars that vanish
    for step in ("Generating a synthetic body-camera archive", "hashing + storing", "probing media",
                 "Triage (motion, audio events, the violence model)", "Reading burnt-in overlays",
                 "Fingerprinting frames", "Transcribing speech"):
        assert f"{step}" in err and re.search(re.escape(step) + r"[^\n]*: done", proc.stderr), step
    truth = json.loads((tmp_path / "demo-case-truth.json").read_text())
    assert truth["gap"] == {"camera": "CAM-02", "start": "2026-03-14T02:00:20", "end": "2026-03-14T02:00:40"}
    items = cli_json("items", str(case))
    statuses = sorted((i["media"] or {}).get("status", i["kind"]) for i in items)
    # "file": the complaints register the demo imports, preserved as evidence
    assert statuses == ["archive", "file", "not_media", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "unreadable"]
    assert cli_json("verify", str(case))["ok"]
    # building again without --force refuses and leaves the case alone
    again = run_cli("demo", str(case), "--no-serve", "--clip-seconds", "20")
    assert again.returncode == 1 and "--force" in again.stderr
    assert cli_json("verify", str(case))["ok"]


def test_analyzers_declare_versions_and_needs():
    docs = cli_json("analyzers")
    names = {d["name"] for d in docs}
    assert {"motion", "audio events", "overlay OCR", "speech", "frame + video fingerprints"} <= names
    assert all(d["version"] and d["available"] for d in docs)

"""Tamper tests: every kind of alteration is caught by `custodes verify` and named."""

import json
import os
import stat

import pytest
from sqlalchemy import text

from custodes.store.case import Case
from tests.conftest import cli_json, run_cli


@pytest.fixture
def ingested(tmp_path, small_clip):
    case = tmp_path / "case"
    run_cli("init", str(case), check=True)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.mp4").write_bytes(small_clip.read_bytes())
    (src / "b.txt").write_text("statement of witness\n")
    run_cli("ingest", str(case), str(src), "--batch-note", "tamper test", check=True)
    return case


def verify(case, *extra):
    proc = run_cli("verify", str(case), "--json", *extra)
    return proc.returncode, json.loads(proc.stdout)


def problem_kinds(doc):
    return {p["kind"] for p in doc["problems"]}


def test_untouched_case_verifies(ingested):
    rc, doc = verify(ingested)
    assert rc == 0 and doc["ok"] and doc["objects_checked"] == 2 and doc["problems"] == []


def test_flipped_byte_in_object_is_named(ingested):
    obj = next(p for p in (ingested / "objects").glob("??/*") if p.stat().st_size > 1000)
    os.chmod(obj, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01
    obj.write_bytes(bytes(data))
    rc, doc = verify(ingested)
    assert rc == 1
    altered = [p for p in doc["problems"] if p["kind"] == "object.altered"]
    assert [p["where"] for p in altered] == [obj.parent.name + obj.name]


def test_missing_object_is_named(ingested):
    obj = next((ingested / "objects").glob("??/*"))
    obj.unlink()
    rc, doc = verify(ingested)
    assert rc == 1
    assert {"kind": "object.missing", "where": obj.parent.name + obj.name,
            "message": "recorded object is missing from the store"} in doc["problems"]


def test_object_planted_by_hand_is_named(ingested):
    planted = ingested / "objects" / "ab" / ("c" * 62)
    planted.parent.mkdir(exist_ok=True)
    planted.write_bytes(b"fake")
    rc, doc = verify(ingested)
    assert rc == 1 and {"object.altered", "object.unrecorded"} <= problem_kinds(doc)


def _ledger_lines(case):
    return (case / "ledger.jsonl").read_text().splitlines()


def _write_ledger(case, ls):
    (case / "ledger.jsonl").write_text("\n".join(ls) + "\n")


def test_edited_ledger_line_is_named(ingested):
    ls = _ledger_lines(ingested)
    idx = next(i for i, x in enumerate(ls) if '"action":"ingest"' in x)
    ls[idx] = ls[idx].replace('"original_name":"a.mp4"', '"original_name":"z.mp4"').replace(
        '"original_name":"b.txt"', '"original_name":"z.txt"')
    _write_ledger(ingested, ls)
    rc, doc = verify(ingested)
    assert rc == 1
    assert any(p["kind"] == "ledger.altered" and p["where"].startswith(f"line {idx + 1} ") for p in doc["problems"])


def test_deleted_ledger_line_is_caught(ingested):
    ls = _ledger_lines(ingested)
    idx = next(i for i, x in enumerate(ls) if '"action":"ingest"' in x)
    del ls[idx]
    _write_ledger(ingested, ls)
    rc, doc = verify(ingested)
    assert rc == 1
    assert {"ledger.chain", "ledger.sequence", "record.unlogged"} <= problem_kinds(doc)


def test_reordered_ledger_lines_are_caught(ingested):
    ls = _ledger_lines(ingested)
    ls[2], ls[3] = ls[3], ls[2]
    _write_ledger(ingested, ls)
    rc, doc = verify(ingested)
    assert rc == 1 and {"ledger.chain", "ledger.sequence"} <= problem_kinds(doc)


def test_forged_signature_is_caught(ingested):
    ls = _ledger_lines(ingested)
    e = json.loads(ls[-1])
    e["sig"] = "A" * len(e["sig"])
    ls[-1] = json.dumps(e)
    _write_ledger(ingested, ls)
    rc, doc = verify(ingested)
    assert rc == 1 and problem_kinds(doc) == {"ledger.signature"}


def test_truncated_history_fails_published_head(ingested):
    head = cli_json("ledger", "head", str(ingested))["head"]
    ls = _ledger_lines(ingested)
    _write_ledger(ingested, ls[:-1])  # drop the newest entry: the chain alone still looks fine
    rc, doc = verify(ingested, "--expect-head", head)
    assert rc == 1 and "ledger.head" in problem_kinds(doc)


def _sql(case_dir, statement):
    """Edit the case database behind Custodes' back, with a plain connection (SQLite or PostgreSQL)."""
    case = Case(case_dir)
    with case.engine.begin() as conn:
        conn.execute(text(statement))
    case.engine.dispose()


def test_deleted_database_row_is_caught(ingested):
    _sql(ingested, "DELETE FROM provenance WHERE original_name = 'b.txt'")
    rc, doc = verify(ingested)
    assert rc == 1 and "record.deleted" in problem_kinds(doc)


def test_edited_database_provenance_is_caught(ingested):
    _sql(ingested, "UPDATE provenance SET source_path = '/elsewhere/a.mp4' WHERE original_name = 'a.mp4'")
    rc, doc = verify(ingested)
    assert rc == 1 and "record.mismatch" in problem_kinds(doc)


def test_a_value_its_column_cannot_hold_is_named_not_a_crash(ingested):
    if os.environ.get("CUSTODES_DB"):
        pytest.skip("PostgreSQL's typed columns refuse such an edit")
    _sql(ingested, "UPDATE provenance SET recorded_at = recorded_at || ' forged' WHERE original_name = 'a.mp4'")
    proc = run_cli("verify", str(ingested), "--json")
    assert proc.returncode == 1 and "internal error" not in proc.stderr
    [problem] = json.loads(proc.stdout)["problems"]
    assert problem["kind"] == "record.mismatch" and problem["where"].startswith("provenance:")
    assert "edited past the application" in problem["message"] and "forged" in problem["message"]


def test_human_output_names_the_problem(ingested):
    obj = next((ingested / "objects").glob("??/*"))
    obj.unlink()
    proc = run_cli("verify", str(ingested))
    assert proc.returncode == 1
    assert "object.missing" in proc.stderr and obj.parent.name + obj.name in proc.stderr.replace("\n", "")

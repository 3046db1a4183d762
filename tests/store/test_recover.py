"""A lost or damaged case database: refused with a way back, never silently replaced; `recover` rebuilds it."""

import json
import os
import signal
import time

import pytest

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.verify import verify_case
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(bool(os.environ.get("CUSTODES_DB")), reason="the SQLite file inside the case")


@pytest.fixture
def drive(tmp_path, small_clip):
    d = tmp_path / "drive"
    (d / "cam").mkdir(parents=True)
    (d / "cam" / "CAM07.mp4").write_bytes(small_clip.read_bytes())
    (d / "notes.txt").write_text("shift log")
    os.symlink("/etc/passwd", d / "link")  # refused: a refusal to rebuild too
    (d / "complaints.csv").write_text("ref,date,from,to,camera,text\nC-1,2026-01-02,03:04,03:05,CAM-07,beaten\n")
    return d


def items(case_dir):
    proc = run_cli("items", str(case_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    return sorted(json.dumps(i, sort_keys=True) for i in json.loads(proc.stdout))


def one_sentence(proc):
    err = " ".join(proc.stderr.split())
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and err.startswith("error:"), proc.stderr
    return err


def test_an_emptied_database_is_refused_and_never_replaced(tmp_path, drive):
    case_dir = tmp_path / "case"
    Ingestor(Case.init(case_dir, "tester"), "tester").run([drive])
    db = case_dir / "custodes.db"
    for extra in ("custodes.db-wal", "custodes.db-shm"):
        (case_dir / extra).unlink(missing_ok=True)
    db.write_bytes(b"")
    for args in (["queue", str(case_dir)], ["ingest", str(case_dir), str(drive)], ["triage", str(case_dir)],
                 ["items", str(case_dir)], ["verify", str(case_dir)]):
        err = one_sentence(run_cli(*args))
        assert "is empty (0 bytes)" in err and "custodes recover" in err, err
        assert db.stat().st_size == 0  # no fresh, empty database was made in its place
    db.unlink()
    assert "is missing" in one_sentence(run_cli("queue", str(case_dir)))
    assert not db.exists()


def test_a_damaged_database_file_is_named(tmp_path, drive):
    case_dir = tmp_path / "case"
    Ingestor(Case.init(case_dir, "tester"), "tester").run([drive])
    for extra in ("custodes.db-wal", "custodes.db-shm"):
        (case_dir / extra).unlink(missing_ok=True)
    (case_dir / "custodes.db").write_bytes(b"this is not a database" * 100)
    err = one_sentence(run_cli("items", str(case_dir)))
    assert "damaged" in err and "custodes recover" in err


def test_recover_rebuilds_the_database_from_the_ledger(tmp_path, drive):
    case_dir = tmp_path / "case"
    case = Case.init(case_dir, "tester")
    Ingestor(case, "tester").run([drive])
    assert run_cli("complaints", "import", str(case_dir), str(drive / "complaints.csv")).returncode == 0
    before = items(case_dir)
    complaints_before = json.loads(run_cli("complaints", "list", str(case_dir), "--json").stdout)
    for name in ("custodes.db", "custodes.db-wal", "custodes.db-shm"):
        (case_dir / name).unlink(missing_ok=True)  # the database is lost
    proc = run_cli("recover", str(case_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["rebuilt"]["provenance"] == 3 and rep["rebuilt"]["refusals"] == 1 and rep["rebuilt"]["complaints"] == 1
    assert rep["missing_objects"] == []
    assert items(case_dir) == before
    assert json.loads(run_cli("complaints", "list", str(case_dir), "--json").stdout) == complaints_before
    res = verify_case(Case(case_dir))
    assert res.ok, res.problems
    # a second ingest of the same drive finds everything already there: no second record, no second event
    rep2 = Ingestor(Case(case_dir), "tester").run([drive])
    assert rep2.objects_new == 0 and rep2.duplicates == 0
    ingests = [e for e in Case(case_dir).ledger.entries() if e["action"] == "ingest"]
    assert len(ingests) == 3
    assert verify_case(Case(case_dir)).ok
    recovered = [e for e in Case(case_dir).ledger.entries() if e["action"] == "case.recover"]
    assert len(recovered) == 1 and recovered[0]["details"]["not_rebuilt"]


def test_wal_deleted_after_a_kill_is_recovered_without_duplicates(tmp_path, drive):
    """The -wal file deleted after a kill left verify FAILED for ever, with duplicate ingest events."""
    import subprocess
    import sys

    (drive / "big.bin").write_bytes(os.urandom(12 << 20))
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)  # every step in its own process, as a user runs them
    proc = subprocess.Popen([sys.executable, "-m", "custodes", "ingest", str(case_dir), str(drive)],
                            env={**os.environ, "CUSTODES_FAULT_CHUNK_DELAY": "0.2"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = case_dir / "ledger.jsonl"
    end = time.time() + 60
    while time.time() < end and b'"action":"ingest"' not in ledger.read_bytes().replace(b" ", b""):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (case_dir / "custodes.db-wal").unlink(missing_ok=True)  # what a careless clean-up does after a kill
    (case_dir / "custodes.db-shm").unlink(missing_ok=True)

    def verify():
        return json.loads(run_cli("verify", str(case_dir), "--json").stdout)

    def ingest_events():
        return sum(b'"action":"ingest"' in line.replace(b" ", b"") for line in ledger.read_bytes().splitlines())

    # the re-run records again what the database forgot: the ledger now holds two ingest events for a file
    run_cli("ingest", str(case_dir), str(drive), check=True)
    assert not verify()["ok"]
    assert run_cli("recover", str(case_dir)).returncode == 0
    res = verify()
    assert res["ok"], res["problems"]
    assert "record.duplicate_event" in {w["kind"] for w in res["warnings"]}
    n = ingest_events()
    run_cli("ingest", str(case_dir), str(drive), check=True)
    assert ingest_events() == n  # nothing recorded a third time
    assert verify()["ok"]


def test_recover_refuses_a_ledger_that_fails(tmp_path, drive):
    case_dir = tmp_path / "case"
    Ingestor(Case.init(case_dir, "tester"), "tester").run([drive])
    lines = (case_dir / "ledger.jsonl").read_text().splitlines()
    e = json.loads(lines[3])
    e["actor"] = "mallory"
    lines[3] = json.dumps(e)
    (case_dir / "ledger.jsonl").write_text("\n".join(lines) + "\n")
    err = one_sentence(run_cli("recover", str(case_dir)))
    assert "ledger itself fails verification" in err
    assert (case_dir / "custodes.db").stat().st_size > 0  # nothing moved

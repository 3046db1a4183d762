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
    lost = [w for w in res.warnings if w.kind == "record.not_rebuilt"]  # what to run again, and the lost notes
    assert lost and "notes" in lost[0].message and "custodes transcribe" in lost[0].message
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

    for i in range(20):  # the first group of a run (16 files) is recorded before big.bin is reached
        (drive / f"a{i:02d}.txt").write_text(f"log page {i}")
    (drive / "big.bin").write_bytes(os.urandom(12 << 20))  # still being copied when the kill comes
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
    assert run_cli("recover", str(case_dir), "--force").returncode == 0  # it opens; only verify sees the damage
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


# -- found by an adversarial review ------------------------------------------------------------------------------

def _video(case):
    from sqlalchemy import select

    from custodes.store.db import MediaProbe

    with case.sessions() as s:
        return s.scalars(select(MediaProbe.sha256).where(MediaProbe.status == "ok")).first()


def _annotate(case, sha, note):
    import hashlib
    from datetime import UTC, datetime

    from custodes.store.db import Annotation

    with case.sessions() as s:
        a = Annotation(sha256=sha, start_s=1.0, end_s=2.0, label="beating", people=[], note=note, author="rev",
                       created_at=datetime.now(UTC), supersedes=None)
        s.add(a)
        s.log("rev", "annotate", sha, lambda: {"annotation": a.id, "label": "beating", "start_s": 1.0, "end_s": 2.0,
                                               "supersedes": None,
                                               "note_sha256": hashlib.sha256(note.encode()).hexdigest()})
        s.commit()
        return a.id


def _lose_database(case_dir):
    for name in ("custodes.db", "custodes.db-wal", "custodes.db-shm"):
        (case_dir / name).unlink(missing_ok=True)


def test_an_annotation_whose_save_failed_is_not_rebuilt_and_a_reused_id_does_not_break_recover(
        tmp_path, drive, monkeypatch):
    from sqlalchemy import select

    from custodes.store.db import Annotation
    from custodes.store.recover import recover_case

    case_dir = tmp_path / "case"
    case = Case.init(case_dir, "tester")
    Ingestor(case, "tester").run([drive])
    sha = _video(case)
    monkeypatch.setenv("CUSTODES_FAULT", "seal.commit:error")
    with pytest.raises(OSError):
        _annotate(case, sha, "first try")  # the disk was full: nothing saved, the seal voided
    monkeypatch.delenv("CUSTODES_FAULT")
    aid = _annotate(Case(case_dir), sha, "second try")  # the form sent again: the same id is given out
    _lose_database(case_dir)
    rep = recover_case(case_dir, "tester")
    with Case(case_dir).sessions() as s:
        rows = list(s.scalars(select(Annotation)))
    assert [a.id for a in rows] == [aid] and rep.skipped_events  # one annotation: the one that was saved
    res = verify_case(Case(case_dir))
    assert res.ok, res.problems


def test_an_interrupted_recover_leaves_a_case_every_command_refuses(tmp_path, drive):
    import subprocess
    import sys

    case_dir = tmp_path / "case"
    Ingestor(Case.init(case_dir, "tester"), "tester").run([drive])
    before = items(case_dir)
    _lose_database(case_dir)
    code = ("import os, signal; from pathlib import Path; import custodes.store.recover as r\n"
            "r._rebuild = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"r.recover_case(Path({str(case_dir)!r}), 'tester')\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    for args in (["items", str(case_dir), "--json"], ["queue", str(case_dir)]):
        assert "was interrupted" in one_sentence(run_cli(*args))  # never an empty list with exit 0
    assert run_cli("recover", str(case_dir)).returncode == 0
    assert items(case_dir) == before
    assert verify_case(Case(case_dir)).ok


def test_recover_refuses_a_database_that_opens_and_keeps_every_damaged_copy(tmp_path, drive):
    case_dir = tmp_path / "case"
    Ingestor(Case.init(case_dir, "tester"), "tester").run([drive])
    assert "opens normally" in one_sentence(run_cli("recover", str(case_dir)))
    assert run_cli("recover", str(case_dir), "--force").returncode == 0
    assert run_cli("recover", str(case_dir), "--force").returncode == 0
    kept = sorted(p.name for p in case_dir.glob("custodes.db.damaged-*") if not p.name.endswith(("-wal", "-shm")))
    assert len(kept) == 2  # the second recovery did not overwrite the first one's kept file
    rep = verify_case(Case(case_dir))
    assert rep.ok and [w.kind for w in rep.warnings].count("case.recovered") == 2


def test_a_signed_recover_event_cannot_make_an_ingested_clip_disappear(tmp_path, drive):
    """An insider with the keys appends a case.recover naming a clip's genuine records as duplicates, deletes
    the clip's rows and file, and reseals the rest: verify must still name it, before a published head too."""
    import sqlite3

    from sqlalchemy import select

    from custodes.store import seals
    from custodes.store.db import Provenance

    case_dir = tmp_path / "case"
    case = Case.init(case_dir, "tester")
    Ingestor(case, "tester").run([drive])
    head = case.ledger.head()[1]
    sha = _video(case)
    with case.sessions() as s:
        pids = [p.id for p in s.scalars(select(Provenance).where(Provenance.sha256 == sha))]
    case.ledger.append("tester", "case.recover", None, {"moved_aside": [], "duplicate_ingest_events": pids,
                                                        "rebuilt": {}, "not_rebuilt": []})
    con = sqlite3.connect(case_dir / "custodes.db")
    for table in ("media", "provenance", "analysis_runs", "objects"):
        con.execute(f"DELETE FROM {table} WHERE sha256=?", (sha,))
    con.commit()
    con.close()
    path = case.store.path_for(sha)
    path.chmod(0o600)
    path.unlink()
    again = Case(case_dir)
    with again.sessions() as s:
        s.info["sealed_touched"] = {seals.split_group(g) for g in seals.all_groups(s)}
        s.commit()
    rep = verify_case(Case(case_dir), expect_head=head)
    assert not rep.ok
    assert {"record.deleted", "record.not_rebuilt"} & {p.kind for p in rep.problems}, rep.problems
    assert "case.recovered" in {w.kind for w in rep.warnings}


def test_recover_rebuilds_review_states_from_their_signed_events(tmp_path):
    """Review finding: recover dropped every review verdict silently (0 rows, nothing said, verify OK)."""
    from datetime import datetime

    from fastapi.testclient import TestClient
    from sqlalchemy import select, text

    from custodes.media.synth import ClipSpec, write_clip
    from custodes.store.db import Review, Segment
    from custodes.triage.runner import run_triage
    from custodes.web.app import create_app
    from custodes.web.users import add_user
    from tests.web.conftest import PASSWORD, login, session_csrf

    (tmp_path / "drive").mkdir()
    write_clip(tmp_path / "drive" / "cam01.mp4", ClipSpec("CAM-01", datetime(2026, 3, 1, 10, 0, 0), 8, fps=8,
                                                          size=(320, 180), struggles=[(2, 5)], seed=1))
    case_dir = tmp_path / "case"
    case = Case.init(case_dir, "tester")
    Ingestor(case, "tester").run([tmp_path / "drive"])
    run_triage(case, "tester", workers=1)

    def reviewers(case):
        for name in ("rita", "otto"):
            add_user(case, name, "reviewer", PASSWORD, "tester")
        out = []
        for name in ("rita", "otto"):
            c = TestClient(create_app(case), client=("127.0.0.1", 43000))
            assert login(c, name).status_code == 303
            c.headers["X-CSRF-Token"] = session_csrf(c)
            out.append(c)
        return out

    rita, otto = reviewers(case)
    with case.sessions() as s:
        g = s.scalars(select(Segment).order_by(Segment.score.desc())).first()
    assert rita.post(f"/api/segments/{g.id}/review", json={"state": "nothing of concern",
                                                           "note": "a guard, not a fight"}).status_code == 200
    assert otto.post(f"/api/segments/{g.id}/review", json={"state": "confirmed"}).status_code == 200
    _lose_database(case_dir)
    proc = run_cli("recover", str(case_dir))
    assert proc.returncode == 0, proc.stderr
    said = " ".join((proc.stdout + proc.stderr).split())
    assert "2 review states (without note text)" in said and "review notes" in said, said
    with Case(case_dir).sessions() as s:
        rows = [(r.sha256, r.start_s, r.end_s, r.state, r.author, r.note) for r in s.scalars(select(Review))]
    assert [r[:5] for r in rows] == [(g.sha256, g.start_s, g.end_s, "nothing of concern", "rita"),
                                     (g.sha256, g.start_s, g.end_s, "confirmed", "otto")]
    assert "rebuilt from the ledger" in rows[0][5] and rows[1][5] == ""  # an empty note is known by its hash
    assert run_cli("verify", str(case_dir)).returncode == 0
    # triage again (its results are not in the ledger) and the verdict is on the new segment over that stretch
    case = Case(case_dir)
    run_triage(case, "tester", workers=1)
    rita, _ = reviewers(case)
    assert {row["state"] for row in rita.get("/api/queue").json()} >= {"confirmed"}
    assert run_cli("verify", str(case_dir)).returncode == 0
    with case.engine.begin() as conn:
        conn.execute(text("UPDATE reviews SET state = 'disputed' WHERE author = 'otto'"))
    proc = run_cli("verify", str(case_dir))
    assert proc.returncode != 0 and f"reviews:{g.sha256}" in proc.stdout + proc.stderr

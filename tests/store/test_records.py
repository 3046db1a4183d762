"""Finding 2 of issue 20: every record that carries evidence or a finding is bound to the signed ledger.

Each test builds a small case through the real code paths (ingest, user add, rows written through the case's
sessions), alters the database the way someone with write access would (one raw SQL statement, past the
application), and asserts that ``verify`` names the alteration. Runs on SQLite and, under ``make test``, on
PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import (
    Annotation,
    Complaint,
    Derivative,
    EvidenceObject,
    Recording,
    Segment,
    Signal,
    TranscriptSegment,
)
from custodes.store.verify import verify_case
from custodes.web.users import add_user


def build(root, clip) -> tuple[Case, str, str]:
    """A case with one ingested clip (and a second object as its 'derivative'), and one row of every kind."""
    case = Case.init(root, "tester", title="records")
    other = root.parent / "other.bin"
    other.write_bytes(b"a redacted copy, for the test" * 100)
    Ingestor(case, "tester").run([clip, other])
    with case.sessions() as s:
        shas = {o.kind: o.sha256 for o in s.scalars(select(EvidenceObject))}
        sha = next(o.sha256 for o in s.scalars(select(EvidenceObject)) if o.size != other.stat().st_size)
        der = next(o.sha256 for o in s.scalars(select(EvidenceObject)) if o.sha256 != sha)
        now = datetime.now(UTC)
        s.add(Recording(sha256=sha, camera_id="CAM-02", start_at=datetime(2026, 3, 14, 2, 0),
                        end_at=datetime(2026, 3, 14, 2, 10), source="overlay", confidence=0.9, version="t", data={}))
        s.add(Segment(sha256=sha, start_s=1.0, end_s=4.0, score=0.97, reasons=[{"text": "struggle"}],
                      model_version="t", created_at=now))
        s.add(Signal(sha256=sha, analyzer="motion", version="t", kind="score", start_s=0, end_s=2, value=0.9,
                     data=None))
        s.add(TranscriptSegment(sha256=sha, start_s=1.0, end_s=2.0, text="не надо", language="ru", avg_logprob=-0.2,
                                words=[], version="t"))
        s.add(Annotation(sha256=sha, start_s=1.0, end_s=3.0, label="beating", people=[{"role": "victim", "id": "P-5"}],
                         note="two officers", author="alice", created_at=now))
        s.add(Complaint(source_sha256=der, row=1, ref="C-1", start_at=datetime(2026, 3, 14, 2, 1),
                        end_at=datetime(2026, 3, 14, 2, 5), camera="CAM-02", person="P-5", text="beaten"))
        s.add(Derivative(sha256=der, parent_sha256=sha, kind="redaction", params={"faces": "blur"},
                         created_by="tester", created_at=now))
        s.commit()
    add_user(case, "alice", "reviewer", "a long enough password", "tester")
    assert shas
    return case, sha, der


@pytest.fixture
def built(tmp_path, small_clip):
    case, sha, der = build(tmp_path / "case", small_clip)
    rep = verify_case(case)
    assert rep.ok, rep.problems
    return case, sha, der


def sql(case: Case, statement: str, **params) -> None:
    """What an insider with the database file (or its server password) does: SQL, past the application."""
    with case.engine.begin() as conn:
        conn.execute(text(statement), params)


def problems(case: Case) -> set[tuple[str, str]]:
    return {(p.kind, p.where) for p in verify_case(case).problems}


ATTACKS = [
    # (what, SQL, kind, group)
    ("recording moved: the CAM-02 gap disappears", "UPDATE recordings SET start_at = :t", "record.mismatch",
     "recordings"),
    ("annotation edited", "UPDATE annotations SET label = 'nothing'", "record.mismatch", "annotations"),
    ("annotation deleted", "DELETE FROM annotations", "record.deleted", "annotations"),
    ("segment lowered: the top of the queue buried", "UPDATE segments SET score = 0.01", "record.mismatch",
     "segments"),
    ("segment deleted", "DELETE FROM segments", "record.deleted", "segments"),
    ("signal lowered", "UPDATE signals SET value = 0.0", "record.mismatch", "signals"),
    ("signals deleted", "DELETE FROM signals", "record.deleted", "signals"),
    ("transcript edited", "UPDATE transcripts SET text = 'всё спокойно'", "record.mismatch", "transcripts"),
    ("probe result: the video marked not_media", "UPDATE media SET status = 'not_media'", "record.mismatch",
     "media"),
    ("provenance name changed", "UPDATE provenance SET original_name = 'CAM-09.mp4'", "record.mismatch",
     "provenance"),
    ("provenance size changed", "UPDATE provenance SET size = size + 1", "record.mismatch", "provenance"),
    ("provenance mtime changed", "UPDATE provenance SET mtime_ns = 0", "record.mismatch", "provenance"),
]


@pytest.mark.parametrize("what,statement,kind,table", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_an_edit_of_a_record_about_the_item_is_named(built, what, statement, kind, table):
    case, sha, _ = built
    sql(case, statement, t=datetime(2026, 3, 14, 1, 0))
    assert (kind, f"{table}:{sha}") in problems(case), what


def test_complaint_and_derivative_edits_are_named(built):
    case, sha, der = built
    sql(case, "UPDATE complaints SET camera = 'CAM-01'")
    sql(case, "UPDATE derivatives SET parent_sha256 = sha256")
    found = problems(case)
    assert ("record.mismatch", f"complaints:{der}") in found and ("record.mismatch", f"derivatives:{der}") in found


def test_user_role_change_and_new_user_are_named(built):
    case, _, _ = built
    sql(case, "UPDATE users SET role = 'admin' WHERE name = 'alice'")
    sql(case, "INSERT INTO users (name, role, password_hash, disabled, safe_viewing, created_at) "
              "VALUES ('mallory', 'admin', 'x', false, true, :t)", t=datetime.now(UTC))
    found = problems(case)
    assert ("record.mismatch", "users:alice") in found and ("record.unlogged", "users:mallory") in found


def test_legitimate_changes_keep_verify_green(built):
    """Through the application every change is sealed: a new annotation, a re-triage (bulk delete + insert),
    a disabled user."""
    from sqlalchemy import delete

    from custodes.web.users import set_disabled

    case, sha, _ = built
    with case.sessions() as s:
        s.add(Annotation(sha256=sha, start_s=5.0, end_s=6.0, label="threat", people=[], note="", author="alice",
                         created_at=datetime.now(UTC), supersedes=None))
        s.commit()
    with case.sessions() as s:
        s.execute(delete(Signal).where(Signal.sha256 == sha))
        s.execute(delete(Segment).where(Segment.sha256 == sha))
        s.commit()
    set_disabled(case, "alice", True, "tester")
    rep = verify_case(case)
    assert rep.ok, rep.problems


def test_planted_object_with_its_row_is_named(built, tmp_path):
    """An object file placed in the store with its objects row (and disguised as a derivative)."""
    case, sha, _ = built
    data = b"planted footage" * 1000
    planted = hashlib.sha256(data).hexdigest()
    src = tmp_path / "planted.bin"
    src.write_bytes(data)
    raw = Case(case.root)  # the insider writes the file through the store, the rows with SQL
    raw.store.put_file(src)
    sql(case, "INSERT INTO objects (sha256, size, kind, stored_at) VALUES (:s, :n, 'file', :t)",
        s=planted, n=len(data), t=datetime.now(UTC))
    sql(case, "INSERT INTO derivatives (sha256, parent_sha256, kind, params, created_by, created_at) "
              "VALUES (:s, :p, 'redaction', '{}', 'tester', :t)", s=planted, p=sha, t=datetime.now(UTC))
    found = problems(case)
    assert ("record.unlogged", f"objects:{planted}") in found
    assert ("record.unlogged", f"derivatives:{planted}") in found


def test_edited_case_file_is_named(built):
    case, _, _ = built
    path = case.root / "case.json"
    meta = json.loads(path.read_text())
    meta["title"] = "another case"
    path.write_text(json.dumps(meta))
    assert ("case.altered", "case.json") in problems(Case(case.root))


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_ledger_cut_back_to_an_earlier_prefix_is_named(tmp_path, small_clip, encrypted):
    """`head -n 16 ledger.jsonl`: every line left is valid, the chain intact; the database knows more."""
    secret = "correct horse battery staple" if encrypted else None
    case = Case.init(tmp_path / "case", "tester", secret=secret)
    Ingestor(case, "tester").run([small_clip])
    add_user(case, "alice", "reviewer", "a long enough password", "tester")
    lines = case.ledger.path.read_bytes().splitlines(keepends=True)
    assert len(lines) > 6
    case.ledger.path.write_bytes(b"".join(lines[:-3]))
    reopened = Case(case.root, secret=secret)
    rep = verify_case(reopened)
    assert not [p for p in rep.problems if p.kind.startswith("ledger.") and p.kind != "ledger.truncated"]
    assert "ledger.truncated" in {p.kind for p in rep.problems}


def test_cli_verify_names_a_lowered_score(built):
    from tests.conftest import run_cli

    case, sha, _ = built
    sql(case, "UPDATE segments SET score = 0.01")
    proc = run_cli("verify", str(case.root), "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert {"kind": "record.mismatch", "where": f"segments:{sha}"} in [
        {k: p[k] for k in ("kind", "where")} for p in doc["problems"]]


KILLED_ANNOTATION = """
import sys
from datetime import UTC, datetime
from custodes.store.case import Case
from custodes.store.db import Annotation
case = Case(__import__("pathlib").Path(sys.argv[1]))
with case.sessions() as s:
    a = Annotation(sha256=sys.argv[2], start_s=7.0, end_s=8.0, label="beating", people=[], note="retry me",
                   author="alice", created_at=datetime.now(UTC))
    s.add(a)
    s.log("alice", "annotate", sys.argv[2], lambda: {"annotation": a.id})
    s.commit()
"""


def test_annotation_killed_before_its_commit_leaves_no_half(built, tmp_path):
    """Finding 4: kill -9 between the ledger events and the database commit. verify names the seal and the annotate
    event it carried (a kill and a deletion look alike in the database); a person records the kill, signed; the
    retry saves the annotation once, with its own event."""
    import subprocess
    import sys

    from tests.conftest import run_cli

    case, sha, _ = built
    script = tmp_path / "annotate.py"
    script.write_text(KILLED_ANNOTATION)
    env = {**os.environ, "CUSTODES_FAULT": "seal.before_commit"}
    killed = subprocess.run([sys.executable, str(script), str(case.root), sha], env=env, capture_output=True)
    assert killed.returncode == -9
    rep = verify_case(Case(case.root))
    named = [p for p in rep.problems if p.kind == "record.uncommitted"]
    assert len(named) == 1 and "(annotate) with it" in named[0].message and len(rep.problems) == 1
    with case.sessions() as s:
        assert s.scalars(select(Annotation).where(Annotation.note == "retry me")).all() == []
    seq = int(named[0].where.split()[1])
    run_cli("ledger", "void-seal", str(case.root), str(seq), "--reason", "test: killed", check=True)
    rep = verify_case(Case(case.root))
    assert rep.ok and [w.kind for w in rep.warnings if w.kind == "record.voided"] == ["record.voided"]
    env.pop("CUSTODES_FAULT")
    subprocess.run([sys.executable, str(script), str(case.root), sha], env=env, check=True)
    with case.sessions() as s:
        rows = s.scalars(select(Annotation).where(Annotation.note == "retry me")).all()
    assert len(rows) == 1
    rep = verify_case(Case(case.root))
    assert rep.ok, rep.problems


def test_a_deleted_seal_mark_does_not_roll_back_a_finding(built):
    """Review finding: delete the top segment and the mark of the seal that recorded it, so the seal looks like it
    never took effect. verify names it; only a signed statement could excuse it."""
    case, sha, _ = built
    with case.sessions() as s:
        s.add(Segment(sha256=sha, start_s=10.0, end_s=12.0, score=0.99, reasons=[], model_version="t",
                      created_at=datetime.now(UTC)))
        s.commit()
    last = max(e["seq"] for e in case.ledger.entries() if e["action"] == "records.seal")
    sql(case, "DELETE FROM segments WHERE score = 0.99")
    sql(case, "DELETE FROM seal_marks WHERE seq = :q", q=last)
    assert ("record.uncommitted", f"seq {last}") in problems(case)


def test_a_failed_commit_voids_its_seal_at_once(built, monkeypatch):
    """A commit that fails (a duplicate key at the flush: before any seal; a full disk at the commit: after its
    seal) leaves the case consistent: no seal, or a seal ended at once by a signed void, and the rows not there."""
    from sqlalchemy.exc import IntegrityError

    case, sha, _ = built
    with case.sessions() as s:
        s.add(Recording(sha256=sha, camera_id="CAM-09", source="overlay", version="t", data={}))
        with pytest.raises(IntegrityError):
            s.commit()
    assert verify_case(case).ok
    monkeypatch.setenv("CUSTODES_FAULT", "seal.commit:error")
    with case.sessions() as s:
        s.add(Annotation(sha256=sha, start_s=1, end_s=2, label="other", people=[], note="disk full", author="alice",
                         created_at=datetime.now(UTC)))
        with pytest.raises(OSError, match="No space left"):
            s.commit()
    monkeypatch.delenv("CUSTODES_FAULT")
    rep = verify_case(case)
    assert rep.ok, rep.problems
    assert any(w.kind == "record.voided" and "No space left" in w.message for w in rep.warnings)
    with case.sessions() as s:
        assert not s.scalars(select(Annotation).where(Annotation.note == "disk full")).all()

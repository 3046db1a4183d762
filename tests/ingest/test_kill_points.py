"""kill -9 at the exact points of ingest where something is done and not yet recorded, then ingest again: the
case ends as after an uninterrupted run (same rows and probes, one ledger event per provenance row and refusal,
verify OK, nothing left in objects/.tmp). The random kills of test_resume.py reach these windows only by luck.

Points: ``ingest.member_stored`` (an archive member stored, no row yet), ``ledger.before.ingest`` (a provenance
row committed, its event not written), ``ledger.after.ingest`` (the event written, its seq not yet written back
to the row)."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import Rejection
from custodes.store.verify import verify_case
from tests.conftest import run_cli
from tests.ingest.test_resume import state


@pytest.fixture(scope="module")
def drive(tmp_path_factory, small_clip):
    d = tmp_path_factory.mktemp("kill-points") / "drive"
    d.mkdir()
    (d / "a_notes.txt").write_bytes(b"first file")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(3):
            zf.writestr(f"member{i}.txt", f"member {i}".encode())
        zf.writestr("../escape.txt", b"refused")
    (d / "b_archive.zip").write_bytes(buf.getvalue())
    (d / "c_clip.mp4").write_bytes(small_clip.read_bytes())
    return d


def full_state(case_dir: Path) -> tuple[object, ...]:
    case = Case(case_dir)
    prov, objs, media, pending, events = state(case)
    with case.sessions() as s:
        rej = sorted((r.source_path, r.member_path, r.reason, r.ledger_seq is None)
                     for r in s.scalars(select(Rejection)))
    refused = Counter(e["details"]["rejection"] for e in case.ledger.entries() if e["action"] == "ingest.refused")
    return prov, objs, media, pending, sorted(events.values()), rej, sorted(refused.values())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, drive):
    case = Case.init(tmp_path_factory.mktemp("kill-ref") / "case", "tester")
    Ingestor(case, "tester").run([drive])
    return full_state(case.root)


@pytest.mark.parametrize("point", ["ingest.member_stored", "ledger.before.ingest", "ledger.after.ingest"])
def test_ingest_killed_at_an_exact_point_then_resumed(tmp_path, drive, reference, point):
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    killed = run_cli("ingest", str(case_dir), str(drive), "--json", env={"CUSTODES_FAULT": point})
    assert killed.returncode == -9, killed.stderr
    # in between verify names what the kill left, and says to run ingest again
    rep = verify_case(Case(case_dir))
    kinds = {p.kind for p in rep.problems}
    if point == "ingest.member_stored":
        assert "object.unrecorded" in kinds and any("run ingest again" in p.message for p in rep.problems)
    elif point == "ledger.before.ingest":
        assert "record.unlogged" in kinds, rep.problems
    else:  # the event is signed; only the row's pointer to it is missing, which verify does not need
        assert rep.ok, rep.problems
    rows_at_kill = len(full_state(case_dir)[0])  # ledger.before.ingest: the first group's, events not signed
    resumed = run_cli("ingest", str(case_dir), str(drive), "--json")
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert rows_at_kill > 0 or point != "ledger.before.ingest"
    assert doc["reconciled_events"] == (rows_at_kill if point == "ledger.before.ingest" else 0)
    assert full_state(case_dir) == reference
    assert list((case_dir / "objects" / ".tmp").iterdir()) == []
    rep = verify_case(Case(case_dir))
    assert rep.ok, rep.problems

"""Ingest records many small files in groups (one seal, one ledger append, one sync of the objects per group):
kill -9 in the middle of a run, inside a group of many archive members, then ingest again — the case ends as
after an uninterrupted run, with exactly one ingest event per provenance row and verify OK.

The points: ``ingest.group`` (the group's objects named and durable, none of its rows written),
``ledger.before.ingest`` (the group's rows committed, none of their events written) and
``ledger.after.ingest`` (the events written, their seqs not yet written back), each reached for the 4th time:
the 4th group of a run holds 64 files."""

from __future__ import annotations

import io
import json
import os
import random
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.verify import verify_case
from tests.conftest import run_cli
from tests.ingest.test_kill_points import full_state


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rnd = random.Random(21)
    d = tmp_path_factory.mktemp("group-kill") / "drive"
    d.mkdir()
    for i in range(30):
        (d / f"a_note{i:02d}.txt").write_bytes(rnd.randbytes(rnd.randint(10, 3000)))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for i in range(20):
            zf.writestr(f"inner{i}.bin", rnd.randbytes(500))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(400):
            zf.writestr(f"dir{i // 100}/m{i:03d}.bin", rnd.randbytes(rnd.randint(10, 2000)))
        zf.writestr("same_a.bin", b"the same bytes twice in one group")
        zf.writestr("same_b.bin", b"the same bytes twice in one group")
        zf.writestr("copy_of_note.txt", (d / "a_note00.txt").read_bytes())
        zf.writestr("nested.zip", inner.getvalue())
        zf.writestr("../escape.txt", b"refused")
    (d / "b_many.zip").write_bytes(buf.getvalue())
    return d


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, drive: Path) -> tuple[object, ...]:
    case = Case.init(tmp_path_factory.mktemp("group-ref") / "case", "tester")
    rep = Ingestor(case, "tester").run([drive])
    assert rep.archive_members == 424 and rep.duplicates == 2
    prov = len(full_state(case.root)[0])
    seals = sum(e["action"] == "records.seal" for e in case.ledger.entries())
    assert prov == 30 + 1 + 424 and seals < prov / 10  # grouped: far fewer seals than rows
    return full_state(case.root)


@pytest.mark.parametrize("point", ["ingest.group@3", "ledger.before.ingest@3", "ledger.after.ingest@3"])
def test_kill_inside_a_group_of_many_members_then_resume(tmp_path: Path, drive: Path,
                                                         reference: tuple[object, ...], point: str) -> None:
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    env = {"CUSTODES_FAULT": point}
    killed = run_cli("ingest", str(case_dir), str(drive), "--json", env=env)
    assert killed.returncode == -9, killed.stderr
    rep = verify_case(Case(case_dir))
    kinds = Counter(p.kind for p in rep.problems)
    prov, objs = full_state(case_dir)[:2]
    # the kill came in the 256-file group: the two groups before it (16 + 64 files) are recorded
    assert len(prov) == (80 if point == "ingest.group@3" else 336)
    if point == "ingest.group@3":
        assert kinds["object.unrecorded"] >= 60, rep.problems  # named, durable, no row: "run ingest again"
    elif point == "ledger.before.ingest@3":
        assert kinds["record.unlogged"] >= 60, rep.problems  # rows without their events
    else:
        assert rep.ok, rep.problems
    resumed = run_cli("ingest", str(case_dir), str(drive), "--json")
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads(resumed.stdout)
    assert doc["reconciled_events"] == (256 if point == "ledger.before.ingest@3" else 0)
    assert full_state(case_dir) == reference  # one event per provenance row, the same rows and objects
    assert list((case_dir / "objects" / ".tmp").iterdir()) == []
    rep = verify_case(Case(case_dir))
    assert rep.ok, rep.problems


def test_a_kill_in_every_group_in_turn_converges(tmp_path: Path, drive: Path, reference: tuple[object, ...]) -> None:
    """Each run is killed at its own 2nd group; every resumed run gets further, none duplicates."""
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    rows = []
    for _ in range(3):
        killed = run_cli("ingest", str(case_dir), str(drive), "--json",
                         env={"CUSTODES_FAULT": "ingest.group@2"})
        assert killed.returncode == -9, killed.stderr
        rows.append(len(full_state(case_dir)[0]))
    assert rows == sorted(rows) and rows[-1] > rows[0]
    assert run_cli("ingest", str(case_dir), str(drive), "--json").returncode == 0
    assert full_state(case_dir) == reference
    assert verify_case(Case(case_dir)).ok
    assert os.listdir(case_dir / "objects" / ".tmp") == []

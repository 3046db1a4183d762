"""kill -9 inside ``custodes redact`` at its exact points, then the same redact again: the case ends as after an
uninterrupted run (one derivative, one redact event, verify OK, nothing left in objects/.tmp), and a later
ingest works in between."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from custodes.store.db import Derivative, EvidenceObject, Provenance
from custodes.store.verify import verify_case
from tests.conftest import run_cli

REDACT = ("--faces", "pixelate", "--audio", "remove", "--json")
# what a rerun produces anew (a signature time, its hash); everything else must equal the uninterrupted run
VARYING = {"derivative", "size", "adopted", "signer_certificate_sha256"}  # each case has its own CA


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("redact-kill")
    return tuple(write_clip(d / f"CAM0{i}.mp4", ClipSpec(f"CAM-0{i}", datetime(2026, 1, 2, 3, i), 2, fps=5,
                                                         size=(160, 96), seed=i)) for i in (1, 2))


def new_case(root: Path, clip: Path) -> tuple[Path, str]:
    case_dir = root / "case"
    run_cli("init", str(case_dir), check=True)
    run_cli("ingest", str(case_dir), str(clip), "--json", check=True)
    return case_dir, hashlib.sha256(clip.read_bytes()).hexdigest()


def redact(case_dir: Path, sha: str, fault: str | None = None) -> Any:
    proc = run_cli("redact", str(case_dir), sha[:12], *REDACT, env={"CUSTODES_FAULT": fault} if fault else None)
    if fault:
        assert proc.returncode == -9, proc.stderr  # killed at that very point
        return None
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def state(case_dir: Path) -> dict[str, Any]:
    case = Case(case_dir)
    with case.sessions() as s:
        objects = {o.sha256: o.kind for o in s.scalars(select(EvidenceObject))}
        derivatives = {d.sha256: d.params for d in s.scalars(select(Derivative))}
        provenance = [p.id for p in s.scalars(select(Provenance))]
    entries = list(case.ledger.entries())
    return {"objects": objects, "derivatives": derivatives, "provenance": provenance,
            "stored": set(case.store.iter_digests()), "tmp": list(case.store.tmp_dir.iterdir()),
            "redact_events": Counter(e["details"]["derivative"] for e in entries if e["action"] == "redact"),
            "ingest_events": Counter(e["details"]["provenance"] for e in entries if e["action"] == "ingest")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, clips):
    case_dir, sha = new_case(tmp_path_factory.mktemp("reference"), clips[0])
    doc = redact(case_dir, sha)
    run_cli("ingest", str(case_dir), str(clips[1]), "--json", check=True)
    rep = verify_case(Case(case_dir))
    assert rep.ok, rep.problems
    return doc, state(case_dir), sorted(w.kind for w in rep.warnings)


@pytest.mark.parametrize("point", ["redact.before_store", "redact.after_store"])
def test_redact_killed_then_rerun_ends_as_an_uninterrupted_run(tmp_path, clips, reference, point):
    ref_doc, ref, ref_warnings = reference
    case_dir, sha = new_case(tmp_path, clips[0])
    redact(case_dir, sha, fault=point)
    killed = state(case_dir)
    assert killed["derivatives"] == {} and killed["redact_events"] == Counter()
    assert killed["tmp"], "the kill left the scratch copy behind"
    unrecorded = killed["stored"] - set(killed["objects"])
    assert len(unrecorded) == (1 if point == "redact.after_store" else 0)
    # in between, verify is OK: the stored copy is named by its signed intent, with what to do, never as an
    # object placed by hand; a kill before the store is named too (nothing kept)
    rep = verify_case(Case(case_dir))
    assert rep.ok, rep.problems
    unfinished = [w for w in rep.warnings if w.kind == "redact.unfinished"]
    assert len(unfinished) == 1 and "run the same redact again" in unfinished[0].message
    if unrecorded:
        assert unfinished[0].where == next(iter(unrecorded))
    # a later ingest works (the killed process's scratch folder in objects/.tmp is removed, not read as a file)
    proc = run_cli("ingest", str(case_dir), str(clips[1]), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["removed_partials"] == 1
    assert state(case_dir)["tmp"] == []
    rep = verify_case(Case(case_dir))
    assert rep.ok and [w.kind for w in rep.warnings].count("redact.unfinished") == 1, rep
    # the same redact again: one derivative (the stored copy adopted, when there is one), one redact event
    doc = redact(case_dir, sha)
    if unrecorded:
        assert doc["derivative"] == next(iter(unrecorded)) and doc["adopted"]
    assert {k: v for k, v in doc.items() if k not in VARYING} == \
        {k: v for k, v in ref_doc.items() if k not in VARYING}
    end = state(case_dir)
    assert list(end["derivatives"]) == [doc["derivative"]] and end["redact_events"] == Counter({doc["derivative"]: 1})
    same = [{k: v for k, v in p.items() if k not in VARYING} for p in end["derivatives"].values()]
    assert same == [{k: v for k, v in p.items() if k not in VARYING} for p in ref["derivatives"].values()]
    assert sorted(end["objects"].values()) == sorted(ref["objects"].values())
    assert end["stored"] == set(end["objects"]) and end["tmp"] == []
    assert len(end["provenance"]) == len(ref["provenance"]) and set(end["ingest_events"].values()) == {1}
    rep = verify_case(Case(case_dir))
    assert rep.ok, rep.problems
    assert sorted(w.kind for w in rep.warnings) == ref_warnings  # redact.unfinished gone
    # and asked once more: the copy already made
    again = redact(case_dir, sha)
    assert again["derivative"] == doc["derivative"] and again["already_made"]
    assert state(case_dir)["redact_events"] == end["redact_events"]

"""kill -9 during ingest, at any point, then resume: same store, no loss, no duplicates."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import select

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import EvidenceObject, MediaProbe, Provenance
from custodes.store.verify import verify_case


@pytest.fixture(scope="module")
def drive(tmp_path_factory, small_clip):
    d = tmp_path_factory.mktemp("resume") / "drive"
    d.mkdir()
    for i in range(4):
        (d / f"big{i}.bin").write_bytes(os.urandom(24 * 1024 * 1024))  # 6 chunks each
    (d / "clip.mp4").write_bytes(small_clip.read_bytes())
    (d / "copy_of_big0.bin").write_bytes((d / "big0.bin").read_bytes())
    return d


def state(case):
    with case.sessions() as s:
        prov = sorted((p.source_path, p.member_path, p.sha256) for p in s.scalars(select(Provenance)))
        objs = sorted(o.sha256 for o in s.scalars(select(EvidenceObject)))
        media = sorted(m.sha256 for m in s.scalars(select(MediaProbe)))
        pending = [p.id for p in s.scalars(select(Provenance).where(Provenance.ledger_seq.is_(None)))]
    events = Counter(e["details"]["provenance"] for e in case.ledger.entries() if e["action"] == "ingest")
    return prov, objs, media, pending, events


def start_ingest(case_dir, drive, delay):
    env = {**os.environ, "CUSTODES_FAULT_CHUNK_DELAY": str(delay)}
    return subprocess.Popen([sys.executable, "-m", "custodes", "ingest", str(case_dir), str(drive), "--json"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def largest_part(tmp):
    """Size of the biggest partial copy, tolerating files renamed away (or the folder not made yet) mid-scan."""
    sizes = [0]
    with contextlib.suppress(FileNotFoundError):
        for p in tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                sizes.append(p.stat().st_size)
    return max(sizes)


def _entries(tmp):
    with contextlib.suppress(FileNotFoundError):
        return list(tmp.iterdir())
    return []


def wait_for(cond, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture(scope="module")
def reference(tmp_path_factory, drive):
    case = Case.init(tmp_path_factory.mktemp("ref") / "case", "tester")
    Ingestor(case, "tester").run([drive])
    return state(case)


def test_sigkill_mid_file_then_resume(tmp_path, drive, reference):
    case_dir = tmp_path / "case"
    Case.init(case_dir, "tester")
    proc = start_ingest(case_dir, drive, delay=0.05)
    tmp = case_dir / "objects" / ".tmp"
    # wait until the second big file is being copied: one file staged whole in the group, not yet named, and a
    # partial temporary of the next one
    assert wait_for(lambda: largest_part(tmp) >= 24 << 20 and len(_entries(tmp)) >= 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp.iterdir()), "the kill must have happened mid-file"
    Ingestor(Case(case_dir), "tester").run([drive])
    prov, objs, media, pending, events = state(Case(case_dir))
    assert (prov, objs, media) == reference[:3]
    assert pending == []
    assert set(events.values()) == {1}  # every provenance row has exactly one ingest event
    assert list(tmp.iterdir()) == []
    assert verify_case(Case(case_dir)).ok


@pytest.mark.parametrize("kill_after", [0.15, 0.45, 0.9, 1.4, 2.2])
def test_sigkill_at_many_points_converges(tmp_path, drive, reference, kill_after):
    case_dir = tmp_path / "case"
    Case.init(case_dir, "tester")
    proc = start_ingest(case_dir, drive, delay=0.02)
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # a second kill during the resume, then a clean finish
    proc = start_ingest(case_dir, drive, delay=0.02)
    time.sleep(kill_after / 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    Ingestor(Case(case_dir), "tester").run([drive])
    prov, objs, media, pending, events = state(Case(case_dir))
    assert (prov, objs, media) == reference[:3]
    assert pending == [] and set(events.values()) == {1}
    rep = verify_case(Case(case_dir))
    assert rep.ok, rep.problems

"""The local engine: a worker process killed mid-run is replaced, its videos are sent again, and the
results are the same as an undisturbed run, each stored once."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import func, select

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import AnalysisRun, Job, Segment, Signal
from custodes.triage.runner import run_triage


def _result(case: Case) -> tuple:
    with case.sessions() as s:
        segs = [(g.sha256, round(g.start_s, 3), round(g.score, 6))
                for g in s.scalars(select(Segment).order_by(Segment.sha256, Segment.start_s))]
        sigs = dict(s.execute(select(Signal.sha256, func.count()).group_by(Signal.sha256)).all())
    return segs, sigs


def test_killed_pool_worker_is_retried_without_duplicates(tmp_path, demo_drive, monkeypatch):
    drive, _ = demo_drive
    calm = Case.init(tmp_path / "calm", "tester")
    Ingestor(calm, "tester").run([drive])
    run_triage(calm, "tester", workers=2)

    hit = Case.init(tmp_path / "hit", "tester")
    Ingestor(hit, "tester").run([drive])
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("CUSTODES_FAULT_KILL_WORKER_ONCE", str(marker))
    rep = run_triage(hit, "tester", workers=2)
    assert marker.exists() and not rep.failed
    assert _result(hit) == _result(calm)
    with hit.sessions() as s:
        attempts = [r.attempts for r in s.scalars(select(AnalysisRun))]
        job = s.scalars(select(Job)).one()
    assert max(attempts) == 2 and job.status == "done" and job.engine == "local"


def test_a_killed_run_leaves_an_interrupted_job_and_resumes(tmp_path, demo_drive):
    drive, _ = demo_drive
    case = Case.init(tmp_path / "c", "tester")
    Ingestor(case, "tester").run([drive])
    run_triage(case, "tester", workers=1)
    with case.sessions() as s:  # as a killed run leaves it: still marked running
        s.scalars(select(Job)).one().status = "running"
        s.commit()
    rep = run_triage(case, "tester", workers=1)
    assert rep.analysed == 0 and rep.skipped_current > 0
    with case.sessions() as s:
        assert sorted(j.status for j in s.scalars(select(Job))) == ["done", "interrupted"]


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited; whoever adopted it has not reaped it yet


def test_workers_end_when_their_parent_is_killed(tmp_path):
    """The OOM killer or kill -9 takes the triage process: its workers must not live on holding their
    models' memory (before the watchdog they waited on their queue until the machine restarted)."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from custodes.engine.local import worker_pool

        if __name__ == "__main__":
            pool = worker_pool(2)
            pids = set()
            while len(pids) < 2:  # until both workers have taken a task
                pids |= {f.result() for f in [pool.submit(os.getpid) for _ in range(4)]}
            print(" ".join(map(str, sorted(pids))), flush=True)
            time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        workers = [int(p) for p in line.split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers)
    finally:
        parent.kill()


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            out |= {int(c) for c in (task / "children").read_text().split()}
    return out


def test_workers_still_starting_end_when_their_parent_is_killed(tmp_path):
    """kill -9 of triage while its workers start: they recorded as their parent whoever adopted them and,
    with the resource tracker, lived on for minutes (~470 MB each)."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, time
        from custodes.engine.local import worker_pool

        if __name__ == "__main__":
            pool = worker_pool(2)
            futs = [pool.submit(os.getpid) for _ in range(4)]  # makes the pool spawn its workers
            time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 30
        kids: set[int] = set()
        while len(kids) < 3 and time.monotonic() < deadline:  # the resource tracker and both workers
            kids = _children(parent.pid)
            time.sleep(0.005)
        assert len(kids) >= 3, kids
        parent.send_signal(signal.SIGKILL)  # the workers are still importing: no initializer has run yet
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in kids if _alive(p)], "orphans left 10 s after the parent was killed"
    finally:
        parent.kill()

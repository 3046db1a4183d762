"""Triage on a real local Ray cluster (head on loopback): the same queue as the local engine, and a
worker killed mid-run changes nothing but the attempt count."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from custodes.engine import EngineError
from custodes.engine.ray_engine import RayEngine
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case, CaseError
from custodes.store.db import AnalysisRun, Job, Segment, Signal
from custodes.triage.runner import run_triage
from tests.conftest import run_cli

pytest.importorskip("ray")
RAY = Path(sys.executable).parent / "ray"
# The engine does not depend on the database backend (only the driver writes, through the same session code
# as the local engine), and two local Ray clusters at once on one machine share /tmp/ray and talk across:
# the Ray tests run once, on the SQLite pass, which runs beside the PostgreSQL pass.
pytestmark = pytest.mark.no_database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A real Ray head on 127.0.0.1 with two worker slots, stopped afterwards."""
    port = _free_port()
    tmp = Path("/tmp") / f"ray-{os.getpid()}"  # Ray wants a short socket path
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp}"],
                   check=True, capture_output=True, env=env, timeout=180)
    yield f"127.0.0.1:{port}"
    subprocess.run([str(RAY), "stop", "--force"], capture_output=True, env=env, timeout=120)
    shutil.rmtree(tmp, ignore_errors=True)


def _copy_case(tmp_path_factory, drive: Path, name: str) -> Case:
    case = Case.init(tmp_path_factory.mktemp(name) / "case", "tester", title=name)
    Ingestor(case, "tester").run([drive])
    return case


def _queue(case: Case) -> list[tuple]:
    with case.sessions() as s:
        return [(g.sha256, round(g.start_s, 3), round(g.end_s, 3), round(g.score, 6))
                for g in s.scalars(select(Segment).order_by(Segment.sha256, Segment.start_s))]


def _signal_rows(case: Case) -> dict[str, int]:
    with case.sessions() as s:
        return dict(s.execute(select(Signal.sha256, func.count()).group_by(Signal.sha256)).all())


@pytest.fixture(scope="module")
def local_result(tmp_path_factory, demo_drive):
    case = _copy_case(tmp_path_factory, demo_drive[0], "local")
    run_triage(case, "tester", workers=1)
    return _queue(case), _signal_rows(case)


def test_ray_triage_equals_local_engine(tmp_path_factory, demo_drive, ray_cluster, local_result):
    case = _copy_case(tmp_path_factory, demo_drive[0], "ray")
    rep = run_triage(case, "tester", workers=2, engine="ray", address=ray_cluster)
    assert rep.analysed > 0 and not rep.failed
    assert (_queue(case), _signal_rows(case)) == local_result
    with case.sessions() as s:
        job = s.scalars(select(Job)).one()
        runs = list(s.scalars(select(AnalysisRun).where(AnalysisRun.analyzer == "triage")))
    assert (job.engine, job.address, job.workers, job.status) == ("ray", ray_cluster, 2, "done")
    assert all(r.job_id == job.id and r.worker and r.attempts == 1 for r in runs)
    assert len({r.worker for r in runs}) == 2  # both workers took part


def test_worker_killed_mid_run_the_job_completes_without_duplicates(tmp_path_factory, demo_drive, ray_cluster,
                                                                    local_result, tmp_path, monkeypatch):
    case = _copy_case(tmp_path_factory, demo_drive[0], "ray-kill")
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("CUSTODES_FAULT_KILL_WORKER_ONCE", str(marker))
    rep = run_triage(case, "tester", workers=2, engine="ray", address=ray_cluster)
    assert marker.exists(), "no worker was killed: the fault hook did not fire"
    assert rep.analysed > 0 and not rep.failed
    assert (_queue(case), _signal_rows(case)) == local_result  # nothing lost, nothing twice
    with case.sessions() as s:
        attempts = sorted(r.attempts for r in s.scalars(select(AnalysisRun)))
    assert attempts[-1] == 2 and attempts.count(2) == 1  # exactly the killed video was sent again


def test_cli_engine_ray_and_jobs_listing(tmp_path_factory, demo_drive, ray_cluster):
    case = _copy_case(tmp_path_factory, demo_drive[0], "ray-cli")
    proc = run_cli("triage", str(case.root), "--engine", "ray", "--address", ray_cluster, "--workers", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["analysed"] > 0
    docs = json.loads(run_cli("jobs", str(case.root), "--json", check=True).stdout)
    assert [(d["kind"], d["engine"], d["status"]) for d in docs] == [("triage", "ray", "done")]
    assert docs[0]["results_kept"] == json.loads(proc.stdout)["analysed"]


def test_unreachable_cluster_is_a_clear_error(tmp_path_factory, demo_drive):
    with pytest.raises(EngineError, match="cannot connect"):
        RayEngine(1, f"127.0.0.1:{_free_port()}").run([("x", None)], len, lambda: None,
                                                       lambda *a: None, lambda *a: None)
    case = _copy_case(tmp_path_factory, demo_drive[0], "ray-bad")
    with pytest.raises(CaseError, match="unknown engine"):
        run_triage(case, "tester", engine="spark")

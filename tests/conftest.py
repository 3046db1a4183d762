from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case

REPO = Path(__file__).resolve().parents[1]
FIGHT_SURV = Path(os.environ.get("CUSTODES_FIGHT_SURV", REPO.parent / "shared" / "data" / "fight-surv"))
HOCKEY = FIGHT_SURV.parent / "hockey"


def _session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (zombies, which hold nothing, left out)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            out.append(int(stat.parent.name))
    return out


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real installed CLI in a subprocess, as a user would.

    It runs in a session of its own, so that when a fault hook kills it (kill -9) every process it started
    can be found afterwards: none may be left 10 s later (workers, decoders, trackers), or the test fails."""
    cmd = [sys.executable, "-m", "custodes", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise
    if proc.returncode == -9:
        deadline = time.monotonic() + 10
        while _session_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _session_members(proc.pid)
        if left:
            os.killpg(proc.pid, 9)
        assert not left, f"custodes {' '.join(args)} was killed and left processes {left} running after 10 s"
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise AssertionError(f"custodes {' '.join(args)} failed ({proc.returncode}):\n{err}")
    return result


def cli_json(*args: str) -> object:
    proc = run_cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def case(tmp_path: Path) -> Case:
    return Case.init(tmp_path / "case", "tester", title="test case")


@pytest.fixture(scope="session")
def demo_drive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from custodes.demo.build import build_drive

    drive = tmp_path_factory.mktemp("demo") / "drive"
    truth = build_drive(drive, seconds=20)
    return drive, truth


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("clips") / "CAM07_small.mp4"
    return write_clip(p, ClipSpec("CAM-07", datetime(2026, 1, 2, 3, 4, 5), 6, fps=10, size=(320, 180)))


@pytest.fixture(scope="session")
def fight_surv() -> Path:
    if not (FIGHT_SURV / "fight").is_dir():
        pytest.skip(f"real test data not found at {FIGHT_SURV}")
    return FIGHT_SURV


@pytest.fixture(scope="session")
def hockey() -> Path:
    if not (HOCKEY / "fight").is_dir():
        pytest.skip(f"real test data not found at {HOCKEY}")
    return HOCKEY


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The suite runs twice, on SQLite and on PostgreSQL (Makefile); tests that touch no database run once."""
    if not os.environ.get("CUSTODES_DB"):
        return
    skip = pytest.mark.skip(reason="touches no database: run on the SQLite pass")
    for item in items:
        if item.get_closest_marker("no_database"):
            item.add_marker(skip)

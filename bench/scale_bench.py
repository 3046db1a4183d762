"""Scale-out: triage throughput with 1 and 2 Ray workers on a real local Ray cluster, against the local
engine in the same run, and a projection of machines and hours for 100,000 hours of footage made from
the per-video costs measured here."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from custodes.media.synth import ClipSpec, write_clip

RAY = Path(sys.executable).parent / "ray"
TARGET_HOURS = 100_000


def _clips(work: Path, n: int = 16, seconds: int = 60) -> Path:
    """n one-minute 640×360 body-camera clips, a quarter of them with a struggle."""
    d = work / "scale-clips"
    d.mkdir(exist_ok=True)
    for i in range(n):
        struggles = [(20.0, 35.0)] if i % 4 == 0 else []
        write_clip(d / f"CAM{i:02d}.mp4", ClipSpec(f"CAM-{i:02d}", datetime(2026, 3, 14, 1, i, 0), seconds, fps=15,
                                                   size=(640, 360), struggles=struggles, seed=100 + i, crf=30))
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(work: Path) -> dict:
    from custodes.ingest.pipeline import Ingestor
    from custodes.store.case import Case
    from custodes.triage.runner import run_triage

    clips = _clips(work)
    case = Case.init(work / "scale-case", "bench")
    Ingestor(case, "bench").run([clips])
    cores = os.cpu_count() or 1
    port = _free_port()
    tmp = Path("/tmp") / f"ray-bench-{os.getpid()}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    f"--num-cpus={cores}", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp}"],
                   check=True, capture_output=True, env=env, timeout=180)
    address = f"127.0.0.1:{port}"
    timings: dict[str, float] = {}
    footage_s = 0.0
    try:
        for label, engine, workers in (("local, 1 worker", "local", 1), ("ray, 1 worker", "ray", 1),
                                       ("ray, 2 workers", "ray", 2)):
            t0 = time.perf_counter()
            rep = run_triage(case, "bench", workers=workers, force=True, engine=engine, address=address)
            timings[label] = time.perf_counter() - t0
            footage_s = rep.footage_s
            assert not rep.failed, rep.failed
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    one, two = timings["ray, 1 worker"], timings["ray, 2 workers"]
    scaling = one / two
    efficiency = scaling / 2
    # cost per hour of footage on one core, from the single-worker Ray run (it includes scheduling)
    core_h_per_footage_h = one / footage_s
    core_h = TARGET_HOURS * core_h_per_footage_h
    projection = []
    for machines, cores_each in ((1, 2), (1, 16), (10, 16), (50, 16)):
        workers_total = machines * cores_each
        # assume the efficiency measured for 2 workers holds per added worker (shared-nothing per video)
        hours = core_h / (workers_total * (efficiency if workers_total > 1 else 1.0))
        projection.append({"machines": machines, "cores_each": cores_each, "hours": round(hours, 1),
                           "days": round(hours / 24, 1)})
    return {
        "bench": "scale-out: triage on a local Ray cluster",
        "videos": 16, "footage_min": round(footage_s / 60, 1), "cores": cores,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "ray_1_vs_local_1": round(timings["local, 1 worker"] / one, 3),
        "scaling_2_vs_1_workers": round(scaling, 3), "parallel_efficiency": round(efficiency, 3),
        "core_h_per_footage_h": round(core_h_per_footage_h, 5),
        "x_realtime_per_core": round(1 / core_h_per_footage_h, 1),
        "projection_100k_hours": projection,
        "note": "projection = 100,000 h x measured core-hours per footage hour / (workers x measured parallel "
                "efficiency); the clips here are one-minute 640x360, so per-video overheads weigh more than "
                "in hour-long body-camera files (see the 1-hour 720p row for long-file cost)",
    }

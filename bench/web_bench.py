"""Review app load test on loopback: p95 latency of the queue page, the workspace page and its API calls, and range
requests, on a 10,000-segment case (100 videos x 100 segments) with 20 concurrent users; plus the size of the
JavaScript and CSS shipped to the browser, gzip-compressed (budget 300 KB).

The server is a real ``custodes serve`` process (the load generator's threads do not share its interpreter).
Each user sends a request, waits for the answer, then thinks for ``THINK_S`` on average (exponential) before the
next: a reviewer's pace is a page and a few API calls per segment, seconds apart, so this is harsher than a real
team. ``closed loop`` rows send back-to-back with no thinking: the server's throughput.

Alone: ``python bench/web_bench.py`` (or ``CUSTODES_BENCH_ONLY=web make bench``)."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from custodes.store.case import Case
from custodes.store.db import EvidenceObject, MediaProbe, Provenance, Recording, Segment
from custodes.web.users import add_user

DURATION_S = 20.0
USERS = 20
THINK_S = 0.5
VIDEOS, PER_VIDEO = 100, 100
ASSET_BUDGET_KB = 300
STATIC = Path(__file__).resolve().parents[1] / "src" / "custodes" / "web" / "static"
REASONS = [{"signal": "p_visual", "value": 0.8, "text": "motion"}, {"signal": "audio:impact", "value": 0.5}]


def _case(work: Path) -> tuple[Case, list[str], list[int]]:
    case = Case.init(work / "web-case", "bench")
    now = datetime.now(UTC)
    shas = []
    from custodes.store.db import Batch

    with case.sessions() as s:
        s.add(Batch(id="b", note="bench", actor="bench", sources=[], started_at=now))
        for v in range(VIDEOS):
            # the first is an 8 MiB stand-in for range requests; the rest small distinct objects
            blob = bytes(range(256)) * 4096 * 8 if v == 0 else v.to_bytes(4, "big") * 16384
            obj = case.store.put_stream(io.BytesIO(blob))
            shas.append(obj.sha256)
            s.add(EvidenceObject(sha256=obj.sha256, size=obj.size, kind="file", stored_at=now))
            s.add(Provenance(id=f"p{v}", sha256=obj.sha256, batch_id="b", source_path="/x", member_path="",
                             original_name=f"video{v:03d}.mp4", size=obj.size, mtime_ns=0, recorded_at=now,
                             ledger_seq=1))
            s.add(MediaProbe(sha256=obj.sha256, status="ok", reason="", duration_s=3600.0, tags={}, streams=[],
                             probe_version="bench", probed_at=now, width=1280, height=720, video_codec="h264"))
            # 5 cameras, an hour per file back to back: the workspace's gap check reads each camera's timeline
            start = datetime(2026, 3, 1) + timedelta(hours=v // 5)
            s.add(Recording(sha256=obj.sha256, camera_id=f"CAM-{v % 5:02d}", start_at=start,
                            end_at=start + timedelta(hours=1), source="overlay", confidence=1.0, version="bench",
                            data={}))
            s.add_all(Segment(sha256=obj.sha256, start_s=i * 36.0, end_s=i * 36.0 + 8,
                              score=((v * PER_VIDEO + i) * 7919 % 10000) / 10000, reasons=REASONS,
                              model_version="bench", created_at=now) for i in range(PER_VIDEO))
        s.commit()
        ids = [i for (i,) in s.execute(Segment.__table__.select().with_only_columns(Segment.id))]
    for u in range(USERS):
        add_user(case, f"bench{u:02d}", "reviewer", "bench password 1", "bench")
    return case, shas, ids


def assets() -> dict:
    """What a browser downloads of the app's own code, compressed as a server would send it."""
    files = sorted(p for p in STATIC.rglob("*") if p.suffix in (".js", ".css") and p.is_file())
    raw = sum(p.stat().st_size for p in files)
    packed = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return {"files": len(files), "raw_kb": round(raw / 1024, 1), "gzip_kb": round(packed / 1024, 1),
            "budget_kb": ASSET_BUDGET_KB, "within_budget": packed / 1024 < ASSET_BUDGET_KB}


def _serve(case: Case) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "custodes", "serve", str(case.root), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(base + "/login", timeout=2)
            return proc, base
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("custodes serve did not start")


def run(work: Path) -> dict:
    case, shas, ids = _case(work)
    proc, base = _serve(case)
    try:
        out = _load(base, shas, ids, THINK_S)
        closed = _load(base, shas, ids, 0.0, seconds=8.0)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    out["closed loop (no think time)"] = {
        "requests_per_s": round(sum(v["requests"] for v in closed.values() if isinstance(v, dict)) / 8.0, 1),
        "p95_ms_worst": max(v["p95_ms"] for v in closed.values() if isinstance(v, dict))}
    out["assets"] = assets()
    rows = [v for k, v in out.items() if isinstance(v, dict) and "p95_ms" in v]
    out["meets_target"] = all(v["p95_ms"] < 100 for v in rows) and out["assets"]["within_budget"]
    return out


def _login(base: str, user: str) -> dict[str, str]:
    c = httpx.Client(base_url=base)
    page = c.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    c.post("/login", data={"username": user, "password": "bench password 1", "csrf": csrf})
    return dict(c.cookies)


def _load(base: str, shas: list[str], ids: list[int], think_s: float, seconds: float = DURATION_S) -> dict:
    cookies = [_login(base, f"bench{u:02d}") for u in range(USERS)]
    kinds = ["queue page (100 of 10,000)", "workspace page (100 segments)", "api strip", "api neighbour",
             "api queue (100)", "api progress", "range request (1 MiB)"]
    lat: dict[str, list[float]] = {k: [] for k in kinds}
    stop = time.time() + seconds

    def worker(k: int) -> None:
        cl = httpx.Client(base_url=base, cookies=cookies[k], timeout=30)
        rnd = random.Random(k)
        i = 0
        while time.time() < stop:
            if think_s:
                time.sleep(rnd.expovariate(1 / think_s))
            i += 1
            kind = kinds[(i + k) % len(kinds)]
            sha = shas[(i * 31 + k) % len(shas)]
            t0 = time.perf_counter()
            if kind.startswith("queue"):
                r = cl.get("/", params={"min_score": 0.0}, headers={"Accept": "text/html"})
            elif kind.startswith("workspace"):
                r = cl.get(f"/items/{sha}", headers={"Accept": "text/html"})
            elif kind == "api strip":
                r = cl.get(f"/api/items/{sha}/strip")
            elif kind == "api neighbour":
                r = cl.get("/api/queue/neighbour", params={"segment": ids[(i * 97 + k) % len(ids)]})
            elif kind.startswith("api queue"):
                r = cl.get("/api/queue", params={"limit": 100})
            elif kind == "api progress":
                r = cl.get("/api/progress")
            else:
                off = (i * 1048576) % (7 << 20)
                r = cl.get(f"/media/{shas[0]}", headers={"Range": f"bytes={off}-{off + 1048575}"})
            r.raise_for_status()
            lat[kind].append((time.perf_counter() - t0) * 1000)

    with ThreadPoolExecutor(USERS) as ex:
        list(ex.map(worker, range(USERS)))
    out: dict = {"bench": f"review app (custodes serve) on loopback, {USERS} concurrent users for {seconds:.0f} s "
                          f"(think time {think_s} s), {VIDEOS * PER_VIDEO:,} segments in {VIDEOS} videos",
                 "target": "p95 < 100 ms for pages and API calls"}
    for k, v in lat.items():
        v.sort()
        out[k] = {"requests": len(v), "p50_ms": round(statistics.median(v), 1),
                  "p95_ms": round(v[int(0.95 * (len(v) - 1))], 1)}
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        result = run(Path(d))
    print(json.dumps(result, indent=2))
    sys.exit(0)

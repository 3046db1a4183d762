"""Review app load test on loopback: p95 latency of queue pages and range requests, 10,000 segments."""

from __future__ import annotations

import io
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from custodes.store.case import Case
from custodes.store.db import EvidenceObject, MediaProbe, Provenance, Segment
from custodes.web.app import create_app
from custodes.web.background import background_server
from custodes.web.users import add_user

DURATION_S = 20.0
CLIENTS = 4


def _case(work: Path) -> tuple[Case, str]:
    case = Case.init(work / "web-case", "bench")
    now = datetime.now(UTC)
    blob = bytes(range(256)) * 4096 * 8  # 8 MiB stand-in video object
    obj = case.store.put_stream(io.BytesIO(blob))
    with case.sessions() as s:
        from custodes.store.db import Batch

        s.add(Batch(id="b", note="bench", actor="bench", sources=[], started_at=now))
        s.add(EvidenceObject(sha256=obj.sha256, size=obj.size, kind="file", stored_at=now))
        s.add(Provenance(id="p", sha256=obj.sha256, batch_id="b", source_path="/x", member_path="",
                         original_name="video.mp4", size=obj.size, mtime_ns=0, recorded_at=now, ledger_seq=1))
        s.add(MediaProbe(sha256=obj.sha256, status="ok", reason="", duration_s=3600.0, tags={}, streams=[],
                         probe_version="bench", probed_at=now, width=1280, height=720))
        s.add_all(Segment(sha256=obj.sha256, start_s=i * 0.36, end_s=i * 0.36 + 2, score=(i * 7919 % 10000) / 10000,
                          reasons=[{"text": "bench"}], model_version="bench", created_at=now) for i in range(10_000))
        s.commit()
    add_user(case, "bench", "reviewer", "bench password 1", "bench")
    return case, obj.sha256


def run(work: Path) -> dict:
    case, sha = _case(work)
    with background_server(create_app(case)) as base:
        return _load(base, sha)


def _load(base: str, sha: str) -> dict:
    c = httpx.Client(base_url=base)
    page = c.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    c.post("/login", data={"username": "bench", "password": "bench password 1", "csrf": csrf})
    cookies = dict(c.cookies)
    lat: dict[str, list[float]] = {"queue page (100 of 10,000)": [], "api queue (100)": [],
                                   "range request (1 MiB)": []}
    stop = time.time() + DURATION_S

    def worker(k: int) -> None:
        cl = httpx.Client(base_url=base, cookies=cookies)
        i = 0
        while time.time() < stop:
            i += 1
            kind = list(lat)[(i + k) % 3]
            t0 = time.perf_counter()
            if kind.startswith("queue"):
                r = cl.get("/", params={"min_score": 0.0})
            elif kind.startswith("api"):
                r = cl.get("/api/queue", params={"limit": 100})
            else:
                off = (i * 1048576) % (7 << 20)
                r = cl.get(f"/media/{sha}", headers={"Range": f"bytes={off}-{off + 1048575}"})
            r.raise_for_status()
            lat[kind].append((time.perf_counter() - t0) * 1000)

    with ThreadPoolExecutor(CLIENTS) as ex:
        list(ex.map(worker, range(CLIENTS)))
    out = {"bench": f"review app on loopback, {CLIENTS} concurrent clients for {DURATION_S:.0f} s, 10,000 segments",
           "target": "p95 < 100 ms for pages"}
    for k, v in lat.items():
        v.sort()
        out[k] = {"requests": len(v), "p50_ms": round(statistics.median(v), 1),
                  "p95_ms": round(v[int(0.95 * (len(v) - 1))], 1)}
    return out

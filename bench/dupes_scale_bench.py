"""Near-duplicate search at archive scale: N videos of synthetic frame hashes with planted copies.

Decoding and hashing scale linearly and run per video (the triage engines spread them); what must not
grow with the square of the archive is the search. This bench writes N videos × F PDQ-like frame hashes
straight into a case (random 256-bit hashes, one view: the worst case for chance band collisions; real
footage is lower-entropy, and its very common band values are dropped as stop words), plants copies with
10–24 flipped bits per frame at a time offset, and times the search (`find_matches` without the pixel
verification, which needs real video and runs only on the few pairs that pass) with the recall of the
plants.

Run alone: ``python bench/dupes_scale_bench.py [videos]`` (default 10,000; 100000 for the large figure).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import text

from custodes.dupes.index import candidate_pairs, find_matches, load_hashes
from custodes.store.case import Case


def _flip(h: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    out = h.copy()
    for i in range(len(out)):
        for b in rng.choice(256, size=bits, replace=False):
            out[i, b // 8] ^= 1 << (b % 8)
    return out


def build(case: Case, n_videos: int, frames: int, planted: int, seed: int = 3) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    hashes = {f"{i:064x}": rng.integers(0, 256, size=(frames, 32), dtype=np.uint8) for i in range(n_videos)}
    shas = list(hashes)
    plants = []
    for k in range(planted):  # the last `planted` videos are noisy copies of earlier ones, shifted in time
        src, dst = shas[k], shas[-(k + 1)]
        shift = int(rng.integers(1, 5))
        base = np.roll(hashes[src], -shift, axis=0)
        hashes[dst] = _flip(base, int(rng.integers(10, 25)), rng)
        plants.append((min(src, dst), max(src, dst)))
    now = datetime.now(UTC)
    with case.engine.begin() as conn:
        conn.execute(text("INSERT INTO objects (sha256, size, kind, stored_at) VALUES (:s, 1, 'file', :t)"),
                     [{"s": s, "t": now} for s in shas])
        fid = 0
        frame_rows = []
        for s, hs in hashes.items():
            for j, h in enumerate(hs):
                fid += 1
                frame_rows.append({"id": fid, "s": s, "t": 2.0 * j, "h": bytes(h), "q": 100})
        conn.execute(text("INSERT INTO frame_hashes (id, sha256, t, hash, quality) VALUES (:id, :s, :t, :h, :q)"),
                     frame_rows)
    return plants


SIZES = (10_000, 100_000)  # what make bench reports: the target at 10,000 and the archive figure at 100,000


def run_sizes(work: Path) -> list[dict]:
    return [run(work, n) for n in SIZES]


def run(work: Path, n_videos: int = 10_000, frames: int = 30, planted: int = 50) -> dict:
    case = Case.init(work / f"dupes-scale-{n_videos}", "bench")
    t0 = time.perf_counter()
    plants = build(case, n_videos, frames, planted)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    videos = load_hashes(case)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = candidate_pairs(videos)
    t_pairs = time.perf_counter() - t0
    rows = len(pairs)
    del pairs, videos
    t0 = time.perf_counter()
    matches = find_matches(case, verify=False)
    t_match = time.perf_counter() - t0
    found = {(min(m.a, m.b), max(m.a, m.b)) for m in matches}
    return {"bench": f"near-duplicate search at archive scale ({n_videos:,} videos of synthetic frame hashes)",
            "videos": n_videos, "frames": n_videos * frames, "planted_copies": planted,
            "candidate_video_pairs": rows, "search_s": round(t_match, 1), "candidate_join_s": round(t_pairs, 1),
            "load_hashes_s": round(t_load, 1),
            "target": "search < 10 s at 10,000 videos" if n_videos <= 10_000 else "reported (the target is at 10,000)",
            "planted_found": sum(p in found for p in plants), "false_matches": len(found - set(plants)),
            "load_s": round(t_build, 1)}


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
        print(json.dumps(run(Path(d), int(sys.argv[1]) if len(sys.argv) > 1 else 10_000), indent=2))

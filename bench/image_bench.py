"""Disk images and overlays (issue 26), as ratios against baselines measured in the same run.

* **Card image**: ingest of a 4 GiB FAT32 card image (``mkfs.vfat``, real fight-surv clips copied in with mtools,
  three times over, some deleted, some of those with their directory entries wiped so only carving finds them),
  against ``sha256sum`` of the image. Ingest hashes and stores the image, walks its file system, stores every
  clip, recovers the deleted ones, carves the unallocated space and decodes what it recovered or carved.
* **Overlay**: reading the burnt-in overlay (and looking for edits inside the file) of 16 two-second fight-surv
  clips, against decoding those clips whole.

Alone: ``python bench/image_bench.py`` (``CUSTODES_BENCH_IMAGE_GIB`` for another image size) or
``CUSTODES_BENCH_ONLY=image`` through ``bench/run.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIGHT_SURV = Path(os.environ.get("CUSTODES_FIGHT_SURV", REPO.parent / "shared" / "data" / "fight-surv"))


def _clips(fight_surv: Path) -> list[Path]:
    return sorted((fight_surv / "fight").glob("*.mp4")) + sorted((fight_surv / "noFight").glob("*.mp4"))


def build_card(work: Path, clips: list[Path], gib: float, copies: int = 3) -> tuple[Path, int, int]:
    """(image, clips deleted, of which entries wiped). Names are 8.3 upper case (no long-name entries)."""
    img = work / "card.fat32"
    subprocess.run(["mkfs.vfat", "-F", "32", "-C", str(img), str(int(gib * 1024 * 1024))], check=True,
                   capture_output=True)
    named = work / "named"
    deleted: list[str] = []
    for k in range(copies):
        d = named / f"D{k}"
        d.mkdir(parents=True)
        for i, c in enumerate(clips):
            try:
                os.link(c, d / f"C{k}{i:05d}.MP4")
            except OSError:
                shutil.copy(c, d / f"C{k}{i:05d}.MP4")
        subprocess.run(["mmd", "-i", str(img), f"::DCIM{k}"], check=True, capture_output=True)
        files = sorted(d.iterdir())
        subprocess.run(["mcopy", "-i", str(img), *map(str, files), f"::DCIM{k}/"], check=True, capture_output=True)
        gone = [f.name for f in files[::25]]
        subprocess.run(["mdel", "-i", str(img), *(f"::DCIM{k}/{n}" for n in gone)], check=True, capture_output=True)
        deleted += gone
    shutil.rmtree(named)
    wiped = 0
    with open(img, "r+b") as fh:  # wipe every other deleted entry: only carving finds those clips
        import mmap

        with mmap.mmap(fh.fileno(), 0) as m:
            for n in deleted[::2]:
                stem, ext = n.split(".")
                at = m.find(b"\xe5" + stem[1:].ljust(7).encode() + ext.encode())
                if at != -1 and at % 32 == 0:
                    m[at:at + 32] = b"\xe5" + bytes(31)
                    wiped += 1
    return img, len(deleted), wiped


def _timeit(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def card_image(work: Path, fight_surv: Path, gib: float | None = None) -> dict[str, Any]:
    from custodes.ingest.pipeline import Ingestor
    from custodes.store.case import Case

    gib = gib or float(os.environ.get("CUSTODES_BENCH_IMAGE_GIB", "4"))
    img, deleted, wiped = build_card(work, _clips(fight_surv), gib)
    size = img.stat().st_size
    sha_s = min(_timeit(lambda: subprocess.run(["sha256sum", str(img)], check=True, capture_output=True))
                for _ in range(2))
    case = Case.init(work / "case-image", "bench")
    t = _timeit(lambda: Ingestor(case, "bench", probe_media=False).run([img]))
    carved = recovered = partial = 0
    for e in case.ledger.entries():
        d = e.get("details") or {}
        if e["action"] != "ingest" or not d.get("deleted"):
            continue
        carved += bool(d.get("carved"))
        recovered += not d.get("carved")
        partial += d.get("recovery") == "partial"
    shutil.rmtree(work / "case-image")
    img.unlink()
    return {"bench": f"card image ingest ({gib:g} GiB FAT32, {3 * len(_clips(fight_surv))} real clips)",
            "image_bytes": size, "sha256sum_s": round(sha_s, 3), "ingest_s": round(t, 3),
            "ingest_MB_s": round(size / t / 1e6, 1), "ratio_vs_sha256sum": round(sha_s / t, 3),
            "deleted": deleted, "entries_wiped": wiped, "recovered": recovered, "carved": carved,
            "partial": partial}


def overlays(fight_surv: Path, n: int = 16) -> dict[str, Any]:
    import av

    from custodes.analyze import edits, overlay
    from custodes.media.probe import probe

    clips = _clips(fight_surv)[::max(1, len(_clips(fight_surv)) // n)][:n]
    probes = {c: probe(str(c)) for c in clips}

    def decode_all() -> None:
        for c in clips:
            with av.open(str(c)) as f:
                for _ in f.decode(video=0):
                    pass

    decode_s = min(_timeit(decode_all) for _ in range(2))
    overlay._engine()  # the models load once per process, not per clip
    found = read = 0

    def read_all() -> None:
        nonlocal found, read
        for c in clips:
            dur = float(probes[c].duration_s or 0)
            res = overlay.read_overlay(str(c), dur)
            read += res.start is not None
            found += len(edits.find_edits(str(c), dur, probes[c].creation_time, res))

    t = _timeit(read_all)
    return {"bench": f"overlay + edits ({len(clips)} two-second fight-surv clips)", "clips": len(clips),
            "decode_s": round(decode_s, 3), "overlay_s": round(t, 3), "overlay_s_per_clip": round(t / len(clips), 2),
            "ratio_vs_decode": round(decode_s / t, 3), "clocks_read": read, "edits_found": found}


def run(work: Path, fight_surv: Path = FIGHT_SURV) -> list[dict[str, Any]]:
    rows = []
    if shutil.which("mkfs.vfat") and shutil.which("mcopy") and (fight_surv / "fight").is_dir():
        rows.append(card_image(work, fight_surv))
    if (fight_surv / "fight").is_dir():
        rows.append(overlays(fight_surv))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
        out = run(Path(d))
    print(json.dumps(out, indent=2))
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "image.json").write_text(json.dumps(out, indent=2) + "\n")

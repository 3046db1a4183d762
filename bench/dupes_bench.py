"""Near-duplicate precision and recall on fight-surv clips and their variants."""

from __future__ import annotations

import itertools
import re
import shutil
import time
from pathlib import Path

from custodes.dupes.index import clusters, hash_videos
from custodes.dupes.variants import make_variants
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case


def run(work: Path, data: Path, n_sources: int = 20, n_unrelated: int = 40) -> dict:
    drive = work / "dupes-drive"
    fights = sorted((data / "fight").glob("*.mp4"))
    calm = sorted((data / "noFight").glob("*.mp4"))
    sources = fights[:: max(1, len(fights) // n_sources)][:n_sources]
    unrelated = calm[:: max(1, len(calm) // n_unrelated)][:n_unrelated]
    (drive / "orig").mkdir(parents=True)
    for f in sources + unrelated:
        shutil.copy2(f, drive / "orig" / f.name)
    for f in sources:
        make_variants(f, drive / "copies")
    case = Case.init(work / "dupes-case", "bench")
    Ingestor(case, "bench", probe_media=True).run([drive])
    t0 = time.perf_counter()
    hash_videos(case)
    t_hash = time.perf_counter() - t0
    t0 = time.perf_counter()
    doc = clusters(case)
    t_cluster = time.perf_counter() - t0
    label: dict[str, str] = {}
    for c_i, c in enumerate(doc["clusters"]):
        for m in c["members"]:
            for n in m["names"]:
                label[n] = f"c{c_i}"
    names = [p.name for p in (drive / "orig").iterdir()] + [p.name for p in (drive / "copies").iterdir()]

    def truth(n: str) -> str:
        return re.sub(r"_(reencode|360p|cut|grey)$", "", n.rsplit(".", 1)[0])

    tp = fp = fn = 0
    for a, b in itertools.combinations(names, 2):
        same_true = truth(a) == truth(b)
        same_pred = a in label and label.get(a) == label.get(b)
        tp += same_true and same_pred
        fp += (not same_true) and same_pred
        fn += same_true and not same_pred
    return {"bench": "near-duplicates (PDQ frames, band index, offset voting) on fight-surv variants",
            "sources": len(sources), "variants_per_source": 4, "unrelated": len(unrelated),
            "pair_precision": round(tp / max(tp + fp, 1), 3), "pair_recall": round(tp / max(tp + fn, 1), 3),
            "hash_s": round(t_hash, 1), "cluster_s": round(t_cluster, 2), "videos": len(names)}

"""How to fuse the MC3-18 head with the motion score (issue 24): clip scores across sources.

For each way (fight-surv -> hockey, hockey -> fight-surv) the motion LightGBM (shipped parameters and
temperature) and the logistic head on MC3-18 features are trained on one source and score the other; the
fusions below are compared by ROC AUC, and by the mean score the calm clips get. Features come from the
caches that ``bench/cross_source_bench.py`` fills (motion pass and MC3 embeddings per source, hockey's
watermark corner painted out for both).

    .venv/bin/python experiments/video_check/fusion.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

FUSIONS = {
    "motion alone": lambda m, c: m,
    "MC3 head alone": lambda m, c: c,
    "mean (A)": lambda m, c: (m + c) / 2,
    "raise only: max(motion, mean) (B)": lambda m, c: np.maximum(m, (m + c) / 2),
    "lower only: min(motion, mean)": lambda m, c: np.minimum(m, (m + c) / 2),
    "geometric mean": lambda m, c: np.sqrt(m * c),
    "mean, weight 2:1 motion": lambda m, c: (2 * m + c) / 3,
    "mean, weight 1:2 motion": lambda m, c: (m + 2 * c) / 3,
}


def main() -> None:
    import cross_source_bench as cs

    from custodes.triage import generalise
    from custodes.triage.dataset import cached_dataset
    from custodes.triage.metrics import roc_auc
    from custodes.triage.video_check import clip_embeddings

    data = cs.DATA
    fs, hockey = cached_dataset(data / "fight-surv"), cached_dataset(data / "hockey")
    emb = {d.source: clip_embeddings(d.files, 2, d.source)[1] for d in (fs, hockey)}
    t = cs._shipped_temperature()
    out: dict[str, dict[str, str]] = {}
    for src, dst in ((fs, hockey), (hockey, fs)):
        m = generalise.lightgbm_scores(src.X, src.y, dst.X, temperature=t)
        c = generalise.logistic_scores(emb[src.source], src.y, emb[dst.source])
        way = f"{src.source} -> {dst.source}"
        for name, f in FUSIONS.items():
            p = f(m, c)
            out.setdefault(name, {})[way] = (f"{roc_auc(dst.y, p):.3f} (calm mean {p[dst.y == 0].mean():.2f}, "
                                             f"violent {p[dst.y == 1].mean():.2f})")
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()

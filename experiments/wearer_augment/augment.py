"""Does training on clips with simulated wearer motion (both classes) stop the motion model from calling a
walking body camera a fight, without losing what it has across sources?

    .venv/bin/python experiments/wearer_augment/augment.py ../shared/data/fight-surv ../shared/data/hockey

Features of every clip of both sources three ways: clean, with the bench's wearer motion (triage/wearer_motion.py,
seeded by the clip's name: what ``make bench``'s body-worn row tests on) and with another draw of the same
simulator (seeded by "train|" + name: what a model would be trained on). Cached in the training-feature cache.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def lgb_train(X, y):
    import lightgbm as lgb

    from custodes.triage.train import PARAMS, ROUNDS
    return lgb.train(PARAMS, lgb.Dataset(X, y), ROUNDS)


def main() -> int:
    from sklearn.model_selection import StratifiedGroupKFold

    from custodes.triage.dataset import cached_dataset, moved_features  # seed "" = the bench's draw (cached)
    from custodes.triage.metrics import roc_auc

    parts = [cached_dataset(Path(p), 2) for p in sys.argv[1:]]
    feats = {}
    for d in parts:
        feats[d.source] = {"clean": d.X, "bench": moved_features(d, ""), "aug": moved_features(d, "train|")}
        print(d.source, "features ready", flush=True)

    def row(p_clean, p_bench, y):
        return {"auc_clean": round(roc_auc(y, p_clean), 3), "auc_bodyworn": round(roc_auc(y, p_bench), 3),
                "calm_mean_clean": round(float(p_clean[y == 0].mean()), 3),
                "calm_mean_bodyworn": round(float(p_bench[y == 0].mean()), 3),
                "violent_mean_bodyworn": round(float(p_bench[y == 1].mean()), 3)}

    out: dict = {}
    for d in parts:  # within a source, grouped 5-fold as the robustness bench
        f = feats[d.source]
        for mode in ("clean", "clean+aug"):
            pc, pb = np.zeros(len(d.y)), np.zeros(len(d.y))
            for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(f["clean"], d.y, d.groups):
                X, y = f["clean"][tr], d.y[tr]
                if mode == "clean+aug":
                    X, y = np.vstack([X, f["aug"][tr]]), np.concatenate([y, y])
                m = lgb_train(X, y)
                pc[te], pb[te] = m.predict(f["clean"][te]), m.predict(f["bench"][te])
            out[f"grouped CV {d.source}, trained {mode}"] = row(pc, pb, d.y)
            print(json.dumps({f"grouped CV {d.source}, trained {mode}": out[f"grouped CV {d.source}, trained {mode}"]}),
                  flush=True)
    for a in parts:
        for b in parts:
            if a is b:
                continue
            for mode in ("clean", "clean+aug"):
                X, y = feats[a.source]["clean"], a.y
                if mode == "clean+aug":
                    X, y = np.vstack([X, feats[a.source]["aug"]]), np.concatenate([y, y])
                m = lgb_train(X, y)
                key = f"{a.source} -> {b.source}, trained {mode}"
                out[key] = row(m.predict(feats[b.source]["clean"]), m.predict(feats[b.source]["bench"]), b.y)
                print(json.dumps({key: out[key]}), flush=True)
    Path(__file__).with_name("results.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

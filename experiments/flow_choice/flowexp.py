"""Which optical flow: LightGBM's grouped CV on fight-surv with the motion features computed from each.

    .venv/bin/python experiments/flow_choice/flowexp.py farneback   # or fast, ultrafast, medium (DIS),
                                                                     # farn_it1, farn_lv1, farn_lv1_it1

The variant replaces cv2.calcOpticalFlowFarneback inside the worker processes, so everything else in
analyze.motion (smoothing, statistics, cells) stays as shipped. Results: README.md beside this file.
"""
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("FIGHT_SURV", "../shared/data/fight-surv"))

def init(variant):
    import cv2
    cv2.setNumThreads(1)
    if variant == "farneback":
        return
    if variant.startswith("farn_"):
        import re
        lv = int(re.search(r"lv(\d)", variant).group(1)) if "lv" in variant else 2
        it = int(re.search(r"it(\d)", variant).group(1)) if "it" in variant else 2
        orig = cv2.calcOpticalFlowFarneback
        def farneback(prev, cur, flow, ps, _levels, w, _iterations, *rest):  # the variant's levels, iterations
            return orig(prev, cur, flow, ps, lv, w, it, *rest)

        cv2.calcOpticalFlowFarneback = farneback
        return
    preset = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
              "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[variant]
    dis = cv2.DISOpticalFlow_create(preset)
    cv2.calcOpticalFlowFarneback = lambda prev, cur, flow, *a: dis.calc(prev, cur, None)

def track(path):
    from custodes.triage.dataset import track_clip
    return track_clip(path)

if __name__ == "__main__":
    variant = sys.argv[1]
    from custodes.triage.dataset import clip_files, source_groups
    from custodes.triage.train import grouped_cv
    files, labels = clip_files(DATA)
    t = time.time()
    with ProcessPoolExecutor(2, initializer=init, initargs=(variant,)) as ex:
        tracked = list(ex.map(track, files, chunksize=4))
    el = time.time() - t
    keep = [i for i, (f, c) in enumerate(tracked) if f is not None and len(c) >= 2]
    X = np.stack([tracked[i][0] for i in keep])
    y = np.asarray([labels[i] for i in keep])
    groups = source_groups(DATA, [Path(files[i]).stem for i in keep])
    cv = grouped_cv(X, y, groups)
    print(variant, f"extract {el:.0f}s", {k: cv[k] for k in ("roc_auc", "roc_auc_std", "average_precision")},
          flush=True)

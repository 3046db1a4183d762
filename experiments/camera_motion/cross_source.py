"""Experiment: which part of motion-7's camera-motion step moves the cross-source AUC (issue 24).

``MODE=motion-6|shift|affine|motion-7 .venv/bin/python experiments/camera_motion/cross_source.py`` measures the
motion features of fight-surv and hockey with the pass patched to that mode, then the cross-source protocol
of ``bench/cross_source_bench.py``'s first row (``triage.generalise.protocol``, motion LightGBM, shuffle 0):

- ``motion-6``: no shift, the median flow subtracted, the frame difference unaligned (the motion-6 pass);
- ``shift``: the tile-confirmed phase-correlation shift, then the median and the difference of the shifted pair;
- ``affine``: no shift, the affine camera field subtracted and the difference taken against the warped frame;
- ``motion-7``: both, as shipped;
- ``motion-7-minN``: ``motion-7`` with the shift applied only when it is over N px;
- ``shift-int`` and ``motion-7-int``: ``shift`` and ``motion-7`` with the shift rounded to whole pixels (a
  copy, not an interpolation: a shifted frame is as sharp as one that was not).

Then the body-worn row of ``bench/bodyworn_bench.py`` in small: LightGBM trained on clean fight-surv folds
(grouped by source video), scored on the held-out clips with all of ``triage/wearer_motion.py``'s wearer motion:
AUC, calm clips' mean p and the share of calm clips at p >= 0.5.

The patch is at module level so that the worker processes, which import this script again, run it too.
Features are kept in /tmp/camera-motion-cross/.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from custodes.analyze import motion  # noqa: E402

MODE = os.environ.get("MODE", "motion-7")
_IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float64)


def _median_field(flow_x: np.ndarray, flow_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mx = np.full(flow_x.shape, np.median(flow_x[::4, ::4]), np.float32)
    my = np.full(flow_y.shape, np.median(flow_y[::4, ::4]), np.float32)
    return mx, my, _IDENTITY


if MODE in ("motion-6", "affine"):
    motion.frame_shift = lambda prev, cur: (0.0, 0.0)
if MODE in ("motion-6", "shift", "shift-int"):
    motion.camera_field = _median_field
if MODE.startswith("motion-7-min"):  # the shift applied only from this many px (motion-7-min2: 2 px)
    motion.SHIFT_MIN_PX = float(MODE.removeprefix("motion-7-min"))
if MODE.endswith("-int"):
    _shift = motion.frame_shift
    motion.frame_shift = lambda prev, cur: tuple(float(round(x)) for x in _shift(prev, cur))  # type: ignore


def _moved(path: str) -> np.ndarray | None:
    import robustness_bench

    return robustness_bench._degraded_features(path, robustness_bench.BODYWORN)[0]


def bodyworn_row(fs: object, out: Path) -> dict[str, float]:
    from sklearn.model_selection import StratifiedGroupKFold

    from custodes.engine.local import worker_pool
    from custodes.triage import generalise
    from custodes.triage.metrics import roc_auc

    cache = out / f"{MODE}-fight-surv-moved.npz"
    if cache.exists():
        moved = np.load(cache)["X"]
    else:
        with worker_pool(int(os.environ.get("WORKERS", "2"))) as ex:
            moved = np.stack(list(ex.map(_moved, fs.files, chunksize=4)))  # type: ignore[attr-defined]
        np.savez(cache, X=moved)
    y, p = fs.y, np.zeros(len(fs.y))  # type: ignore[attr-defined]
    for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(fs.X, y, fs.groups):  # type: ignore
        p[te] = generalise.lightgbm_scores(fs.X[tr], y[tr], moved[te])  # type: ignore[attr-defined]
    calm = p[y == 0]
    return {"bodyworn AUC": round(roc_auc(y, p), 3), "calm mean p": round(float(calm.mean()), 3),
            "calm >= 0.5": round(float((calm >= 0.5).mean()), 3)}


def main() -> None:
    from custodes.triage import generalise
    from custodes.triage.dataset import Dataset, load_dataset

    data = Path(__file__).resolve().parents[3] / "shared" / "data"
    out = Path("/tmp/camera-motion-cross")
    out.mkdir(exist_ok=True)
    parts = []
    for source in ("fight-surv", "hockey"):
        cache = out / f"{MODE}-{source}.npz"
        if cache.exists():
            z = np.load(cache)
            parts.append(Dataset(X=z["X"], cells=[], y=z["y"], groups=z["groups"].tolist(), files=z["files"].tolist(),
                                 source=source))
            continue
        d = load_dataset(data / source, workers=int(os.environ.get("WORKERS", "2")))
        np.savez(cache, X=d.X, y=d.y, groups=np.asarray(d.groups), files=np.asarray(d.files))
        parts.append(d)
    rows = generalise.protocol(parts[0], parts[1], shuffles=(0,))
    print(json.dumps({"mode": MODE, **{k: v["roc_auc"] for k, v in rows.items()}, **bodyworn_row(parts[0], out)}),
          flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0)

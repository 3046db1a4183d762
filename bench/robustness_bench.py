"""How the violence model holds up when the footage is worse than its training clips.

The model is trained on clean fight-surv clips. Here each held-out fold is shown degraded the way
detention footage often is — a low-resolution source, sensor noise (night), underexposure, heavy
compression, a 10 fps camera — and scored by the model trained on the other folds' *clean* clips
(grouped by source video, as in ``make bench``'s cross-validation). The drop from the clean AUC is what
a user should expect on such footage before any retraining.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from custodes.analyze.motion import FPS, SIZE, clip_features
from custodes.engine.local import worker_context
from custodes.media.decode import gray_frames

Frames = Iterator[tuple[float, np.ndarray]]


def _low_res(frames: Frames) -> Frames:  # an 80x60 source (a distant, old camera), scaled up as the pipeline would
    for t, f in frames:
        yield t, cv2.resize(cv2.resize(f, (80, 60), interpolation=cv2.INTER_AREA), SIZE, interpolation=cv2.INTER_LINEAR)


def _noisy(frames: Frames, sigma: float = 8.0) -> Frames:  # sensor noise of a night camera
    rng = np.random.default_rng(0)
    for t, f in frames:
        yield t, np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8)


def _dark(frames: Frames) -> Frames:  # underexposed: a quarter of the light, quantised, a little noise
    rng = np.random.default_rng(1)
    for t, f in frames:
        yield t, np.clip(np.round(f * 0.25) + rng.normal(0, 2.0, f.shape), 0, 255).astype(np.uint8)


def _compressed(frames: Frames) -> Frames:  # blocky, smeared: JPEG quality 15 on every frame
    for t, f in frames:
        ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 15])
        yield t, cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


CONDITIONS: dict[str, Callable[[Frames], Frames]] = {
    "low resolution (80x60 source)": _low_res, "sensor noise (sigma 8)": _noisy, "underexposed (x0.25)": _dark,
    "heavy compression (JPEG q15)": _compressed,
}
TEN_FPS = "10 fps camera"


def _features(args: tuple[str, str]) -> np.ndarray | None:
    path, condition = args
    cv2.setNumThreads(1)
    if condition == TEN_FPS:  # frames come 0.1 s apart, as from a 10 fps source
        frames: Frames = gray_frames(Path(path), fps=10.0, size=SIZE)
    else:
        frames = gray_frames(Path(path), fps=FPS, size=SIZE)
        if condition:
            frames = CONDITIONS[condition](frames)
    return clip_features(frames)


def run(data: Path, workers: int = 2) -> dict:
    import lightgbm as lgb
    from sklearn.model_selection import StratifiedGroupKFold

    from custodes.triage.metrics import roc_auc
    from custodes.triage.train import PARAMS, ROUNDS, clip_files, source_groups

    files, labels = clip_files(data)
    y = np.asarray(labels)
    groups = source_groups(data, [Path(f).stem for f in files])
    conditions = ["", *CONDITIONS, TEN_FPS]
    feats: dict[str, np.ndarray] = {}
    with ProcessPoolExecutor(workers, mp_context=worker_context()) as ex:
        for c in conditions:
            rows = list(ex.map(_features, [(f, c) for f in files], chunksize=4))
            width = next(len(r) for r in rows if r is not None)
            feats[c] = np.stack([r if r is not None else np.full(width, np.nan, np.float32) for r in rows])
    pred = {c: np.zeros(len(y)) for c in conditions}
    for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(feats[""], y, groups):
        model = lgb.train(PARAMS, lgb.Dataset(feats[""][tr], y[tr]), ROUNDS)  # trained on clean clips only
        for c in conditions:
            pred[c][te] = model.predict(feats[c][te])
    return {"bench": "violence model on degraded footage (trained clean, tested degraded; grouped 5-fold)",
            "roc_auc": {(c or "clean"): round(roc_auc(y, pred[c]), 3) for c in conditions}}

"""A second look by a pretrained video network at the windows that decide the queue (issue 24).

The motion models (LightGBM and the cell CNN) score every window of a video. MC3-18, pretrained on
Kinetics-400 (``analyze.video_net``), carries across sources better than they do, but costs ~0.5 CPU-s a
window: too much for every window, since the full pass must stay within twice a plain decode. So it looks
again at the windows that rank a video in the queue: its best window, and one more for every
``CHECK_EVERY_S`` (10 minutes) of footage analysed, best first, none overlapping one already checked.

A logistic head on MC3-18's 512 pooled features (``MODEL_NAME``, trained on fight-surv + hockey by
``python -m custodes.triage.video_check --train``) gives ``p_video``. The window's visual score becomes
``max(p_motion, (p_motion + p_video) / 2)``: the video network can raise a window the motion models
underrate, and does not lower one. Measured on clip scores across sources (experiments/video_check): the
plain mean ranks best (fight-surv -> hockey 0.928 against motion's 0.895), raising only comes close (0.917), and
lowering is where the video network is least sure of itself: the synthetic struggles of the demo and of the
tests, which MC3-18 has never seen the like of, would fall below the segment threshold.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_DIR = Path(__file__).parent / "models"
MODEL_NAME = "violence-mc3-head-1"
# one check for the best window of every video, and one more per this much footage analysed: 0.5 CPU-s a
# check (and 1.2 s once per process to build the network), against ~5 s of plain decoding for 10 minutes of
# 720p; the full pass of the throughput bench (1 h of 720p, 10 min of it analysed) was at 2.0x a plain
# decode with a check per 5 minutes, its target
CHECK_EVERY_S = 600.0
# windows below this motion score are not worth a check (their best case is a raise to about its mean)
CHECK_FROM = 0.05
REASON_FROM = 0.5


class VideoCheckError(Exception):
    """A clear sentence: what failed, and what it means for the scores."""


@dataclass(frozen=True)
class Head:
    """A standardised logistic regression on MC3-18's pooled features."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        z = ((np.atleast_2d(features) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


@functools.lru_cache(maxsize=1)
def load_head() -> Head:
    from custodes.analyze import video_net

    try:
        meta = json.loads((MODEL_DIR / f"{MODEL_NAME}.json").read_text())
    except (OSError, ValueError) as exc:
        raise VideoCheckError(f"the video network's head {MODEL_NAME}.json cannot be read ({exc}); windows keep "
                              "their motion score") from None
    if meta.get("network") != video_net.VERSION:
        raise VideoCheckError(f"the head {MODEL_NAME} was trained on {meta.get('network')}, not on "
                              f"{video_net.VERSION}; windows keep their motion score")
    return Head(np.asarray(meta["mean"], np.float64), np.asarray(meta["scale"], np.float64),
                np.asarray(meta["coef"], np.float64), float(meta["intercept"]))


def budget(analysed_s: float) -> int:
    """How many windows of a video with ``analysed_s`` seconds analysed get a check."""
    return 1 + int(max(0.0, analysed_s) // CHECK_EVERY_S)


def pick(windows: Sequence[dict[str, Any]], analysed_s: float) -> list[int]:
    """Indices of the windows to check: highest ``p_visual`` first, none overlapping one already picked,
    up to ``budget``; the best window always (it is what ranks the video)."""
    order = sorted(range(len(windows)), key=lambda i: -windows[i]["p_visual"])
    most = budget(analysed_s)
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= most:
            break
        w = windows[i]
        if chosen and w["p_visual"] < CHECK_FROM:
            break
        if any(w["start"] < windows[j]["end"] and windows[j]["start"] < w["end"] for j in chosen):
            continue
        chosen.append(i)
    return chosen


def fused(p_motion: float, p_video: float) -> float:
    return max(p_motion, (p_motion + p_video) / 2)


def check(path: Any, windows: list[dict[str, Any]], analysed_s: float) -> str | None:
    """Score the picked windows of one video with the video network and fuse their visual score (in place:
    ``p_motion`` keeps the motion models' score, ``p_video`` the network's, ``p_visual`` the fused one).
    Returns None, or a sentence on why no window was checked (the scores then stay the motion models')."""
    from custodes.analyze import video_net
    from custodes.media.decode import DecodeError

    chosen = pick(windows, analysed_s)
    if not chosen:
        return None
    try:
        head = load_head()
        video_net.session()
    except (VideoCheckError, video_net.VideoNetError) as exc:
        return f"no video-network check: {exc}"
    for i in chosen:
        w = windows[i]
        try:
            _, feats = video_net.score_clip(path, w["start"], w["end"])
        except (DecodeError, video_net.VideoNetError) as exc:
            return f"video-network check stopped at {w['start']:.1f}s: {exc}"
        p_video = float(head.predict(feats)[0])
        w["p_motion"], w["p_video"] = w["p_visual"], p_video
        w["p_visual"] = fused(w["p_visual"], p_video)
    return None


def reason(w: dict[str, Any]) -> dict[str, Any] | None:
    """The queue's reason for a checked window whose video network score is high."""
    p = w.get("p_video")
    if p is None or p < REASON_FROM:
        return None
    return {"signal": "video_net", "value": round(p, 3),
            "text": f"a video network pretrained on human actions also sees a fight (p={p:.2f})"}


# --- training ------------------------------------------------------------------------------------------------

def train(features: np.ndarray, y: np.ndarray, c: float = 0.1) -> Head:
    """The head as ``triage.generalise.logistic_scores`` fits it (standardised, L2, C = ``c``)."""
    from sklearn.linear_model import LogisticRegression

    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale == 0] = 1.0  # as sklearn's StandardScaler
    model = LogisticRegression(C=c, max_iter=2000).fit((features - mean) / scale, y)
    return Head(mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]))


def _embed_clip(args: tuple[str, str | None]) -> tuple[float, np.ndarray]:
    from custodes.analyze import video_net
    from custodes.triage.dataset import SOURCES

    path, source = args
    frames = video_net.frames_for(path)
    mask = SOURCES[source].mask if source else None
    if mask is not None:  # the source's shortcut (hockey's watermark corner) painted out, as for the motion pass
        frames = [f for _, f in mask((0.0, f) for f in frames)]
    p, feats = video_net.embed(video_net.clip_tensor(frames)[None])
    return float(p[0]), feats[0]


def clip_embeddings(files: list[str], workers: int = 2, source: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """MC3-18's fight probability and 512 pooled features of each whole clip (16 frames), with ``source``'s
    mask applied when it has one; cached under the network's version, the mask and every clip's path, size
    and modification time (``triage.dataset.cache_path``; ~1-1.6 CPU-s a clip)."""
    from custodes.analyze import video_net
    from custodes.engine.local import worker_pool
    from custodes.triage.dataset import SOURCES, cache_path, save_cache

    masked = bool(source and SOURCES[source].mask)
    path = cache_path(video_net.VERSION + (f"-masked-{source}" if masked else ""), files)
    if path.exists():
        z = np.load(path)
        return z["p_fight"], z["features"]
    with worker_pool(workers) as ex:
        rows = list(ex.map(_embed_clip, [(f, source if masked else None) for f in files], chunksize=4))
    p, feats = np.asarray([r[0] for r in rows]), np.stack([r[1] for r in rows]).astype(np.float32)
    save_cache(path, p_fight=p, features=feats)
    return p, feats


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m custodes.triage.video_check --train DATA...``: fit the head on the MC3-18 features of the
    clips of each training source (``fight/`` and ``noFight/``, each source's mask applied) and write it."""
    import argparse
    import datetime
    import hashlib

    from custodes.analyze import video_net
    from custodes.triage.dataset import clip_files, source_of

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--train", nargs="+", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    feats, labels, names, digest = [], [], [], hashlib.sha256()
    for data in args.train:
        files, y = clip_files(data)
        source = source_of(data)
        feats.append(clip_embeddings(files, args.workers, source.name)[1])
        labels.append(np.asarray(y))
        names.append(source.citation)
        for p in files:
            digest.update(Path(p).name.encode())
    X, Y = np.vstack(feats).astype(np.float64), np.concatenate(labels)
    head = train(X, Y)
    meta = {"version": MODEL_NAME, "network": video_net.VERSION,
            "weights_sha256": video_net.weights_sha256(video_net.default_weights()),
            "trained": datetime.date.today().isoformat(), "clips": int(len(Y)), "positives": int(Y.sum()),
            "data": " + ".join(names), "clip_names_sha256": digest.hexdigest(), "C": 0.1,
            "masks": "hockey: the watermark corner painted black (triage.dataset.hockey_mask)",
            "mean": head.mean.tolist(), "scale": head.scale.tolist(), "coef": head.coef.tolist(),
            "intercept": head.intercept}
    (MODEL_DIR / f"{MODEL_NAME}.json").write_text(json.dumps(meta))
    print(f"{MODEL_NAME}: {len(Y)} clips ({meta['data']}); written to {MODEL_DIR}")
    return 0 if math.isfinite(head.intercept) else 1


if __name__ == "__main__":
    raise SystemExit(main())

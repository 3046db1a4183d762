"""A small 3-D CNN over the motion cell grids, run with onnxruntime (no torch at triage time).

``analyze.motion`` keeps, per frame pair, a 5×12×16 grid: mean flow x and y, magnitude, change of flow and
share of pixels moving more than 1 px in each 15-px cell. The hand-made cell features summarise that grid
with ratios chosen by hand; the CNN learns its own from the same grid (three 3-D convolutions, global max
and mean pooling, a linear head). Alone it ranks fight-surv worse than LightGBM (grouped CV 0.86 against
0.89), but it errs on other clips: the mean of the two probabilities is the visual score (0.90-0.91).

The network is fully convolutional in time, so a span is run once, in chunks with enough context either side
that chunking changes nothing, and each 2-s window pools its own slice of the result: the cost is the
span's, not two overlapping windows'. Every pass also sees the span mirrored left to right (the model was
trained with flips); the score is the mean over ``MODELS`` trained seeds and both views.

Trained by ``python -m custodes.triage.train_cnn`` (needs the ``cnn-train`` extra: torch); shipped as ONNX
(the convolutions, per time step max and mean over the grid) and an ``.npz`` head (the linear layer).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custodes.analyze import motion

MODEL_DIR = Path(__file__).parent / "models"
MODEL_NAME = "violence-motion-7-cnn-1"
# a clip shorter than this many frame pairs is repeated up to it (the temporal pooling needs two)
MIN_PAIRS = 4
# pairs per onnxruntime call (bounded memory on any span) and the context fed either side of a chunk: the
# receptive field of one output step is ±6 pairs, so with 8 a chunked span scores exactly as a whole one.
# Both even: one output step pools two pairs, and chunks must start on a step boundary
CHUNK_PAIRS = 600
CONTEXT_PAIRS = 8
TIME_STRIDE = 2  # pairs per output step
# mirror = flip left-right and negate horizontal flow
_MIRROR_SIGN = np.array([-1, 1, 1, 1, 1], dtype=np.float32).reshape(5, 1, 1, 1)


def normalise(cells: np.ndarray) -> np.ndarray:
    """(pairs, 5, rows, cols) cell statistics → (5, pairs, rows, cols) network input: signed log1p of the
    flow channels (flow spans three orders of magnitude; the share of moving pixels is already 0-1)."""
    x = np.asarray(cells, dtype=np.float32).copy()
    x[:, :4] = np.sign(x[:, :4]) * np.log1p(np.abs(x[:, :4]))
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


def with_mirror(x: np.ndarray) -> np.ndarray:
    """(5, T, H, W) → (2, 5, T, H, W): the input and its left-right mirror."""
    return np.stack([x, x[..., ::-1] * _MIRROR_SIGN])


@dataclass
class StepStats:
    """Per output step (two frame pairs) of a span: max and mean of the last feature maps over the grid,
    (steps, views, channels) each, views = models × (plain, mirrored)."""

    max: np.ndarray
    mean: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.max.shape[0])


class CellCNN:
    def __init__(self, session: Any, head_w: np.ndarray, head_b: np.ndarray, meta: dict[str, Any]):
        self.session = session
        self.head_w = head_w.astype(np.float64)  # (models, 2 * channels): [max-pooled, mean-pooled]
        self.head_b = head_b.astype(np.float64)  # (models,)
        self.meta = meta
        self.models = int(head_w.shape[0])
        self.channels = int(head_w.shape[1]) // 2

    @classmethod
    def from_files(cls, base: Path) -> CellCNN:
        import onnxruntime as ort

        meta = json.loads(base.with_suffix(".json").read_text())
        if meta.get("motion_version") != motion.VERSION:
            raise RuntimeError(f"model {base.name} was trained on {meta.get('motion_version')} cells, "
                               f"not {motion.VERSION}")
        opts = ort.SessionOptions()
        # triage runs one worker process per core: a thread pool per worker would only oversubscribe
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(base.with_suffix(".onnx")), opts, providers=["CPUExecutionProvider"])
        head = np.load(base.with_suffix(".npz"))
        return cls(session, head["weight"], head["bias"], meta)

    def step_stats(self, cells: Sequence[np.ndarray]) -> StepStats:
        """Run the convolutions over a span's cells, one (5, rows, cols) grid per frame pair, chunk by chunk
        (the grids are normalised a chunk at a time: an hour-long span is not copied whole)."""
        t = len(cells)
        if t == 0:
            raise ValueError("no frame pairs")
        if t < MIN_PAIRS:  # as in training: a short clip is looped
            cells = [cells[i % t] for i in range(MIN_PAIRS)]
            t = MIN_PAIRS
        usable = t - t % TIME_STRIDE  # the temporal pooling drops an odd last pair
        maxes, means = [], []
        for s in range(0, usable, CHUNK_PAIRS):
            e = min(s + CHUNK_PAIRS, usable)
            a, b = max(0, s - CONTEXT_PAIRS), min(t, e + CONTEXT_PAIRS)
            mx, mn = self.session.run(None, {"cells": with_mirror(normalise(np.stack(cells[a:b])))})
            first = (s - a) // TIME_STRIDE
            steps = (e - s) // TIME_STRIDE
            # (views, channels, steps) → (steps, views, channels)
            maxes.append(mx[..., first:first + steps].transpose(2, 0, 1))
            means.append(mn[..., first:first + steps].transpose(2, 0, 1))
        return StepStats(np.concatenate(maxes), np.concatenate(means))

    def window_prob(self, stats: StepStats, i0: int, i1: int) -> float:
        """Fight probability of the frame pairs [i0, i1) of the span ``stats`` came from."""
        j0 = min(i0 // TIME_STRIDE, stats.steps - 1)
        j1 = min(max(j0 + 1, -(-i1 // TIME_STRIDE)), stats.steps)
        mx = stats.max[j0:j1].max(0)  # (views, channels)
        mean = stats.mean[j0:j1].mean(0)  # every step pools the same grid: the mean of means is the mean
        feats = np.concatenate([mx, mean], axis=1).reshape(self.models, 2, 2 * self.channels)
        logits = np.einsum("mvc,mc->mv", feats.astype(np.float64), self.head_w) + self.head_b[:, None]
        return float(np.mean(1.0 / (1.0 + np.exp(-logits))))

    def clip_prob(self, cells: Sequence[np.ndarray]) -> float:
        """The whole clip as one window (how the fight-surv clips are scored in training)."""
        stats = self.step_stats(cells)
        return self.window_prob(stats, 0, len(cells))


@functools.lru_cache(maxsize=1)
def load() -> CellCNN:
    return CellCNN.from_files(MODEL_DIR / f"{MODEL_NAME}.onnx")

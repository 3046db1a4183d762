"""``custodes eval-triage DIR``: how well the triage ranks labelled clips. Writes nothing.

DIR holds ``violent/`` and ``nonviolent/`` (any depth, any container, codec,
resolution or length). Each clip is analysed exactly as ``custodes triage``
would analyse a case video, and ranked by its peak window score.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from custodes.engine.local import worker_pool
from custodes.media.probe import MEDIA_EXTENSIONS
from custodes.triage.metrics import average_precision, recall_at_fraction, roc_auc
from custodes.triage.runner import _analyze, _worker_init
from custodes.triage.score import TRIAGE_VERSION


class EvalError(Exception):
    pass


def collect(directory: Path) -> list[tuple[Path, int]]:
    out = []
    for sub, label in (("violent", 1), ("nonviolent", 0)):
        d = directory / sub
        if not d.is_dir():
            raise EvalError(f"{directory} must contain '{sub}/' (found: "
                            f"{', '.join(sorted(p.name for p in directory.iterdir() if p.is_dir())) or 'nothing'})")
        out += [(p, label) for p in sorted(d.rglob("*")) if p.is_file() and not p.is_symlink()
                and p.suffix.lower() in MEDIA_EXTENSIONS]
    if not any(label for _, label in out) or all(label for _, label in out):
        raise EvalError("need at least one clip in each of violent/ and nonviolent/")
    return out


def evaluate(directory: Path, workers: int = 2, progress: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    clips = collect(directory)
    with worker_pool(max(1, workers), _worker_init) as ex:
        results = []
        for r in ex.map(_analyze, [str(p) for p, _ in clips], chunksize=2):
            results.append(r)
            progress(1)
    scored = [(p, y, r) for (p, y), r in zip(clips, results, strict=True) if r.ok]
    failed = [{"file": str(p.relative_to(directory)), "label": "violent" if y else "nonviolent", "reason": r.error}
              for (p, y), r in zip(clips, results, strict=True) if not r.ok]
    y = np.array([lab for _, lab, _ in scored])
    s = np.array([r.peak for _, _, r in scored])
    doc: dict[str, Any] = {
        "directory": str(directory), "triage_version": TRIAGE_VERSION,
        "clips": len(clips), "scored": len(scored), "violent": int(y.sum()), "nonviolent": int((1 - y).sum()),
        "roc_auc": roc_auc(y, s) if len(scored) else None,
        "average_precision": average_precision(y, s) if len(scored) else None,
        "recall_at_10pct_reviewed": recall_at_fraction(y, s, 0.10) if len(scored) else None,
        "failed": failed,
        "scores": [{"file": str(p.relative_to(directory)), "label": "violent" if lab else "nonviolent",
                    "score": round(r.peak, 4)} for p, lab, r in scored],
    }
    # failed clips cannot be ranked: count them as missed (violent) or as correctly low (nonviolent)
    if failed:
        doc["note"] = f"{len(failed)} clip(s) could not be analysed and are excluded from the metrics"
    return doc

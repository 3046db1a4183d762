"""How the violence models carry to footage from a source they never saw (issue 24's protocol).

In-source cross-validation measures a model on clips like its training clips; a case brings footage from a
prison no model here has seen. So the models are measured the way cases test them: trained on one source
and scored on the other, both ways; beside that, grouped CV inside each source and on both together, with
each source's AUC of the joint CV reported apart (one source's easy clips must not hide the other's).

Every figure carries its calibration on that source (expected calibration error over ten bins, mean score
of each class) and how much of the ranking's top ties (``saturation``): a queue can only order what its
scores tell apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from custodes.triage.dataset import Dataset, joined
from custodes.triage.metrics import average_precision, roc_auc
from custodes.triage.train import CV_SEEDS, PARAMS, ROUNDS

# a score this close to 0 or 1 says nothing more about order: the top of a queue that sits there is a tie
SATURATED = 0.98


def lightgbm_scores(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray,
                    seeds: tuple[int, ...] = CV_SEEDS, temperature: float = 1.0) -> np.ndarray:
    """Probability from the mean margin of LightGBM models (the shipped parameters, one per seed) trained on
    ``Xtr``, tempered as the shipped model is (p = sigmoid(margin / temperature))."""
    import lightgbm as lgb

    margin = np.mean([lgb.train({**PARAMS, "seed": s}, lgb.Dataset(Xtr, ytr), ROUNDS).predict(Xte, raw_score=True)
                      for s in seeds], axis=0)
    return 1.0 / (1.0 + np.exp(-margin / temperature))


def logistic_scores(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, c: float = 0.1) -> np.ndarray:
    """A standardised L2 logistic regression (for embeddings such as MC3-18's 512 pooled features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    return model.fit(Xtr, ytr).predict_proba(Xte)[:, 1]


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Expected calibration error (equal-width bins) and each class's mean score."""
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), 0, 1)
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).mean()
              for b in range(bins) if np.any(which == b))
    return {"ece": round(float(ece), 3), "mean_score_violent": round(float(p[y == 1].mean()), 3),
            "mean_score_calm": round(float(p[y == 0].mean()), 3)}


def saturation(p: np.ndarray) -> dict[str, Any]:
    """Share of clips scored at or above ``SATURATED``, and how many distinct scores (to 3 decimals, as the
    queue shows them) the top tenth has: ties there are clips the queue cannot order."""
    p = np.asarray(p, float)
    top = np.sort(p)[::-1][: max(1, int(np.ceil(0.1 * len(p))))]
    return {"share_at_or_above_0.98": round(float((p >= SATURATED).mean()), 3),
            "top_tenth": len(top), "top_tenth_distinct_shown": len(set(np.round(top, 3)))}


def figures(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    return {"roc_auc": round(roc_auc(y, p), 3), "average_precision": round(average_precision(y, p), 3),
            **calibration(y, p), **saturation(p)}


Scorer = Callable[[Dataset, np.ndarray, Dataset, np.ndarray], np.ndarray]


def motion_lightgbm(train: Dataset, tr: np.ndarray, test: Dataset, te: np.ndarray) -> np.ndarray:
    return lightgbm_scores(train.X[tr], train.y[tr], test.X[te])


def tempered(temperature: float) -> Scorer:
    """``motion_lightgbm`` tempered like the shipped model (``triage.train.fit_temperature``), trained as the
    shipped model is on the training clips' moved copies too where the set has them (``with_wearer_motion``)."""
    def scorer(train: Dataset, tr: np.ndarray, test: Dataset, te: np.ndarray) -> np.ndarray:
        return lightgbm_scores(*train.training_rows(tr), test.X[te], temperature=temperature)
    return scorer


def grouped_oof(data: Dataset, scorer: Scorer, shuffle: int = 0) -> np.ndarray:
    """Out-of-fold scores of 5-fold CV grouped by source video (``data.groups``)."""
    from sklearn.model_selection import StratifiedGroupKFold

    pred = np.zeros(len(data.y))
    for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=shuffle).split(data.X, data.y, data.groups):
        pred[te] = scorer(data, tr, data, te)
    return pred


def protocol(a: Dataset, b: Dataset, scorer: Scorer = motion_lightgbm, shuffles: tuple[int, ...] = (0, 1)
             ) -> dict[str, Any]:
    """Trained on ``a`` scored on ``b``, the reverse, grouped CV in each, and grouped CV on both with each
    source's figures apart. CV figures are the mean of ``shuffles`` (AUC and AP), calibration of shuffle 0."""
    out: dict[str, Any] = {}
    for src, dst in ((a, b), (b, a)):
        out[f"{src.source} -> {dst.source}"] = figures(
            dst.y, scorer(src, np.arange(len(src.y)), dst, np.arange(len(dst.y))))
    both, which = joined([a, b])
    for name, d in ((a.source, a), (b.source, b), ("both", both)):
        preds = [grouped_oof(d, scorer, s) for s in shuffles]
        row = figures(d.y, preds[0])
        row["roc_auc"] = round(float(np.mean([roc_auc(d.y, p) for p in preds])), 3)
        row["average_precision"] = round(float(np.mean([average_precision(d.y, p) for p in preds])), 3)
        if name == "both":
            for k, part in enumerate((a, b)):
                row[f"{part.source}: roc_auc"] = round(float(np.mean([roc_auc(d.y[which == k], p[which == k])
                                                                      for p in preds])), 3)
        out[f"grouped CV {name}"] = row
    return out

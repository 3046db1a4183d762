"""Triage across sources: trained on fight-surv, scored on hockey, the reverse, and grouped CV (issue 24).

``CUSTODES_BENCH_ONLY=cross-source make bench`` runs it alone. Each model family goes through the same
protocol (``triage.generalise.protocol``), so rows compare:

- motion features + LightGBM (the shipped ``violence-motion-N-lgb`` recipe, retrained per split), on the
  clips as they are and, as shipped, on them and their copies with simulated wearer motion
  (``dataset.with_wearer_motion``; the clips scored are always the clean ones);
- MC3-18's pooled 512 features (Kinetics-400 pretrained, fine-tuned on fight-surv by its authors) + a
  logistic head trained per split; its own fine-tuned output scored as it ships (fight-surv figures with it
  are contaminated: it saw every fight-surv clip in training, so only its hockey figures count);
- the mean of the motion and MC3 scores;
- MC3 as a re-ranker: the motion model's top RERANK_SHARE of clips reordered by the mean of both scores, the
  rest left as the motion model ranks them (what triage can afford: MC3 costs ~1-3x real time per core, so
  it can score the best windows of a case, not every window).

Motion and MC3 features are measured once per source and cached (``triage.dataset.cache_dir``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# the share of clips, highest motion scores first, that the MC3 re-ranker scores again
RERANK_SHARE = 0.2
DATA = Path(os.environ.get("CUSTODES_DATA", REPO.parent / "shared" / "data"))


def run(data: Path = DATA, workers: int = 2) -> dict[str, Any]:
    from custodes.triage import generalise
    from custodes.triage.dataset import cached_dataset, with_wearer_motion

    fs = cached_dataset(data / "fight-surv", workers)
    hockey = cached_dataset(data / "hockey", workers)
    fs_moved, hockey_moved = with_wearer_motion(fs, workers), with_wearer_motion(hockey, workers)
    out: dict[str, Any] = {
        "bench": "violence models across sources (fight-surv CCTV <-> hockey broadcast; clip scores)",
        "clips": {"fight-surv": [int(len(fs.y)), int(fs.y.sum())], "hockey": [int(len(hockey.y)), int(hockey.y.sum())]},
        "note": "hockey has no known grouping by game: its in-source CV is optimistic; the hockeyfights.com "
                "watermark corner is painted out on every hockey clip",
    }
    families: dict[str, Any] = {"motion LightGBM": generalise.protocol(fs, hockey)}
    t = _shipped_temperature()
    families[f"motion LightGBM tempered (T = {t})"] = generalise.protocol(
        fs, hockey, generalise.tempered(t), shuffles=(0,))
    families[f"motion LightGBM trained with wearer motion too, tempered (T = {t}), as shipped"] = generalise.protocol(
        fs_moved, hockey_moved, generalise.tempered(t), shuffles=(0,))
    families.update(_mc3_rows(fs_moved, hockey_moved, workers))
    out["rows"] = [{"model": family, "measured as": how, **figures}
                   for family, rows in families.items() if isinstance(rows, dict)
                   for how, figures in (rows.items() if "roc_auc" not in rows else [("fight-surv -> hockey", rows)])]
    out["skipped"] = [f"{family}: {why}" for family, why in families.items() if isinstance(why, str)] or None
    return out


def _shipped_temperature() -> float:
    import json

    from custodes.triage import score

    return float(json.loads((score.MODEL_DIR / f"{score.LGB_MODEL_NAME}.json").read_text())["temperature"])


def _mc3_rows(fs: Any, hockey: Any, workers: int) -> dict[str, Any]:
    if os.environ.get("CUSTODES_BENCH_MC3", "1") == "0":
        return {"MC3-18": "skipped: CUSTODES_BENCH_MC3=0"}
    try:
        from custodes.analyze import video_net

        video_net.default_weights()
    except Exception as exc:  # the package or its weights are missing: say so in the row
        return {"MC3-18": f"skipped: {exc}"}
    from custodes.triage import generalise
    from custodes.triage.video_check import clip_embeddings

    # each source's mask applied, as for the motion pass (hockey's watermark corner)
    emb = {d.source: clip_embeddings(d.files, workers, d.source) for d in (fs, hockey)}
    # grouped CV on both sources indexes the joined set (``dataset.joined``: fight-surv's clips, then hockey's)
    emb[f"{fs.source}+{hockey.source}"] = (np.concatenate([emb[fs.source][0], emb[hockey.source][0]]),
                                           np.vstack([emb[fs.source][1], emb[hockey.source][1]]))

    def head(train: Any, tr: np.ndarray, test: Any, te: np.ndarray) -> np.ndarray:
        return generalise.logistic_scores(emb[train.source][1][tr], train.y[tr], emb[test.source][1][te])

    def ensemble(train: Any, tr: np.ndarray, test: Any, te: np.ndarray) -> np.ndarray:
        return (head(train, tr, test, te) + generalise.motion_lightgbm(train, tr, test, te)) / 2

    shipped_motion = generalise.tempered(_shipped_temperature())

    def raised(train: Any, tr: np.ndarray, test: Any, te: np.ndarray) -> np.ndarray:
        # triage's fusion (triage/video_check.py): the video network may raise the motion score, never lower it
        from custodes.triage.video_check import fused

        m, c = shipped_motion(train, tr, test, te), head(train, tr, test, te)
        return np.array([fused(a, b) for a, b in zip(m, c, strict=True)])

    def rerank(train: Any, tr: np.ndarray, test: Any, te: np.ndarray) -> np.ndarray:
        return reranked(generalise.motion_lightgbm(train, tr, test, te), head(train, tr, test, te))

    shipped = emb["hockey"][0]
    return {"MC3-18 as shipped (fine-tuned on fight-surv) -> hockey": generalise.figures(hockey.y, shipped),
            "MC3-18 features + logistic head": generalise.protocol(fs, hockey, head),
            "mean of motion LightGBM and MC3-18 head": generalise.protocol(fs, hockey, ensemble),
            f"motion LightGBM, its top {RERANK_SHARE:.0%} re-ranked with the MC3-18 head":
                generalise.protocol(fs, hockey, rerank),
            "motion LightGBM (tempered) raised by the MC3-18 head: max(motion, mean), as triage fuses them":
                generalise.protocol(fs, hockey, raised)}


def reranked(motion_p: np.ndarray, mc3_p: np.ndarray, share: float = RERANK_SHARE) -> np.ndarray:
    """``motion_p`` with its top ``share`` reordered by the mean of both scores, kept at or above the
    motion score where the top begins, so that no clip outside the top moves above one inside it."""
    q = float(np.quantile(motion_p, 1 - share))
    top = motion_p >= q
    out = motion_p.astype(np.float64).copy()
    out[top] = q + (1 - q) * (motion_p[top] + mc3_p[top]) / 2
    return out


def summary(r: dict[str, Any]) -> str:
    lines = [r["bench"]] + [f"  {row['model']}, {row['measured as']}: ROC AUC {row['roc_auc']}, ECE {row['ece']}"
                            for row in r["rows"]]
    return "\n".join(lines + [f"  skipped {s}" for s in r["skipped"] or []])


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))

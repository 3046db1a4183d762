"""Train the cell-grid CNN shipped in ``triage/models/`` (see ``triage.cell_cnn``). Needs torch:

    pip install -e '.[cnn-train]'
    python -m custodes.triage.train_cnn --data ../shared/data/fight-surv ../shared/data/hockey [--cv-shuffles 0,1,2]

Same clips (every source given, joined with their groups kept apart), resolution and frame rate as
``triage.train`` (the LightGBM model), and the same cached motion pass (``dataset.cached_dataset``): the cells are what
``analyze.motion`` keeps while it computes that model's features. Training: random 24-pair crops (the
network sees ~0.8 s at a time, so it cannot learn a clip's length), left-right flips and time reversal
(a fight is a fight backwards; walking is walking), AdamW with a one-cycle schedule, 80 epochs, three seeds.
Test: the whole clip and its mirror. With ``--cv-shuffles`` it first reports grouped 5-fold CV (grouped by
source video, as ``triage.train``) of the CNN, of LightGBM and of their mean — what triage uses.

Settings were chosen in ``experiments/cell_cnn`` on shuffles 0-2 and confirmed on 3-5.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from custodes.analyze import motion
from custodes.triage import cell_cnn
from custodes.triage.dataset import cached_dataset, joined
from custodes.triage.metrics import average_precision, roc_auc
from custodes.triage.train import CV_SEEDS, out_of_fold

CONFIG: dict[str, Any] = {"channels": 32, "dropout": 0.3, "lr": 2e-3, "weight_decay": 1e-2, "epochs": 80,
                          "crop_pairs": 24, "batch": 16}
SEEDS = (0, 1, 2)


def _net(channels: int, dropout: float) -> Any:
    import torch
    from torch import nn

    class CellNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = channels
            self.trunk = nn.Sequential(nn.Conv3d(5, c, 3, padding=1), nn.ReLU(), nn.MaxPool3d((1, 2, 2)),
                                       nn.Conv3d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool3d((2, 2, 2)),
                                       nn.Conv3d(2 * c, 2 * c, 3, padding=1), nn.ReLU())
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(4 * c, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.trunk(x)
            return self.head(self.drop(torch.cat([h.amax((2, 3, 4)), h.mean((2, 3, 4))], 1))).squeeze(1)

    return CellNet()


def _padded(cells: list[np.ndarray]) -> tuple[Any, Any]:
    import torch

    t_max = max(c.shape[1] for c in cells)
    X = np.zeros((len(cells), 5, t_max, *motion.GRID), np.float32)
    for i, c in enumerate(cells):
        X[i, :, :c.shape[1]] = c
    return torch.from_numpy(X), torch.tensor([c.shape[1] for c in cells])


def fit(cells: list[np.ndarray], y: np.ndarray, seed: int, config: dict[str, Any] = CONFIG) -> Any:
    """One network trained on normalised (5, pairs, rows, cols) clips."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    X, lens = _padded(cells)
    yt = torch.from_numpy(y.astype(np.float32))
    net = _net(config["channels"], config["dropout"])
    opt = torch.optim.AdamW(net.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    bs, crop = config["batch"], config["crop_pairs"]
    batches = int(np.ceil(len(cells) / bs))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config["lr"], total_steps=config["epochs"] * batches)
    flip_x = torch.tensor([-1, 1, 1, 1, 1.0]).view(1, 5, 1, 1, 1)  # mirrored: horizontal flow changes sign
    flip_xy = torch.tensor([-1, -1, 1, 1, 1.0]).view(1, 5, 1, 1, 1)  # reversed in time: all flow does
    steps = torch.arange(crop)
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(config["epochs"]):
        order = torch.randperm(len(cells), generator=gen)
        for i in range(batches):
            b = order[i * bs:(i + 1) * bs]
            lb = lens[b]
            start = (torch.rand(len(b), generator=gen) * torch.clamp(lb - crop + 1, min=1)).long()
            idx = (start[:, None] + steps[None]) % lb[:, None]  # a clip shorter than the crop wraps around
            xb = X[b[:, None], :, idx].permute(0, 2, 1, 3, 4)  # (B, 5, crop, rows, cols)
            mirror = torch.rand(len(b), generator=gen) < 0.5
            xb = torch.where(mirror.view(-1, 1, 1, 1, 1), xb.flip(4) * flip_x, xb)
            backwards = torch.rand(len(b), generator=gen) < 0.5
            xb = torch.where(backwards.view(-1, 1, 1, 1, 1), xb.flip(2) * flip_xy, xb)
            opt.zero_grad()
            loss_fn(net(xb), yt[b]).backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def predict(nets: list[Any], cells: list[np.ndarray]) -> np.ndarray:
    """Fight probability per clip: mean over networks and the clip and its mirror (as ``cell_cnn``)."""
    import torch

    out = np.zeros(len(cells))
    with torch.no_grad():
        for i, c in enumerate(cells):
            if c.shape[1] < cell_cnn.MIN_PAIRS:
                c = c[:, np.arange(cell_cnn.MIN_PAIRS) % c.shape[1]]
            x = torch.from_numpy(cell_cnn.with_mirror(c).copy())
            out[i] = float(np.mean([torch.sigmoid(n(x)).numpy() for n in nets]))
    return out


def grouped_cv(X: np.ndarray, cells: list[np.ndarray], y: np.ndarray, groups: list[int],
               shuffles: tuple[int, ...], seeds: tuple[int, ...] = SEEDS,
               progress: Callable[[str], None] = lambda s: None,
               on_fold: Callable[[int, int, list[Any]], None] = lambda rep, k, nets: None) -> dict[str, Any]:
    """5-fold CV grouped by source video, the same splits as ``triage.train.grouped_cv``: the CNN (an
    ensemble of ``seeds``), LightGBM (each of ``CV_SEEDS``) and the mean of the two. ``on_fold`` gets each
    fold's networks (the robustness bench scores degraded clips with them)."""
    from sklearn.model_selection import StratifiedGroupKFold

    rows = []
    for rep in shuffles:
        splits = list(StratifiedGroupKFold(5, shuffle=True, random_state=rep).split(X, y, groups))
        cnn = np.zeros(len(y))
        for k, (tr, te) in enumerate(splits):
            t0 = time.time()
            nets = [fit([cells[i] for i in tr], y[tr], seed=1000 * s + 10 * rep + k) for s in seeds]
            cnn[te] = predict(nets, [cells[i] for i in te])
            on_fold(rep, k, nets)
            progress(f"shuffle {rep} fold {k + 1}/5: {time.time() - t0:.0f} s")
        lgb = [out_of_fold(X, y, splits, s) for s in CV_SEEDS]
        rows.append({"shuffle": rep, "cnn": roc_auc(y, cnn), "lightgbm": float(np.mean([roc_auc(y, p) for p in lgb])),
                     "mean_of_both": float(np.mean([roc_auc(y, (cnn + p) / 2) for p in lgb])),
                     "mean_of_both_ap": float(np.mean([average_precision(y, (cnn + p) / 2) for p in lgb]))})
    blend = [r["mean_of_both"] for r in rows]
    return {"roc_auc": float(np.mean(blend)), "roc_auc_range": [float(min(blend)), float(max(blend))],
            "cnn_alone": float(np.mean([r["cnn"] for r in rows])),
            "lightgbm_alone": float(np.mean([r["lightgbm"] for r in rows])),
            "average_precision": float(np.mean([r["mean_of_both_ap"] for r in rows])),
            "per_shuffle": rows, "folds": 5, "cnn_seeds": list(seeds), "lightgbm_seeds": list(CV_SEEDS),
            "grouped_by": "source video (videos.txt)"}


def export(nets: list[Any], base: Path, meta: dict[str, Any]) -> None:
    """``base``.onnx (convolutions of every network; per time step max and mean over the grid),
    ``base``.npz (the linear heads) and ``base``.json (metadata)."""
    import torch
    from torch import nn

    class Trunks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunks = nn.ModuleList([n.trunk for n in nets])

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            hs = [t(x) for t in self.trunks]  # each (views, channels, steps, rows, cols)
            return (torch.cat([h.amax((3, 4)) for h in hs]), torch.cat([h.mean((3, 4)) for h in hs]))

    base.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 5, 40, *motion.GRID)
    # the TorchScript exporter (deprecated, still in torch 2.13): the new one needs onnxscript, one more
    # package, for three convolutions; tests/triage/test_cell_cnn.py checks the exported graph scores alike
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Trunks().eval(), (example,), str(base.with_suffix(".onnx")), input_names=["cells"],
                          output_names=["max", "mean"],
                          dynamic_axes={"cells": {2: "pairs"}, "max": {2: "steps"}, "mean": {2: "steps"}},
                          opset_version=17, dynamo=False)
    weight = np.stack([n.head.weight.detach().numpy()[0] for n in nets]).astype(np.float32)
    bias = np.asarray([float(n.head.bias.detach()[0]) for n in nets], np.float32)
    np.savez(base.with_suffix(".npz"), weight=weight, bias=bias)
    base.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="one folder per source")
    ap.add_argument("--out", type=Path, default=cell_cnn.MODEL_DIR)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cv-shuffles", default="", help="comma-separated CV shuffles to report first (e.g. 0,1,2); "
                                                      "each is 15 fits, ~1 min each on two cores")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.workers)
    data, _ = joined([cached_dataset(d, args.workers) for d in args.data])
    cells, y = data.cells, data.y
    meta: dict[str, Any] = {}
    if args.cv_shuffles:
        cv = grouped_cv(data.X, cells, y, data.groups, tuple(int(s) for s in args.cv_shuffles.split(",")),
                        progress=lambda s: print(s, file=sys.stderr, flush=True))
        print(json.dumps(cv, indent=2))
        meta["cv"] = cv
    nets = [fit(cells, y, seed) for seed in SEEDS]
    version = f"violence-{motion.VERSION}-cnn-1"
    meta = {"version": version, "motion_version": motion.VERSION, "grid": list(motion.GRID),
            "trained": datetime.now(UTC).strftime("%Y-%m-%d"), **data.provenance(),
            "config": CONFIG, "seeds": list(SEEDS), "torch": torch.__version__, **meta}
    export(nets, args.out / f"{version}.onnx", meta)
    print(f"wrote {args.out / version}.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main())

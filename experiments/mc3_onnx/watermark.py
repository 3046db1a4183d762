"""Does the MC3-18 score move when the hockey watermark corner is painted black (the same region as
custodes.triage.dataset.hockey_mask)? 16 frames over each whole clip, scored as is and masked.

    nice -n 5 .venv/bin/python experiments/mc3_onnx/watermark.py [N_PER_CLASS]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from custodes.analyze import video_net

HOCKEY = Path("/work/shared/data/hockey")


def mask(f: np.ndarray) -> np.ndarray:
    h, w = f.shape[:2]
    f = f.copy()
    f[int(h * 0.72):int(h * 0.88), : int(w * 0.45)] = 0
    return f


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rows = []
    for cls in ("fight", "noFight"):
        for p in sorted((HOCKEY / cls).glob("*.avi"))[:n] or sorted((HOCKEY / cls).iterdir())[:n]:
            fr = video_net.frames_for(p)
            x = np.stack([video_net.clip_tensor(fr), video_net.clip_tensor([mask(f) for f in fr])])
            pf, _ = video_net.embed(x)
            rows.append((cls, p.name, float(pf[0]), float(pf[1])))
            print(f"{cls}/{p.name}: p_fight {pf[0]:.3f} masked {pf[1]:.3f} (d {pf[1] - pf[0]:+.3f})", flush=True)
    for cls in ("fight", "noFight"):
        d = np.array([r[3] - r[2] for r in rows if r[0] == cls])
        print(f"{cls}: n={len(d)} mean d {d.mean():+.4f} mean |d| {np.abs(d).mean():.4f} max |d| {np.abs(d).max():.4f}")


if __name__ == "__main__":
    main()

"""Score every clip of a labelled folder (fight/ vs noFight/) with the MC3-18 ONNX network, 16 frames over
the whole clip, one thread; save files, labels (1 = fight), p_fight, features (float16) and the CPU seconds
of preprocessing (decode + resize) and inference per clip.

    nice -n 5 .venv/bin/python experiments/mc3_onnx/extract.py OUT.npz DIR [DIR ...]

The .npz is rewritten every 50 clips, so a partial run leaves what it measured.
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

from custodes.analyze import video_net


def save(out: Path, rows: list[tuple[str, int, float, np.ndarray, float, float]]) -> None:
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, files=np.array([r[0] for r in rows]), labels=np.array([r[1] for r in rows], np.int8),
             p_fight=np.array([r[2] for r in rows], np.float32),
             features=np.stack([r[3] for r in rows]).astype(np.float16) if rows else np.zeros((0, 512), np.float16),
             prep_cpu_s=np.array([r[4] for r in rows], np.float32),
             infer_cpu_s=np.array([r[5] for r in rows], np.float32))
    tmp.replace(out)


def main() -> None:
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    clips: list[tuple[Path, int]] = []
    for d in map(Path, sys.argv[2:]):
        for cls, lab in (("fight", 1), ("noFight", 0)):
            clips += [(p, lab) for p in sorted((d / cls).iterdir()) if p.suffix.lower() in (".mp4", ".avi", ".mpg")]
    video_net.session()  # build outside the timings
    rows: list[tuple[str, int, float, np.ndarray, float, float]] = []
    t_start = time.time()
    for i, (p, lab) in enumerate(clips):
        try:
            t0 = time.process_time()
            x = video_net.clip_tensor(video_net.frames_for(p))[None]
            t1 = time.process_time()
            pf, f = video_net.embed(x)
            t2 = time.process_time()
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"SKIP {p}: {exc}", flush=True)
            continue
        rows.append((f"{p.parent.name}/{p.name}", lab, float(pf[0]), f[0], t1 - t0, t2 - t1))
        if (i + 1) % 50 == 0 or i + 1 == len(clips):
            save(out, rows)
            print(f"{i + 1}/{len(clips)} {time.time() - t_start:.0f}s wall, prep {np.mean([r[4] for r in rows]):.3f} "
                  f"infer {np.mean([r[5] for r in rows]):.3f} cpu-s/clip, maxrss "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
    save(out, rows)


if __name__ == "__main__":
    main()

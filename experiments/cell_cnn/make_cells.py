"""Build cells.npz for sweep.py: motion cell grids of every fight-surv clip (log1p-normalised, float16,
padded to the longest clip), labels and source groups. Run with Custodes' own venv:

    .venv/bin/python experiments/cell_cnn/make_cells.py ../shared/data/fight-surv experiments/cell_cnn/cells.npz
"""
import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from custodes.analyze import motion
from custodes.media.decode import gray_frames
from custodes.triage.train import clip_files, source_groups


def one(p):
    cv2.setNumThreads(1)
    tr = motion.track(gray_frames(Path(p), fps=motion.FPS, size=motion.SIZE))
    return np.stack(tr.cells).astype(np.float32)


if __name__ == "__main__":
    data, out = Path(sys.argv[1]), sys.argv[2]
    files, y = clip_files(data)
    g = source_groups(data, [Path(f).stem for f in files])
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as ex:
        C = list(ex.map(one, files, chunksize=4))
    T = max(len(c) for c in C)
    cells = np.zeros((len(C), 5, T, *motion.GRID), np.float16)
    lens = np.zeros(len(C), np.int64)
    for i, c in enumerate(C):
        c = c.copy()
        c[:, :4] = np.sign(c[:, :4]) * np.log1p(np.abs(c[:, :4]))
        cells[i, :, :len(c)] = c.transpose(1, 0, 2, 3)
        lens[i] = len(c)
    np.savez_compressed(out, cells=cells, lens=lens, y=np.asarray(y), g=np.asarray(g))

"""The training data of both violence models: fight-surv's clips, their labels, source groups and motion.

Data: ``fight/`` and ``noFight/`` 2-second CCTV clips (Aktı et al. 2019, MIT). Each clip goes through
one ``analyze.motion`` pass at a fixed 240x180 and the source's frame rate up to 30 fps (resolution is
normalised because it differs by class in this data set), which gives both the LightGBM features
(``triage.train``) and the cell grids the CNN learns from (``triage.train_cnn``). Source groups come
from ``videos.txt``: clips cut from the same YouTube video must never sit on both sides of a split.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from custodes.analyze import motion
from custodes.engine.local import worker_pool
from custodes.media.decode import gray_frames
from custodes.triage import cell_cnn


@dataclass
class Dataset:
    X: np.ndarray  # LightGBM features, one row per clip (motion.FEATURE_NAMES)
    cells: list[np.ndarray]  # per clip, the CNN's normalised input (5, pairs, rows, cols)
    y: np.ndarray  # 1 = fight
    groups: list[int]  # source video of each clip
    files: list[str]

    def provenance(self) -> dict[str, object]:
        """What a trained model's metadata says of its data: counts, source and a digest of the clips'
        contents (the sorted clips' SHA-256s, hashed), so a retraining on other bytes shows."""
        digest = hashlib.sha256()
        for f in sorted(self.files):
            digest.update(hashlib.sha256(Path(f).read_bytes()).digest())
        return {"clips": int(len(self.y)), "positives": int(self.y.sum()),
                "data": "fight-surv (Aktı et al. 2019, MIT)", "data_sha256": digest.hexdigest()}


def clip_files(data: Path) -> tuple[list[str], list[int]]:
    """The data set's clips and labels (1 = fight), fights first, each class in name order."""
    files, labels = [], []
    for label, sub in ((1, "fight"), (0, "noFight")):
        for f in sorted((data / sub).glob("*.mp4")):
            files.append(str(f))
            labels.append(label)
    return files, labels


def source_groups(data: Path, names: list[str]) -> list[int]:
    """Source video of each clip (by file stem) from ``videos.txt``; a clip not listed is its own group."""
    groups: dict[str, int] = {}
    g = -1
    listing = data / "videos.txt"
    if listing.exists():
        for line in listing.read_text().splitlines():
            line = line.strip()
            if line.startswith("http"):
                g += 1
            elif m := re.match(r"^(\w+)\s*:", line):
                groups[m.group(1)] = g
    return [groups.get(n, 10_000 + i) for i, n in enumerate(names)]


def features_and_cells(frames: Iterable[tuple[float, np.ndarray]]) -> tuple[np.ndarray | None, np.ndarray]:
    """LightGBM features (None when the clip is too short) and cell grids (pairs, 5, rows, cols) of one
    clip, from one motion pass."""
    tr = motion.track(frames)
    cells = np.stack(tr.cells).astype(np.float32) if tr.cells else np.zeros((0, 5, *motion.GRID), np.float32)
    return tr.window_features(), cells


def track_clip(path: str) -> tuple[np.ndarray | None, np.ndarray]:
    import cv2

    cv2.setNumThreads(1)
    return features_and_cells(gray_frames(Path(path), fps=motion.FPS, size=motion.SIZE))


def load_dataset(data: Path, workers: int = 2) -> Dataset:
    """Every clip that gives features (at least three frame pairs), in ``clip_files`` order."""
    files, labels = clip_files(data)
    with worker_pool(workers) as ex:
        tracked = list(ex.map(track_clip, files, chunksize=4))
    keep = [i for i, (f, _) in enumerate(tracked) if f is not None]
    return Dataset(X=np.stack([tracked[i][0] for i in keep]),  # type: ignore[misc]
                   cells=[cell_cnn.normalise(tracked[i][1]) for i in keep],
                   y=np.asarray([labels[i] for i in keep]),
                   groups=source_groups(data, [Path(files[i]).stem for i in keep]),
                   files=[files[i] for i in keep])

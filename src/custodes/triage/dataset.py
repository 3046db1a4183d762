"""The training data of the violence models: labelled clips, their source groups and motion.

Two sources, each a folder of ``fight/`` and ``noFight/`` clips (``SOURCES``):

- fight-surv: 2-second CCTV clips (Aktı et al. 2019, MIT). Source groups come from ``videos.txt``: clips
  cut from the same YouTube video must never sit on both sides of a split.
- hockey: 1.6-second NHL broadcast clips (Hockey Fights, Bermejo Nievas et al. 2011, for research). No
  grouping by game is known, so each clip is its own group (in-source CV flatters a model there), and the
  "hockeyfights.com" watermark some fight clips carry is painted out before motion is measured
  (``hockey_mask``), so no model can learn it.

Each clip goes through one ``analyze.motion`` pass at a fixed 240x180 and the source's frame rate up to 30
fps (resolution is normalised because it differs by class in fight-surv), which gives both the LightGBM
features (``triage.train``) and the cell grids the CNN learns from (``triage.train_cnn``). The pass over a
source is cached (``cached_dataset``): the benches read each source several times.

``with_wearer_motion`` adds, for every clip, the features of the same clip as a walking body camera would film
it (``triage.wearer_motion``, a draw seeded by "train|" and the clip's name: not the draw the body-worn bench
tests on). The LightGBM model is trained on both (``Dataset.training_rows``), so that the camera's own motion
(bob, turns, a hand over the lens) is seen in both classes and stops reading as a fight.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from custodes.analyze import motion
from custodes.engine.local import worker_pool
from custodes.media.decode import gray_frames
from custodes.triage import cell_cnn


def with_moved_copies(X: np.ndarray, y: np.ndarray, idx: np.ndarray, moved: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` of ``X`` and their labels, and, when there are ``moved`` rows (the same clips with wearer
    motion), those clips' moved rows after them with the same labels: taken by the same index, a copy never
    sits on the other side of a split from its clip."""
    if moved is None:
        return X[idx], y[idx]
    return np.vstack([X[idx], moved[idx]]), np.concatenate([y[idx], y[idx]])


@dataclass
class Dataset:
    X: np.ndarray  # LightGBM features, one row per clip (motion.FEATURE_NAMES)
    cells: list[np.ndarray]  # per clip, the CNN's normalised input (5, pairs, rows, cols)
    y: np.ndarray  # 1 = fight
    groups: list[int]  # source video of each clip
    files: list[str]
    source: str = "fight-surv"  # a key of SOURCES
    moved_X: np.ndarray | None = None  # the same clips' features with simulated wearer motion (with_wearer_motion)

    def training_rows(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels a model of these clips is trained on (``with_moved_copies``)."""
        return with_moved_copies(self.X, self.y, np.arange(len(self.y)) if idx is None else idx, self.moved_X)

    def provenance(self) -> dict[str, object]:
        """What a trained model's metadata says of its data: counts, source and a digest of the clips'
        contents (the sorted clips' SHA-256s, hashed), so a retraining on other bytes shows."""
        digest = hashlib.sha256()
        for f in sorted(self.files):
            digest.update(hashlib.sha256(Path(f).read_bytes()).digest())
        return {"clips": int(len(self.y)), "positives": int(self.y.sum()),
                "data": " + ".join(SOURCES[s].citation for s in self.source.split("+")),
                "data_sha256": digest.hexdigest()}

    def subset(self, keep: np.ndarray) -> Dataset:
        idx = np.flatnonzero(keep) if keep.dtype == bool else keep
        return Dataset(X=self.X[idx], cells=[self.cells[i] for i in idx], y=self.y[idx],
                       groups=[self.groups[i] for i in idx], files=[self.files[i] for i in idx], source=self.source,
                       moved_X=None if self.moved_X is None else self.moved_X[idx])


def joined(parts: list[Dataset]) -> tuple[Dataset, np.ndarray]:
    """The sources as one training set (groups kept apart) and each clip's source index."""
    offset, groups, which = 0, [], []
    for k, d in enumerate(parts):
        groups += [g + offset for g in d.groups]
        offset = max(groups) + 1
        which += [k] * len(d.y)
    both = Dataset(X=np.vstack([d.X for d in parts]), cells=[c for d in parts for c in d.cells],
                   y=np.concatenate([d.y for d in parts]), groups=groups, files=[f for d in parts for f in d.files],
                   source="+".join(d.source for d in parts),
                   moved_X=None if any(d.moved_X is None for d in parts)
                   else np.vstack([d.moved_X for d in parts if d.moved_X is not None]))
    return both, np.asarray(which)


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


def own_groups(data: Path, names: list[str]) -> list[int]:
    """No grouping known: every clip its own group."""
    return list(range(len(names)))


Frames = Iterator[tuple[float, np.ndarray]]


def hockey_mask(frames: Frames) -> Frames:
    """Hockey Fights' frames with the "hockeyfights.com" watermark's corner painted black: it sits at the
    bottom left of the picture (inside the black borders) on some fight clips and no calm ones, so a model
    could learn it instead of the fight. Black like the borders beside it, and on every clip of both classes."""
    for t, f in frames:
        h, w = f.shape[:2]
        f = f.copy()
        f[int(h * 0.72):int(h * 0.88), : int(w * 0.45)] = 0
        yield t, f


@dataclass(frozen=True)
class Source:
    name: str
    citation: str  # what a model's metadata says of this data
    listing: str  # the file that marks a folder as this source
    groups: Callable[[Path, list[str]], list[int]]
    mask: Callable[[Frames], Frames] | None = None


SOURCES: dict[str, Source] = {
    "fight-surv": Source("fight-surv", "fight-surv (Aktı et al. 2019, MIT)", "videos.txt", source_groups),
    "hockey": Source("hockey", "Hockey Fights (Bermejo Nievas et al. 2011; distributed for research)",
                     "videos.tsv", own_groups, hockey_mask),
}


def source_of(data: Path) -> Source:
    """The source a folder holds, by its listing file (fight-surv when neither is there)."""
    for s in SOURCES.values():
        if (data / s.listing).exists():
            return s
    return SOURCES["fight-surv"]


def features_and_cells(frames: Iterable[tuple[float, np.ndarray]]) -> tuple[np.ndarray | None, np.ndarray]:
    """LightGBM features (None when the clip is too short) and cell grids (pairs, 5, rows, cols) of one
    clip, from one motion pass."""
    tr = motion.track(frames)
    cells = np.stack(tr.cells).astype(np.float32) if tr.cells else np.zeros((0, 5, *motion.GRID), np.float32)
    return tr.window_features(), cells


def track_clip(path: str, source: str = "fight-surv", moved_as: str | None = None
               ) -> tuple[np.ndarray | None, np.ndarray]:
    """One clip's motion pass, with ``source``'s mask; with ``moved_as``, filmed by a walking body camera
    (``triage.wearer_motion``, the draw of that name)."""
    import cv2

    cv2.setNumThreads(1)
    frames: Frames = gray_frames(Path(path), fps=motion.FPS, size=motion.SIZE)
    mask = SOURCES[source].mask
    if mask:
        frames = mask(frames)
    if moved_as is not None:
        from custodes.triage import wearer_motion

        frames = wearer_motion.apply(frames, moved_as)
    return features_and_cells(frames)


def _track(args: tuple[str, ...]) -> tuple[np.ndarray | None, np.ndarray]:
    return track_clip(*args)


def load_dataset(data: Path, workers: int = 2) -> Dataset:
    """Every clip that gives features (at least three frame pairs), in ``clip_files`` order."""
    source = source_of(data)
    files, labels = clip_files(data)
    with worker_pool(workers) as ex:
        tracked = list(ex.map(_track, [(f, source.name) for f in files], chunksize=4))
    keep = [i for i, (f, _) in enumerate(tracked) if f is not None]
    return Dataset(X=np.stack([tracked[i][0] for i in keep]),  # type: ignore[misc]
                   cells=[cell_cnn.normalise(tracked[i][1]) for i in keep],
                   y=np.asarray([labels[i] for i in keep]),
                   groups=source.groups(data, [Path(files[i]).stem for i in keep]),
                   files=[files[i] for i in keep], source=source.name)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "custodes" / "train-features"


def cache_path(prefix: str, files: list[str]) -> Path:
    """Where a measurement of ``files`` is cached: ``prefix`` (what measured them, with its version) and a
    digest of every file's path, size and modification time, so a changed, added or removed file measures
    again."""
    key = hashlib.sha256(prefix.encode())
    for f in files:
        st = os.stat(f)
        key.update(f"|{f}|{st.st_size}|{st.st_mtime_ns}".encode())
    return cache_dir() / f"{prefix}-{key.hexdigest()[:16]}.npz"


def save_cache(path: Path, **arrays: np.ndarray) -> None:
    """``arrays`` written to ``path`` (a ``cache_path``) whole or not at all: a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub reads any keyword as allow_pickle
    os.replace(tmp, path)


def cached_dataset(data: Path, workers: int = 2) -> Dataset:
    """``load_dataset``, kept in ``cache_dir()`` under a key of the motion version and every clip's path,
    size and modification time: a changed, added or removed clip, or new motion code, measures again."""
    data = data.resolve()  # one key however the folder was named
    files, _ = clip_files(data)
    path = cache_path(f"{source_of(data).name}-{motion.VERSION}", files)
    if path.exists():
        z = np.load(path)
        bounds = np.cumsum(z["pairs"])[:-1]
        cells = np.split(z["cells"], bounds, axis=1)
        return Dataset(X=z["X"], cells=list(cells), y=z["y"], groups=z["groups"].tolist(),
                       files=z["files"].tolist(), source=str(z["source"]))
    d = load_dataset(data, workers)
    save_cache(path, X=d.X, cells=np.concatenate(d.cells, axis=1), pairs=np.asarray([c.shape[1] for c in d.cells]),
               y=d.y, groups=np.asarray(d.groups), files=np.asarray(d.files), source=np.asarray(d.source))
    return d


WEARER_SEED = "train|"  # the training draw of wearer motion: clip names prefixed, so not the bench's draw


def moved_features(d: Dataset, seed: str = WEARER_SEED, workers: int = 2) -> np.ndarray:
    """Features of ``d``'s clips with simulated wearer motion (each clip's draw seeded by ``seed`` + its name;
    NaN where a clip gives none), cached like ``cached_dataset``. The cells are cached too, for a CNN trained
    later, but as motion keeps them (not ``cached_dataset``'s normalised layout): ``cells`` is every clip's
    (pairs, 5, rows, cols) joined along the pairs, ``pairs`` each clip's count."""
    from custodes.triage import wearer_motion

    path = cache_path(f"{d.source}-{motion.VERSION}-{wearer_motion.VERSION}-{seed or 'bench'}", d.files)
    if path.exists():
        return np.load(path)["X"]
    with worker_pool(workers) as ex:
        rows = list(ex.map(_track, [(f, d.source, f"{seed}{Path(f).stem}") for f in d.files], chunksize=4))
    X = np.stack([r if r is not None else np.full(d.X.shape[1], np.nan, np.float32) for r, _ in rows])
    save_cache(path, X=X, cells=np.concatenate([c for _, c in rows], axis=0),
               pairs=np.asarray([c.shape[0] for _, c in rows]))
    return X


def with_wearer_motion(d: Dataset, workers: int = 2) -> Dataset:
    """``d`` with ``moved_X``: its clips' features with the training draw of wearer motion."""
    from dataclasses import replace

    return replace(d, moved_X=moved_features(d, WEARER_SEED, workers))

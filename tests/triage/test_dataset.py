"""The training data both violence models share (triage.dataset)."""

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from custodes.analyze.motion import FPS, GRID, SIZE, clip_features
from custodes.media.decode import gray_frames
from custodes.media.synth import ClipSpec, write_clip
from custodes.triage.dataset import clip_files, load_dataset, source_groups

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database


def test_clips_cut_from_one_source_video_share_a_group(tmp_path):
    (tmp_path / "videos.txt").write_text(
        "https://www.youtube.com/watch?v=A\nfi001: 0.13.50 - 0.15.60\nnofi002: 1.05.30 - 1.08.70\n"
        "https://www.youtube.com/watch?v=B\n  fi003 : 0.58.40 - 1.00.40\n")
    g = source_groups(tmp_path, ["fi001", "nofi002", "fi003", "fi999", "nofi998"])
    assert g[0] == g[1] != g[2]
    # clips the listing does not name are each their own group: never assumed to share a source
    assert len({g[0], g[2], g[3], g[4]}) == 4


def test_dataset_gives_each_usable_clip_the_features_triage_scores(tmp_path, fight_surv):
    for sub, names in (("fight", ("fi001", "fi002")), ("noFight", ("nofi001", "nofi002"))):
        (tmp_path / sub).mkdir()
        for n in names:
            shutil.copy2(fight_surv / sub / f"{n}.mp4", tmp_path / sub / f"{n}.mp4")
    shutil.copy2(fight_surv / "videos.txt", tmp_path / "videos.txt")
    # two frames are one frame pair: too short for features, left out rather than scored as zeros
    write_clip(tmp_path / "noFight" / "nofi900.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 0.2, fps=10))
    files, labels = clip_files(tmp_path)
    assert [Path(f).stem for f in files] == ["fi001", "fi002", "nofi001", "nofi002", "nofi900"]
    assert labels == [1, 1, 0, 0, 0]

    data = load_dataset(tmp_path, workers=1)
    assert [Path(f).stem for f in data.files] == ["fi001", "fi002", "nofi001", "nofi002"]
    assert data.y.tolist() == [1, 1, 0, 0]
    assert data.groups == source_groups(fight_surv, ["fi001", "fi002", "nofi001", "nofi002"])
    for f, row, cells in zip(data.files, data.X, data.cells, strict=True):
        expected = clip_features(gray_frames(Path(f), fps=FPS, size=SIZE))
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)
        assert cells.shape[0] == 5 and cells.shape[2:] == GRID  # the CNN's input: (channels, pairs, rows, cols)

    # what a trained model's metadata records of its data: a retraining on other bytes must show
    before = data.provenance()
    assert (before["clips"], before["positives"]) == (4, 2)
    with open(data.files[0], "ab") as f:
        f.write(b"\0")
    assert data.provenance()["data_sha256"] != before["data_sha256"]



def _copy_clips(dst: Path, src: Path, names: dict[str, tuple[str, ...]]) -> None:
    for sub, stems in names.items():
        (dst / sub).mkdir(parents=True)
        for n in stems:
            shutil.copy2(src / sub / f"{n}.mp4", dst / sub / f"{n}.mp4")


def test_hockey_is_a_source_of_its_own_with_its_watermark_painted_out(tmp_path, hockey):
    from custodes.triage.dataset import hockey_mask, source_of, track_clip

    _copy_clips(tmp_path, hockey, {"fight": ("test-fi0", "test-fi1"), "noFight": ("test-no0",)})
    shutil.copy2(hockey / "videos.tsv", tmp_path / "videos.tsv")
    assert source_of(tmp_path).name == "hockey"
    data = load_dataset(tmp_path, workers=1)
    assert data.source == "hockey" and data.groups == [0, 1, 2]  # no grouping by game is known
    assert data.provenance()["data"].startswith("Hockey Fights")
    # the corner is black on every frame, so nothing moves there
    frames = list(gray_frames(Path(data.files[0]), fps=FPS, size=SIZE))
    masked = list(hockey_mask(iter(frames)))
    w, h = SIZE
    assert all(f[int(h * 0.75):int(h * 0.85), : int(w * 0.4)].max() == 0 for _, f in masked)
    assert any(f[int(h * 0.75):int(h * 0.85), : int(w * 0.4)].max() > 0 for _, f in frames)
    np.testing.assert_allclose(data.X[0], track_clip(data.files[0], "hockey")[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(data.X[0], track_clip(data.files[0], "fight-surv")[0])


def test_a_cached_source_reads_back_the_same_and_a_changed_clip_measures_again(tmp_path, fight_surv, monkeypatch):
    from custodes.triage.dataset import cache_dir, cached_dataset, joined

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data_dir = tmp_path / "fs"
    _copy_clips(data_dir, fight_surv, {"fight": ("fi001", "fi002"), "noFight": ("nofi001",)})
    shutil.copy2(fight_surv / "videos.txt", data_dir / "videos.txt")
    first = cached_dataset(data_dir, workers=1)
    assert len(list(cache_dir().glob("*.npz"))) == 1
    again = cached_dataset(data_dir, workers=1)
    np.testing.assert_array_equal(first.X, again.X)
    assert [c.shape for c in first.cells] == [c.shape for c in again.cells]
    assert all(np.array_equal(a, b) for a, b in zip(first.cells, again.cells, strict=True))
    assert (again.groups, again.files, again.source) == (first.groups, first.files, "fight-surv")
    shutil.copy2(fight_surv / "noFight" / "nofi002.mp4", data_dir / "noFight" / "nofi001.mp4")  # other bytes
    changed = cached_dataset(data_dir, workers=1)
    assert len(list(cache_dir().glob("*.npz"))) == 2 and not np.allclose(changed.X[2], first.X[2])

    both, which = joined([first, first])
    assert which.tolist() == [0, 0, 0, 1, 1, 1]
    assert not set(both.groups[:3]) & set(both.groups[3:])  # one source's groups never merge with the other's


def test_training_rows_add_each_clips_moved_copy_with_its_label(tmp_path, fight_surv, monkeypatch):
    """The shipped LightGBM model trains on every clip and the same clip with simulated wearer motion: the
    moved copy is a real motion pass over moved frames (its features differ), cached, and kept with its clip
    through subsets and joins, so a copy never lands on the other side of a split."""
    from custodes.triage.dataset import cache_dir, cached_dataset, joined, with_wearer_motion

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data_dir = tmp_path / "fs"
    _copy_clips(data_dir, fight_surv, {"fight": ("fi001",), "noFight": ("nofi001",)})
    shutil.copy2(fight_surv / "videos.txt", data_dir / "videos.txt")
    clean = cached_dataset(data_dir, workers=1)
    X, y = clean.training_rows()
    assert X.shape == clean.X.shape  # without moved copies: the clips as they are
    moved = with_wearer_motion(clean, workers=1)
    assert moved.moved_X is not None and moved.moved_X.shape == clean.X.shape
    assert not np.allclose(np.nan_to_num(moved.moved_X), np.nan_to_num(clean.X))
    assert len(list(cache_dir().glob("*.npz"))) == 2
    np.testing.assert_array_equal(with_wearer_motion(clean, workers=1).moved_X, moved.moved_X)  # read back
    X, y = moved.training_rows(np.array([1]))
    np.testing.assert_array_equal(X, np.vstack([clean.X[[1]], moved.moved_X[[1]]]))
    assert y.tolist() == [clean.y[1]] * 2
    assert moved.subset(np.array([1])).moved_X.shape == (1, clean.X.shape[1])
    both, _ = joined([moved, moved])
    assert both.moved_X.shape == (4, clean.X.shape[1])
    assert joined([moved, clean])[0].moved_X is None  # a join is moved only where every part is

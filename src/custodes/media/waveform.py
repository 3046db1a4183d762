"""The audio waveform the workspace strip draws: peak loudness per short bucket, decoded once and cached.

The audio is decoded through PyAV (FFmpeg's libraries, the same readers as every other analyzer, so an
encrypted object is read through its decrypting reader and never written out), resampled to mono 8 kHz
signed 16-bit and streamed: one bucket's samples are in memory at a time, never the file. Each bucket keeps the
largest absolute sample as 0-255 (linear, 255 = full scale), ten buckets a second; a long recording gets wider
buckets so that no answer holds more than ``MAX_BUCKETS`` values (a few kilobytes of JSON). It is a picture of
loudness for finding shouting or silence on the strip, not sound: nothing here can be played back.

``FORMAT`` is written into every result; a cached result of another format is computed again.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable
from typing import Any

import av
import numpy as np

from custodes.media.source import MediaRef, av_source, open_source

FORMAT = "waveform-1"
RATE = 8000  # samples a second: loudness needs no more, and decoding to it is cheap
PER_SECOND = 10
MAX_BUCKETS = 4000
NO_SOUND = "This file has no sound."

# Decodes at once, process-wide: a queue of reviewers opening long files must not start one decode each
MAX_CONCURRENT_DECODES = 2
_decodes = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)


def bucket_samples(duration_s: float | None) -> int:
    """Samples per bucket: a tenth of a second, widened for a long file to stay within ``MAX_BUCKETS``."""
    base = RATE // PER_SECOND
    if not duration_s or not math.isfinite(duration_s) or duration_s <= 0:
        return base
    return max(base, math.ceil(duration_s * RATE / MAX_BUCKETS))


def peaks(source: MediaRef, duration_s: float | None) -> dict[str, Any]:
    """The waveform of ``source``: ``{"version", "bucket_s", "peaks": [0-255, ...]}``.

    A file with no audio stream gives no peaks and ``reason`` "This file has no sound."; a file whose sound
    cannot be opened gives no peaks and a sentence why; a file whose sound breaks off midway gives the peaks
    decoded before the damage, with ``damaged`` true and a sentence saying so. Never raises for bad media.
    """
    with _decodes:
        return _peaks(source, duration_s)


def _peaks(source: MediaRef, duration_s: float | None) -> dict[str, Any]:
    step = bucket_samples(duration_s)
    out: list[int] = []
    buf = np.zeros(0, dtype=np.int32)
    damaged = ""
    started = False
    try:
        with open_source(av_source(source)) as c:
            if not c.streams.audio:
                return {"version": FORMAT, "peaks": [], "reason": NO_SOUND}
            st = c.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            offset = (c.start_time or 0) / 1_000_000  # the container's own zero, in seconds
            try:
                for frame in c.decode(st):
                    if not started:
                        started = True
                        # sound that starts after the picture: silence before it, so buckets keep their times
                        lead = (frame.time or 0.0) - offset
                        if 0 < lead < (duration_s or 3600):
                            buf = np.zeros(int(lead * RATE), dtype=np.int32)
                    for rf in resampler.resample(frame):
                        buf = _take(np.concatenate([buf, _abs(rf)]), step, out)
                    if len(out) > 2 * MAX_BUCKETS:  # longer than the probe said: widen the buckets
                        out, step = _halve(out), step * 2
                for rf in resampler.resample(None):
                    buf = _take(np.concatenate([buf, _abs(rf)]), step, out)
            except (av.error.FFmpegError, EOFError, ValueError) as exc:
                damaged = _why(exc)
    except (av.error.FFmpegError, OSError, EOFError, ValueError) as exc:
        if not out:
            return {"version": FORMAT, "peaks": [], "reason": f"The sound of this file could not be read: {_why(exc)}."}
        damaged = _why(exc)
    if len(buf) > step // 4:  # a last part-bucket worth drawing
        out.append(_level(int(buf.max())))
    while len(out) > MAX_BUCKETS:
        out, step = _halve(out), step * 2
    if not started:
        why = f"The sound of this file could not be decoded: {damaged}." if damaged else \
            "The sound stream of this file holds no sound that could be decoded."
        return {"version": FORMAT, "peaks": [], "reason": why}
    result: dict[str, Any] = {"version": FORMAT, "bucket_s": step / RATE, "peaks": out}
    if damaged:
        result["damaged"] = True
        result["reason"] = (f"The sound breaks off after {len(out) * step / RATE:.1f} s (damaged data: {damaged}); "
                            "the waveform shows what could be decoded.")
    return result


def _abs(rf: Any) -> np.ndarray:
    # int32 before abs: abs(-32768) does not fit in int16
    return np.abs(rf.to_ndarray().reshape(-1).astype(np.int32))


def _take(buf: np.ndarray, step: int, out: list[int]) -> np.ndarray:
    """Append the peak of each whole bucket in ``buf`` to ``out``; give back the rest."""
    whole = len(buf) // step
    if whole:
        out.extend(_level(int(v)) for v in buf[: whole * step].reshape(whole, step).max(axis=1))
    return buf[whole * step:]


def _level(v: int) -> int:
    return min(255, round(v * 255 / 32767))


def _halve(out: list[int]) -> list[int]:
    return [max(out[i:i + 2]) for i in range(0, len(out), 2)]


def _why(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc).strip().rstrip(".")
    return text[:200] or type(exc).__name__


def dumps(result: dict[str, Any]) -> bytes:
    """The result as compact JSON, as cached and served."""
    return json.dumps(result, separators=(",", ":")).encode()


def cached(raw: bytes) -> dict[str, Any] | None:
    """A cached result, or None when it is unreadable or of another format (computed again)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("version") == FORMAT else None


def cache_path(case: Any, sha256: str) -> Any:
    return case.reports / "peaks" / f"{sha256}.json"


def for_object(case: Any, sha256: str) -> dict[str, Any]:
    """The waveform of one stored object, from the cache under ``reports/peaks`` or decoded and cached there
    (written to a ``.part`` file, then moved into place, so a reader never sees half of one). An encrypted
    case keeps no plaintext derivatives on disk: its waveforms are decoded each time (the web app keeps them
    in memory)."""
    from custodes.store.db import MediaProbe

    path = cache_path(case, sha256)
    if not case.keys and path.is_file():
        doc = cached(path.read_bytes())
        if doc is not None:
            return doc
    with case.sessions() as s:
        m = s.get(MediaProbe, sha256)
        duration = float(m.duration_s or 0) if m is not None else 0.0
        no_audio = m is not None and m.status in ("ok", "damaged") and not m.audio_codec
    doc = {"version": FORMAT, "peaks": [], "reason": NO_SOUND} if no_audio else \
        peaks(case.store.media_ref(sha256), duration)
    if not case.keys:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(dumps(doc))
        tmp.replace(path)
    return doc


def precompute(case: Any, shas: Iterable[str]) -> dict[str, int]:
    """Decode and cache the waveforms of ``shas`` (a batch step after triage, so the first reviewer to open a
    long file does not wait); those already cached are left. Counts: computed, cached, without sound."""
    counts = {"computed": 0, "cached": 0, "no_sound": 0}
    if case.keys:  # nothing may be cached on disk for an encrypted case
        return counts
    for sha in shas:
        path = cache_path(case, sha)
        if path.is_file() and cached(path.read_bytes()) is not None:
            counts["cached"] += 1
            continue
        doc = for_object(case, sha)
        counts["computed"] += 1
        counts["no_sound"] += not doc["peaks"]
    return counts

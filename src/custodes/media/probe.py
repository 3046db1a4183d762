"""Container metadata through PyAV, and an honest verdict on whether it decodes.

A probe opens the file, lists its streams, decodes the first video frame and a
frame near the declared end. A file that opens but cannot be decoded to its
end is ``damaged`` (typically truncated); one that cannot be opened is
``unreadable``; both keep their reason. Probing never modifies the object.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from custodes.media.source import MediaRef, av_source, ref_name

PROBE_VERSION = "probe-1"
MEDIA_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".ts", ".3gp", ".wmv", ".flv",
    ".mpg", ".mpeg", ".dav", ".h264", ".264", ".asf", ".wav", ".mp3", ".m4a", ".aac", ".ogg", ".opus",
}
DEVICE_TAG_HINTS = ("make", "model", "serial", "device", "camera", "encoder", "location", "creation_time",
                    "comment", "title", "handler", "vendor", "software", "com.apple")


@dataclass
class ProbeResult:
    status: str  # ok | damaged | unreadable | not_media
    reason: str = ""
    container: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    creation_time: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    streams: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rate(value: Fraction | None) -> float | None:
    if not value:
        return None
    try:
        f = float(value)
    except (ZeroDivisionError, TypeError):
        return None
    return round(f, 3) if f > 0 else None


def _describe(exc: Exception) -> str:
    """The error without the store path PyAV appends (the object name is known anyway)."""
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).split(": '/")[0]


def _first_video_frame(container: Any, stream: Any) -> Any:
    for packet in container.demux(stream):
        for frame in packet.decode():
            return frame
    return None


def probe(path: MediaRef, name_hint: str | None = None) -> ProbeResult:
    """Probe the file at ``path``; ``name_hint`` (the original name) decides
    whether an unopenable file counts as broken media or simply not media."""
    ext = Path(name_hint or ref_name(path)).suffix.lower()
    looks_like_media = ext in MEDIA_EXTENSIONS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            container = av.open(av_source(path), mode="r", timeout=30)
    except Exception as exc:  # PyAV raises many error types for bad input
        if looks_like_media:
            return ProbeResult("unreadable", f"cannot open container: {_describe(exc)}")
        return ProbeResult("not_media", f"not a media file ({type(exc).__name__})")
    try:
        return _probe_open(container, looks_like_media)
    finally:
        with contextlib.suppress(Exception):
            container.close()


def _probe_open(container: Any, looks_like_media: bool) -> ProbeResult:
    fmt = container.format.name if container.format else None
    res = ProbeResult("ok", container=fmt)
    res.tags = {str(k): str(v) for k, v in (container.metadata or {}).items()}
    if container.duration is not None and container.duration > 0:
        res.duration_s = round(container.duration / 1_000_000, 3)
    video = audio = None
    for s in container.streams:
        info: dict[str, Any] = {"index": s.index, "type": s.type,
                                "codec": s.codec_context.name if s.codec_context else None}
        if s.duration and s.time_base:
            info["duration_s"] = round(float(s.duration * s.time_base), 3)
        if s.metadata:
            info["tags"] = {str(k): str(v) for k, v in s.metadata.items()}
        if s.type == "video":
            info.update(width=s.codec_context.width, height=s.codec_context.height,
                        fps=_rate(s.average_rate) or _rate(s.guessed_rate), frames=s.frames or None)
            video = video or s
        elif s.type == "audio":
            info.update(sample_rate=s.codec_context.sample_rate, channels=s.codec_context.channels)
            audio = audio or s
        res.streams.append(info)
    if video is None and audio is None:
        if fmt in ("image2", "png_pipe", "jpeg_pipe", "tty") or not looks_like_media:
            return ProbeResult("not_media", f"no audio or video streams (format {fmt})", container=fmt)
        res.status, res.reason = "unreadable", "container has no audio or video streams"
        return res
    if audio is not None:
        res.audio_codec = audio.codec_context.name
    if video is not None:
        res.video_codec = video.codec_context.name
        res.width, res.height = video.codec_context.width or None, video.codec_context.height or None
        res.fps = _rate(video.average_rate) or _rate(video.guessed_rate)
        if res.duration_s is None and video.duration and video.time_base:
            res.duration_s = round(float(video.duration * video.time_base), 3)
    ct = res.tags.get("creation_time")
    if not ct:
        for s in res.streams:
            ct = s.get("tags", {}).get("creation_time")
            if ct:
                break
    res.creation_time = ct
    res.tags = {k: v for k, v in res.tags.items() if any(h in k.lower() for h in DEVICE_TAG_HINTS)} or res.tags

    if video is not None:
        try:
            first = _first_video_frame(container, video)
        except Exception as exc:
            res.status, res.reason = "unreadable", f"first video frame does not decode: {_describe(exc)}"
            return res
        if first is None:
            res.status, res.reason = "unreadable", "no decodable video frames"
            return res
        if res.duration_s and res.duration_s > 2:
            res.status, res.reason = _check_tail(container, video, res.duration_s)
    return res


def _check_tail(container: Any, video: Any, duration_s: float) -> tuple[str, str]:
    """Decode near the declared end: a truncated recording fails or stops short."""
    target = max(0.0, duration_s - 1.5)
    last_t = None
    try:
        container.seek(int(target / video.time_base), stream=video, backward=True, any_frame=False)
        for packet in container.demux(video):
            for frame in packet.decode():
                if frame.time is not None:
                    last_t = frame.time
            if last_t is not None and last_t >= target:
                break
    except Exception as exc:
        return "damaged", f"decoding fails near the end ({_describe(exc)}); recording may be truncated"
    if last_t is None:
        return "damaged", f"no frames decode after {target:.1f}s of a declared {duration_s:.1f}s: truncated"
    if last_t < duration_s - 5:
        return "damaged", f"decodes only to {last_t:.1f}s of a declared {duration_s:.1f}s: truncated"
    return "ok", ""

"""Container metadata through PyAV, and an honest verdict on whether it decodes.

A probe opens the file, lists its streams, decodes the first video frame and a
frame near the declared end. A file that opens but cannot be decoded to its
end is ``damaged`` (typically truncated); one that cannot be opened is
``unreadable``; both keep their reason. Probing never modifies the object.

Hostile input is the normal case here (leaked drives, damaged cards): a probe
never raises. What it calls media is decided by the bytes, never by a name,
and must look like a recording (a picture size, a sample rate, something that
decodes, more than a blink long); frames too large to decode safely are
refused before a single one is decoded.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from custodes.media.source import MediaRef, av_source, frame_size_refusal, limit_decoder, open_source, ref_name

# probe-2: never raises; formats by content only; implausible streams, noise and oversized frames refused
PROBE_VERSION = "probe-2"
MEDIA_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mts", ".m2ts", ".ts", ".3gp", ".wmv", ".flv",
    ".mpg", ".mpeg", ".dav", ".h264", ".264", ".asf", ".wav", ".mp3", ".m4a", ".aac", ".ogg", ".opus",
}
DEVICE_TAG_HINTS = ("make", "model", "serial", "device", "camera", "encoder", "location", "creation_time",
                    "comment", "title", "handler", "vendor", "software", "com.apple")
# Sound shorter than this is not a recording but noise some demuxer accepted
MIN_DURATION_S = 0.05
# Not camera or sound recordings, and their demuxers take nearly any bytes (ANSI art, BinText, karaoke graphics)
NOT_FOOTAGE_FORMATS = {"tty", "bin", "xbin", "adf", "idf", "cdg"}


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


def _first_frame(container: Any, stream: Any) -> Any:
    for packet in container.demux(stream):
        for frame in packet.decode():
            return frame
    return None


class _Unnamed:
    """A file PyAV reads by content alone (it hands a file object's ``name`` to FFmpeg as the URL)."""

    name = ""

    def __init__(self, path: str) -> None:
        self._f = open(path, "rb")  # closed by probe, after the container

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()


def probe(path: MediaRef, name_hint: str | None = None) -> ProbeResult:
    """Probe the file at ``path``; ``name_hint`` (the original name) decides
    whether an unreadable file counts as broken media or simply not media."""
    ext = Path(name_hint or ref_name(path)).suffix.lower()
    looks_like_media = ext in MEDIA_EXTENSIONS
    source = av_source(path)
    fh = None
    try:
        if isinstance(source, str):
            # a nameless file object, not the path: FFmpeg would let the name's extension pick the demuxer, and
            # dozens of raw formats (g729, cdg, pcm ...) read any bytes named after them as "ok" media
            fh = source = _Unnamed(source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            container = open_source(source)
    except Exception as exc:  # PyAV raises many error types for bad input
        if fh is not None:
            fh.close()
        if looks_like_media:
            return ProbeResult("unreadable", f"cannot open container: {_describe(exc)}")
        return ProbeResult("not_media", f"not a media file ({type(exc).__name__})")
    try:
        return _probe_open(container, looks_like_media)
    except Exception as exc:  # a poison file must not stop the ingest: its failure is its verdict
        return ProbeResult("damaged", f"the file opens but its structure cannot be read ({type(exc).__name__}: "
                                      f"{_describe(exc)}); kept as stored")
    finally:
        with contextlib.suppress(Exception):
            container.close()
        if fh is not None:
            fh.close()


def _implausible(s: Any) -> str | None:
    """Why a stream is not usable as picture or sound (None when it is)."""
    cc = s.codec_context
    if cc is None:
        return f"{s.type} stream {s.index} has no known codec (its description in the file is damaged)"
    if s.type == "video" and not (cc.width and cc.height):
        return f"video stream {s.index} has no picture size"
    # 768 kHz and 64 channels bound any real recording; noise claims 847 MHz, and resampling that allocates GBs
    if s.type == "audio" and not (0 < (cc.sample_rate or 0) <= 768_000 and 0 < (cc.channels or 0) <= 64):
        return f"audio stream {s.index} has no plausible sample rate or channels ({cc.sample_rate} Hz, {cc.channels})"
    return None


def _probe_open(container: Any, looks_like_media: bool) -> ProbeResult:
    fmt = container.format.name if container.format else None
    res = ProbeResult("ok", container=fmt)
    res.tags = {str(k): str(v) for k, v in (container.metadata or {}).items()}
    if container.duration is not None and container.duration > 0:
        res.duration_s = round(container.duration / 1_000_000, 3)
    if fmt in NOT_FOOTAGE_FORMATS:
        return ProbeResult("not_media", f"reads only as {fmt}, which is not a camera or sound recording",
                           container=fmt)
    video = audio = None
    unusable: list[str] = []  # streams that name a type but carry nothing decodable
    for s in container.streams:
        cc = s.codec_context
        info: dict[str, Any] = {"index": s.index, "type": s.type, "codec": cc.name if cc else None}
        if s.duration and s.time_base:
            info["duration_s"] = round(float(s.duration * s.time_base), 3)
        if s.metadata:
            info["tags"] = {str(k): str(v) for k, v in s.metadata.items()}
        if s.type == "video":
            info.update(width=cc.width if cc else None, height=cc.height if cc else None,
                        fps=_rate(s.average_rate) or _rate(s.guessed_rate), frames=s.frames or None)
        elif s.type == "audio":
            info.update(sample_rate=cc.sample_rate if cc else None, channels=cc.channels if cc else None)
        res.streams.append(info)
        if s.type in ("video", "audio"):
            why = _implausible(s)
            if why:
                unusable.append(why)
            elif s.type == "video":
                video = video or s
            else:
                audio = audio or s
    if video is None and audio is None:
        if unusable:
            # typed streams, none usable: a damaged index (or noise a demuxer took for one)
            res.status = "damaged" if looks_like_media else "not_media"
            res.reason = "; ".join(unusable[:3]) + ": nothing in it can be decoded"
            return res
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

    noise = "unreadable" if looks_like_media else "not_media"
    if video is not None:
        refusal = frame_size_refusal(res.width, res.height)
        if refusal:  # decided before decoding anything: one such frame is hundreds of MB
            res.status, res.reason = "unreadable", refusal
            return res
        limit_decoder(video)
        try:
            first = _first_frame(container, video)
        except Exception as exc:
            res.status, res.reason = "unreadable", f"first video frame does not decode: {_describe(exc)}"
            return res
        if first is None:
            res.status, res.reason = "unreadable", "no decodable video frames"
            return res
        if res.duration_s and res.duration_s > 2:
            res.status, res.reason = _check_tail(container, video, res.duration_s)
    else:
        # sound alone: it must last and its first frame must decode, or random bytes pass as raw audio
        if res.duration_s is not None and res.duration_s < MIN_DURATION_S:
            res.status, res.reason = noise, f"lasts {res.duration_s:.3f} s: too short to be a recording"
            return res
        try:
            first = _first_frame(container, audio)
        except Exception as exc:
            res.status, res.reason = noise, f"first audio frame does not decode: {_describe(exc)}"
            return res
        if first is None:
            res.status, res.reason = noise, "no decodable audio"
            return res
    if unusable and res.status == "ok":
        res.status, res.reason = "damaged", "; ".join(unusable[:3]) + "; the rest decodes"
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

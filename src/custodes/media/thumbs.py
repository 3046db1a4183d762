"""Thumbnails and contact sheets (JPEG), decoded from the original, never stored as evidence."""

from __future__ import annotations

import io
import threading
from typing import Any

import av
from PIL import Image, ImageDraw

from custodes.media.source import MediaRef, av_source, frame_size_refusal, limit_decoder, open_source

# Decodes for pictures at once, process-wide: each holds a decoder's frames, and a review app serving many
# thumbnail requests must not hold one set per request (four 16000x9000 frames at once took 7.2 GB)
MAX_CONCURRENT_DECODES = 2
_decodes = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)


def frame_at(path: MediaRef, t: float, width: int = 320) -> Image.Image | None:
    """The frame at ``t`` s, ``width`` pixels wide; None when there is none to show (no video, a frame
    size beyond what is decoded, damaged data)."""
    with _decodes:
        try:
            return _frame_at(path, t, width)
        except (av.error.FFmpegError, OSError, EOFError, ValueError):  # an unreadable file has no picture, not an error
            return None


def picture_stream(c: Any) -> tuple[Any, float] | None:
    """The first video stream of an open container, set up for taking a few pictures, and its time base;
    None when there is none or its frames are too large to decode."""
    if not c.streams.video:
        return None
    vs = c.streams.video[0]
    cc = vs.codec_context
    if cc is None or frame_size_refusal(cc.width, cc.height):
        return None
    limit_decoder(vs)
    # one decoder thread: frame threads each hold frames of their own, and a picture needs one frame
    cc.thread_count = 1
    return vs, float(vs.time_base or 0) or 1e-6


def scaled(frame: Any, width: int) -> Image.Image | None:
    """A decoded frame as a picture ``width`` wide, scaled by libswscale straight from the decoder's YUV (never a
    full-size RGB copy); None when the frame is too large (a stream may change size midway)."""
    if frame_size_refusal(frame.width, frame.height):
        return None
    height = max(2, int(frame.height * width / max(1, frame.width)))
    return frame.reformat(width=width, height=height, format="rgb24").to_image()


def _frame_at(path: MediaRef, t: float, width: int) -> Image.Image | None:
    with open_source(av_source(path)) as c:
        if (stream := picture_stream(c)) is None:
            return None
        vs, tb = stream
        c.seek(int(max(0.0, t) / tb), stream=vs, backward=True)
        for frame in c.decode(vs):
            if frame.time is None or frame.time >= t - 0.05:
                return scaled(frame, width)
    return None


def jpeg(img: Image.Image, quality: int = 80) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def contact_sheet(path: MediaRef, duration: float, n: int = 12, cols: int = 4, width: int = 200) -> Image.Image | None:
    """``n`` frames spread over the video in a grid, each stamped with its time."""
    times = [duration * (i + 0.5) / n for i in range(n)] if duration > 0 else [0.0]
    frames: list[tuple[float, Image.Image]] = []
    for t in times:
        f = frame_at(path, t, width)
        if f is not None:
            frames.append((t, f))
    return tile(frames, cols, width)


def tile(frames: list[tuple[float, Image.Image]], cols: int, width: int) -> Image.Image | None:
    """Frames (time, picture) laid out ``cols`` to a row, each labelled with its time (m:ss)."""
    if not frames:
        return None
    h = max(f.height for _, f in frames)
    rows = (len(frames) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * width, rows * h), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    for i, (t, f) in enumerate(frames):
        x, y = (i % cols) * width, (i // cols) * h
        sheet.paste(f, (x, y))
        m, s = divmod(int(t), 60)
        draw.rectangle([x, y + h - 16, x + 44, y + h], fill=(0, 0, 0))
        draw.text((x + 3, y + h - 14), f"{m}:{s:02d}", fill=(255, 255, 255))
    return sheet

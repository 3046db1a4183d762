"""Thumbnails and contact sheets (JPEG), decoded from the original, never stored as evidence."""

from __future__ import annotations

import io

import av
from PIL import Image, ImageDraw

from custodes.media.source import MediaRef, av_source


def frame_at(path: MediaRef, t: float, width: int = 320) -> Image.Image | None:
    with av.open(av_source(path)) as c:
        if not c.streams.video:
            return None
        vs = c.streams.video[0]
        tb = float(vs.time_base or 0) or 1e-6
        c.seek(int(max(0.0, t) / tb), stream=vs, backward=True)
        try:
            for frame in c.decode(vs):
                if frame.time is None or frame.time >= t - 0.05:
                    img = frame.to_image()
                    return img.resize((width, max(2, int(img.height * width / img.width))))
        except (av.error.FFmpegError, EOFError):
            return None
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

"""Make near-duplicate variants of a clip, for tests and benchmarks: the copies a leak produces."""

from __future__ import annotations

from pathlib import Path

import av

from custodes.media.source import av_source
from custodes.media.synth import transcode

VARIANTS = ("reencode", "360p", "cut", "grey")


def make_variants(src: Path, out_dir: Path) -> dict[str, Path]:
    with av.open(av_source(src)) as c:
        v = c.streams.video[0]
        w, h = v.codec_context.width, v.codec_context.height
        dur = (c.duration or 0) / 1e6
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = src.stem
    h360 = 360 if h > 360 else max(120, h // 2 * 2 // 2 * 2 // 2)  # a smaller copy either way
    w360 = max(2, int(round(w * h360 / h / 2)) * 2)
    return {
        "reencode": transcode(src, out_dir / f"{stem}_reencode.mp4", w // 2 * 2, h // 2 * 2, crf=32),
        "360p": transcode(src, out_dir / f"{stem}_360p.mp4", w360, h360 // 2 * 2, crf=30),
        "cut": transcode(src, out_dir / f"{stem}_cut.mp4", w // 2 * 2, h // 2 * 2, crf=26,
                         start_s=dur * 0.2, duration_s=dur * 0.6),
        "grey": transcode(src, out_dir / f"{stem}_grey.mp4", w // 2 * 2, h // 2 * 2, crf=28, grey=True),
    }

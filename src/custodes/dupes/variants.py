"""Make near-duplicate variants of a clip, for tests and benchmarks: the copies a leak produces.

Every variant is a new file made from the decoded frames of the source (the source is only read).
``make_variants(src, out, names)`` writes ``<stem>_<name>.mp4`` for each name in ``names``.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from custodes.media.source import av_source

VARIANTS = ("reencode", "360p", "cut", "grey")  # the original four (what the tests of the basic index use)
ALL_VARIANTS = ("reencode", "360p", "cut", "grey", "crop80", "crop60", "pad", "pad916", "flip", "text",
                "rotate3", "speed125", "screen")

Frame = np.ndarray  # RGB uint8 (h, w, 3)


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def _centre_crop(img: Frame, s: float) -> Frame:
    h, w = img.shape[:2]
    dy, dx = int(round(h * (1 - s) / 2)), int(round(w * (1 - s) / 2))
    return img[dy:h - dy, dx:w - dx]


def _pad(img: Frame, out_w: int, out_h: int) -> Frame:
    """Fit the picture inside out_w × out_h on black (letterbox / pillarbox)."""
    h, w = img.shape[:2]
    s = min(out_w / w, out_h / h)
    nw, nh = _even(w * s) if w * s < out_w else out_w, _even(h * s) if h * s < out_h else out_h
    canvas = np.zeros((out_h, out_w, 3), np.uint8)
    y, x = (out_h - nh) // 2, (out_w - nw) // 2
    canvas[y:y + nh, x:x + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
    return canvas


def _border(img: Frame, share: float) -> Frame:
    """A black border of ``share`` of the frame on every side, the picture shrunk to fit (same frame size)."""
    h, w = img.shape[:2]
    inner = cv2.resize(img, (_even(w * (1 - 2 * share)), _even(h * (1 - 2 * share))), interpolation=cv2.INTER_AREA)
    canvas = np.zeros_like(img)
    y, x = (h - inner.shape[0]) // 2, (w - inner.shape[1]) // 2
    canvas[y:y + inner.shape[0], x:x + inner.shape[1]] = inner
    return canvas


def _text(img: Frame, t: float) -> Frame:
    """A news channel's re-post: a caption bar along the bottom with text, a logo in the top corner."""
    out = img.copy()
    h, w = out.shape[:2]
    bar = int(h * 0.14)
    out[h - bar:] = (out[h - bar:].astype(np.float32) * 0.35).astype(np.uint8)
    cv2.putText(out, "BREAKING: footage from inside the facility", (int(w * 0.03), h - bar // 3),
                cv2.FONT_HERSHEY_SIMPLEX, h / 520, (255, 255, 255), max(1, h // 240), cv2.LINE_AA)
    lw, lh = int(w * 0.14), int(h * 0.1)
    cv2.rectangle(out, (int(w * 0.03), int(h * 0.03)), (int(w * 0.03) + lw, int(h * 0.03) + lh), (200, 30, 30), -1)
    cv2.putText(out, "NEWS 24", (int(w * 0.04), int(h * 0.03) + int(lh * 0.7)), cv2.FONT_HERSHEY_SIMPLEX,
                h / 700, (255, 255, 255), max(1, h // 200), cv2.LINE_AA)
    return out


def _rotate(img: Frame, deg: float) -> Frame:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), borderValue=(0, 0, 0))


def _screen(img: Frame, t: float) -> Frame:
    """Filmed off a monitor: the screen seen slightly from the side (perspective) in a dark room, with
    the moiré of the camera's sensor grid against the screen's pixels, softer and with a colour cast."""
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    dst = np.array([[w * 0.09, h * 0.08], [w * 0.93, h * 0.11], [w * 0.95, h * 0.91], [w * 0.07, h * 0.94]],
                   dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(img, m, (w, h), borderValue=(18, 18, 22)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    moire = 1.0 + 0.10 * np.sin(2 * np.pi * (xx * np.cos(0.3) + yy * np.sin(0.3)) / 3.3 + t * 3.0)
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), m, (w, h))[..., None]
    out = warped * (1 + (moire[..., None] - 1) * mask)
    out = cv2.GaussianBlur(out, (3, 3), 0) * np.array([0.92, 1.0, 1.08], dtype=np.float32) * 0.9 + 8
    return np.clip(out, 0, 255).astype(np.uint8)


def _recode(src: Path, dst: Path, fn: Callable[[Frame, float], Frame], *, bitrate: int | None = None,
            crf: int = 26, start_s: float = 0.0, duration_s: float | None = None, speed: float = 1.0) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(av_source(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        fps = Fraction(vin.average_rate or 10)
        vs = None
        for frame in inp.decode(vin):
            t = frame.time or 0.0
            if t < start_s:
                continue
            if duration_s is not None and t >= start_s + duration_s:
                break
            img = fn(frame.to_ndarray(format="rgb24"), t)
            if vs is None:
                rate = fps * Fraction(speed).limit_denominator(100)
                vs = out.add_stream("libx264", rate=rate)
                vs.width, vs.height, vs.pix_fmt = _even(img.shape[1]) if img.shape[1] % 2 else img.shape[1], \
                    _even(img.shape[0]) if img.shape[0] % 2 else img.shape[0], "yuv420p"
                if bitrate:
                    vs.bit_rate = bitrate
                    vs.options = {"preset": "veryfast"}
                else:
                    vs.options = {"preset": "veryfast", "crf": str(crf)}
            if img.shape[1] != vs.width or img.shape[0] != vs.height:
                img = cv2.resize(img, (vs.width, vs.height), interpolation=cv2.INTER_AREA)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(pkt)
        if vs is not None:
            for pkt in vs.encode():
                out.mux(pkt)
    return dst


def make_variants(src: Path, out_dir: Path, names: tuple[str, ...] = VARIANTS) -> dict[str, Path]:
    with av.open(av_source(src)) as c:
        v = c.streams.video[0]
        w, h = v.codec_context.width, v.codec_context.height
        dur = (c.duration or 0) / 1e6
    h360 = 360 if h > 360 else max(120, h // 2)  # a smaller copy either way
    w360 = _even(w * h360 / h)
    same: Callable[[Frame, float], Frame] = lambda im, t: im  # noqa: E731
    makers: dict[str, Callable[[Path], Path]] = {
        "reencode": lambda p: _recode(src, p, same, bitrate=100_000),
        "360p": lambda p: _recode(src, p, lambda im, t: cv2.resize(im, (w360, _even(h360)),
                                                                  interpolation=cv2.INTER_AREA), crf=30),
        "cut": lambda p: _recode(src, p, same, start_s=dur * 0.2, duration_s=dur * 0.6),
        "grey": lambda p: _recode(src, p, lambda im, t: np.repeat(
            cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2), crf=28),
        "crop80": lambda p: _recode(src, p, lambda im, t: _centre_crop(im, 0.8)),
        "crop60": lambda p: _recode(src, p, lambda im, t: _centre_crop(im, 0.6)),
        "pad": lambda p: _recode(src, p, lambda im, t: _border(im, 0.1)),
        "pad916": lambda p: _recode(src, p, lambda im, t: _pad(im, _even(h * 9 / 16 * 1.5), _even(h * 1.5))),
        "flip": lambda p: _recode(src, p, lambda im, t: np.ascontiguousarray(im[:, ::-1])),
        "text": lambda p: _recode(src, p, _text),
        "rotate3": lambda p: _recode(src, p, lambda im, t: _rotate(im, 3.0)),
        "speed125": lambda p: _recode(src, p, same, speed=1.25),
        "screen": lambda p: _recode(src, p, _screen, crf=24),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    return {n: makers[n](out_dir / f"{src.stem}_{n}.mp4") for n in names}

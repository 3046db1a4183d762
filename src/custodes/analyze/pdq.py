"""Frame fingerprints: PDQ (Facebook's perceptual hash, via ``pdqhash``) on sampled frames.

PDQ works on luminance and survives re-encoding, scaling and greyscale. A
video is sampled at a rate that gives short clips enough frames (up to 5 per
second) and long ones one per second.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from custodes.media.source import MediaRef, av_source

VERSION = "pdq-2"  # 2: PDQF kept for the TMK video fingerprint
MIN_QUALITY = 50  # PDQ's own quality score: flat frames (black, blown out) match everything
BANDS = 16  # 256 bits = 16 bands of 16 bits; a frame within 15 bits shares a band exactly


def sample_rate(duration_s: float) -> float:
    return float(np.clip(16.0 / max(duration_s, 0.1), 1.0, 5.0))


def frame_hashes(path: MediaRef, duration_s: float,
                 floats: list[np.ndarray] | None = None) -> list[tuple[float, bytes, int]]:
    """(time, 32-byte hash, quality) for sampled frames; PDQF vectors appended to ``floats`` if given."""
    import pdqhash

    step = 1.0 / sample_rate(duration_s)
    out: list[tuple[float, bytes, int]] = []
    next_t = 0.0
    scaler = VideoReformatter()  # one for the pass: frame.reformat builds a new scaler per frame
    with av.open(av_source(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
        try:
            for frame in c.decode(vs):
                if frame.time is None:
                    continue
                t = frame.time - t0
                if t + 1e-6 < next_t:
                    continue
                next_t = t + step
                w = min(frame.width, 320)
                h = max(2, int(round(frame.height * w / frame.width / 2)) * 2)
                img = scaler.reformat(frame, width=w, height=h, format="rgb24").to_ndarray()
                if floats is not None:
                    vec, quality = pdqhash.compute_float(img)
                    floats.append(np.asarray(vec, dtype=np.float32))
                    bits = (np.asarray(vec) > np.median(vec)).astype(np.uint8)  # PDQ = PDQF thresholded at its median
                else:
                    bits, quality = pdqhash.compute(img)
                out.append((round(t, 3), np.packbits(bits.astype(np.uint8)).tobytes(), int(quality)))
        except (av.error.FFmpegError, EOFError):
            pass  # damaged tail: keep what decoded
    return out


def bands(h: bytes) -> list[int]:
    return [int.from_bytes(h[2 * i:2 * i + 2], "big") for i in range(BANDS)]


def as_words(hashes: list[bytes]) -> np.ndarray:
    """(n, 4) uint64 view for fast Hamming distances."""
    if not hashes:
        return np.zeros((0, 4), dtype=np.uint64)
    return np.frombuffer(b"".join(hashes), dtype=">u8").astype(np.uint64).reshape(-1, 4)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All-pairs Hamming distances between (n,4) and (m,4) uint64 arrays → (n, m)."""
    x = a[:, None, :] ^ b[None, :, :]
    return np.unpackbits(x.view(np.uint8), axis=-1).reshape(len(a), len(b), -1).sum(-1)

"""Frame fingerprints: PDQ (Facebook's perceptual hash, via ``pdqhash``) on sampled frames.

PDQ works on luminance and survives re-encoding, scaling and greyscale. A
video is sampled at a rate that gives short clips enough frames (up to 5 per
second) and long ones one per second.

What a re-post does to a picture that PDQ alone does not survive is handled
before hashing and by hashing more than one *view* of each frame:

* constant borders (letterbox, pillarbox, a phone's 9:16 padding, the dark
  surround of a filmed monitor) are found over the first sampled frames of the
  clip and cut off, so the hash sees only the picture;
* each frame is hashed as it is, mirrored, and as its centre 80 % and 60 %
  (a cropped or zoomed copy is the centre of its source; a caption or logo
  along the edges is outside the centre 60 %).

A frame's stored hash is the concatenation of its views' 32-byte hashes, in
the order of ``VIEWS``; hashes written before views existed are 32 bytes (one
view) and still compare.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from custodes.media.source import MediaRef, av_source

VERSION = "pdq-4"  # 2: PDQF for TMK; 3: borders stripped, four views per frame; 4: thin borders in centre views
MIN_QUALITY = 50  # PDQ's own quality score: flat frames (black, blown out) match everything
HASH_BYTES = 32
VIEWS = ("whole", "mirrored", "centre 80 %", "centre 60 %")
CENTRE = {2: 0.8, 3: 0.6}  # view → linear share of the (border-stripped) frame kept
BANDS = 8  # 256 bits = 8 bands of 32 bits for the candidate index (see custodes.dupes.index)
BORDER_FRAMES = 24  # sampled frames over which borders are found
BORDER_STD = 6.0  # a border line's pixels vary less than this (over the line and over time)
MAX_BORDER = 0.42  # share of the frame one side's border may take at most
SMALL_BORDER = 0.12  # borders thinner than this (both sides together) leave the centre views on the whole frame


def sample_rate(duration_s: float) -> float:
    return float(np.clip(16.0 / max(duration_s, 0.1), 1.0, 5.0))


def find_borders(greys: np.ndarray) -> tuple[int, int, int, int]:
    """Constant borders (top, bottom, left, right, in pixels) of (n, h, w) grey frames of one clip.

    A border line is one whose pixels have one value, over the line and over all the frames (black bars,
    a uniform padding colour); the scan stops at the first line that carries picture. A frame that is
    flat all over has no borders (nothing to find them against)."""
    g = greys.astype(np.float32)
    n, h, w = g.shape
    rows = g.transpose(1, 0, 2).reshape(h, -1).std(axis=1) < BORDER_STD
    cols = g.transpose(2, 0, 1).reshape(w, -1).std(axis=1) < BORDER_STD
    if rows.all() or cols.all():
        return 0, 0, 0, 0

    def run(flags: np.ndarray, limit: int) -> int:
        k = 0
        while k < limit and flags[k]:
            k += 1
        return k

    top, bottom = run(rows, int(h * MAX_BORDER)), run(rows[::-1], int(h * MAX_BORDER))
    left, right = run(cols, int(w * MAX_BORDER)), run(cols[::-1], int(w * MAX_BORDER))
    return top, bottom, left, right


def view_images(img: np.ndarray) -> list[np.ndarray]:
    """The picture as each of ``VIEWS`` sees it (img: border-stripped RGB)."""
    h, w = img.shape[:2]
    out = [img, np.ascontiguousarray(img[:, ::-1])]
    for v in (2, 3):
        s = CENTRE[v]
        dy, dx = int(round(h * (1 - s) / 2)), int(round(w * (1 - s) / 2))
        out.append(np.ascontiguousarray(img[dy:h - dy, dx:w - dx]))
    return out


def frame_hashes(path: MediaRef, duration_s: float, floats: list[np.ndarray] | None = None,
                 info: dict | None = None) -> list[tuple[float, bytes, int]]:
    """(time, views × 32-byte hash, quality of the whole view) for sampled frames.

    PDQF vectors of the whole view are appended to ``floats`` if given; ``info`` receives the borders
    found (``borders``: top, bottom, left, right as shares of the frame) and the frame size."""
    import pdqhash

    step = 1.0 / sample_rate(duration_s)
    out: list[tuple[float, bytes, int]] = []
    pending: list[tuple[float, np.ndarray]] = []
    crop: tuple[int, int, int, int] | None = None
    size = (0, 0)

    def emit(t: float, img: np.ndarray) -> None:
        assert crop is not None
        top, bottom, left, right = crop
        h, w = img.shape[:2]
        pic = np.ascontiguousarray(img[top:h - bottom, left:w - right])
        views = view_images(pic)
        if max(top + bottom, 1) / h < SMALL_BORDER and max(left + right, 1) / w < SMALL_BORDER:
            # a thin band is part of the camera's picture (a recorder's black edge): a crop of the video
            # cuts it off with the rest, so the centre views are taken of the whole frame
            views[2:] = view_images(img)[2:]
        hashes = []
        quality = 0
        for v, view in enumerate(views):
            if v == 0 and floats is not None:
                vec, quality = pdqhash.compute_float(view)
                floats.append(np.asarray(vec, dtype=np.float32))
                bits = (np.asarray(vec) > np.median(vec)).astype(np.uint8)  # PDQ = PDQF thresholded at its median
            else:
                bits, q = pdqhash.compute(view)
                quality = q if v == 0 else quality
            hashes.append(np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes())
        out.append((round(t, 3), b"".join(hashes), int(quality)))

    def settle() -> None:
        nonlocal crop
        greys = np.stack([im.mean(axis=2) for _, im in pending]) if pending else np.zeros((1, 2, 2))
        crop = find_borders(greys)
        for t, im in pending:
            emit(t, im)
        pending.clear()

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
                size = (w, h)
                img = scaler.reformat(frame, width=w, height=h, format="rgb24").to_ndarray()
                if crop is None:
                    pending.append((t, img))
                    if len(pending) >= BORDER_FRAMES:
                        settle()
                else:
                    emit(t, img)
        except (av.error.FFmpegError, EOFError):
            pass  # damaged tail: keep what decoded
    if crop is None:
        settle()
    if info is not None and crop is not None and size[0]:
        w, h = size
        info["borders"] = [round(crop[0] / h, 3), round(crop[1] / h, 3), round(crop[2] / w, 3),
                           round(crop[3] / w, 3)]
    return out


def view_hash(h: bytes, view: int) -> bytes:
    """One view's 32 bytes of a stored frame hash (the whole view for hashes made before views)."""
    return h[HASH_BYTES * view:HASH_BYTES * (view + 1)] if len(h) >= HASH_BYTES * (view + 1) else b""


def bands(h: bytes) -> list[int]:
    """The 32-bit bands of one 32-byte hash."""
    return [int.from_bytes(h[4 * i:4 * i + 4], "big") for i in range(BANDS)]


def as_words(hashes: list[bytes]) -> np.ndarray:
    """(n, 4) uint64 view for fast Hamming distances."""
    if not hashes:
        return np.zeros((0, 4), dtype=np.uint64)
    return np.frombuffer(b"".join(hashes), dtype=">u8").astype(np.uint64).reshape(-1, 4)


_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All-pairs Hamming distances between (n,4) and (m,4) uint64 arrays → (n, m)."""
    x = a[:, None, :] ^ b[None, :, :]
    return _POP[x.view(np.uint8)].reshape(len(a), len(b), -1).sum(-1, dtype=np.int32)

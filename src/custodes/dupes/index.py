"""``custodes dupes``: clusters of copies, re-encodes, clips and re-posts, with each one's offset in its source
and what was done to it.

Exact duplicates are already one object with several provenance rows (ingest).
Near duplicates are found in four steps that never compare all pairs:

1. every video's sampled frames are PDQ-hashed after its constant borders are cut off, in four views
   (whole, mirrored, centre 80 %, centre 60 %: see ``custodes.analyze.pdq``);
2. the candidate search cuts each view's hash into 8 bands of 32 bits and joins equal bands (sort and
   group in memory: a hash join, never a pairwise scan); only view pairs that a transformation explains
   are joined — whole↔whole (re-encode, scale, borders, cut), whole↔mirrored (flip), whole↔centre
   (crop, zoom), centre 60 %↔centre 60 % (captions and logos along the edges). Band values shared by
   very many videos (black screens, a static corridor) are ignored like stop words. A coarse view (the 64
   lowest-frequency bits of the whole and of the centre 80 % views) is banded the same way, for rotated
   copies and screen recordings;
3. for each candidate pair of videos, frame times vote for an alignment ``t_b = rate · t_a + offset``
   (rate 1 or a common speed change); it is accepted when most of the shorter video's frames match at
   that alignment, and — where there is room to compare — clearly better than at other offsets (two
   recordings of one static scene match everywhere, a copy at one offset);
4. a verification on the pixels of a few aligned frame pairs (``custodes.dupes.verify``): local features
   register the pictures and what moves must agree, so two different moments of one fixed camera do not
   pair. It also measures the crop, rotation, perspective and overlays that each match reports.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from custodes.analyze import pdq, tmk
from custodes.dupes import verify as vf
from custodes.store.case import Case
from custodes.store.db import (
    AnalysisRun,
    FrameHash,
    HashBand,
    MediaProbe,
    Provenance,
    Recording,
    VideoFingerprint,
)

ANALYZER = "pdq"  # frame hashes and the TMK video fingerprint are made in one decoding pass
FRAME_MATCH_BITS = 31
NVIEWS = len(pdq.VIEWS)
# A fifth, virtual view: the 64 lowest-frequency bits of the whole view's PDQ (its 8×8 corner of DCT
# coefficients). They survive a few degrees of rotation and a filmed screen's perspective, where the whole
# 256 bits do not (3° turns ~50 bits); alone they also pair other moments of one camera, which the
# verification then refuses. Candidates: the 60 lowest frequencies (by i + j, DC left out) cut into bands
# whose width grows with the archive (log2 of its frame count less one, 12 to 20 bits: few chance hits per
# band value at any size), and a pair of videos needs COARSE_MIN_HITS shared band values. Measured on 6
# fight-surv sources: 12-bit bands link 92 % of screen recordings and rotated copies to a plain copy.
COARSE = NVIEWS
_II, _JJ = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
COARSE_BITS = (255 - (_II * 16 + _JJ)[:8, :8]).ravel()  # pdqhash writes the DCT's low corner last
COARSE_KEY_BITS = np.array([255 - (i * 16 + j) for _, i, j in sorted((i + j, i, j) for i in range(16)
                                                                     for j in range(16))[1:61]])
COARSE_MATCH_BITS = 10  # of 64
# The coarse bits are also taken of the centre 80 % view, and a frame pair's coarse distance is the closer of
# the two: a rotation's black corners and a filmed screen's edges fall outside the centre. Measured on the
# bench's 20 sources (frames at the copy's own time, share within 10 bits): rotate 3° whole 0.00-1.00, 6 of 20
# under half; centre 80 % 19 of 20 at >= 0.67; other clips' frame pairs within 10 bits 0.23 % whole, 0.11 %
# centre.
COARSE_CENTRE = 2
COARSE_MIN_HITS = 3
# view pairs the candidate search joins (unordered), and what each says about the two pictures
VIEW_PAIRS = {(0, 0): "same framing", (0, 1): "mirrored", (0, 2): "one is the centre 80 % of the other",
              (0, 3): "one is the centre 60 % of the other", (3, 3): "same centre (edges differ)",
              (COARSE, COARSE): "same coarse picture (rotated, perspective or filmed off a screen)"}
MAX_BUCKET_VIDEOS = 64  # a band value more videos share than this is a stop word
RATES = (1.0, 1.25, 0.8, 1.5, 1 / 1.5, 1.1, 1 / 1.1, 2.0, 0.5)
MIN_MATCH = 0.5  # share of the shorter video's frames that match at the chosen alignment (then verified)
MIN_CONTAINED = 0.8  # share of the shorter video's frames that fall inside the longer at that alignment
MIN_MARGIN_BITS = 4.0  # median frame distance at the offset vs at other offsets
MAX_VERIFY_TRIES = 3


def hash_videos(case: Case, progress: Callable[[int], None] = lambda n: None) -> int:
    case.ensure_schema()
    with case.sessions() as s:
        vids = s.execute(select(MediaProbe.sha256, MediaProbe.duration_s).where(
            MediaProbe.status.in_(("ok", "damaged")), MediaProbe.width.is_not(None))).all()
        done = {sha for (sha,) in s.execute(select(AnalysisRun.sha256).where(
            AnalysisRun.analyzer == ANALYZER, AnalysisRun.version == pdq.VERSION))}
    todo = [(sha, d) for sha, d in vids if sha not in done]
    for sha, dur in todo:
        err = ""
        floats: list[np.ndarray] = []
        info: dict[str, Any] = {}
        try:
            frames = pdq.frame_hashes(case.store.media_ref(sha), float(dur or 0), floats=floats, info=info)
        except Exception as exc:  # a hostile file must not stop the others
            frames, err = [], f"{type(exc).__name__}: {exc}"
        with case.sessions() as s:
            old = select(FrameHash.id).where(FrameHash.sha256 == sha)
            s.execute(delete(HashBand).where(HashBand.frame_id.in_(old)))  # bands of hashes before pdq-3
            s.execute(delete(FrameHash).where(FrameHash.sha256 == sha))
            s.execute(delete(AnalysisRun).where(AnalysisRun.sha256 == sha, AnalysisRun.analyzer == ANALYZER))
            s.execute(delete(VideoFingerprint).where(VideoFingerprint.sha256 == sha))
            if frames and len(floats) == len(frames):
                d = tmk.describe(np.array([t for t, _, _ in frames]), np.stack(floats))
                s.add(VideoFingerprint(sha256=sha, version=tmk.VERSION, frames=d.frames, data=_pack(d)))
            s.add_all(FrameHash(sha256=sha, t=t, hash=h, quality=q) for t, h, q in frames)
            s.add(AnalysisRun(sha256=sha, analyzer=ANALYZER, version=pdq.VERSION, status="failed" if err else "ok",
                              error=err, stats={"frames": len(frames), **info}, finished_at=datetime.now(UTC)))
            s.commit()
        progress(1)
    return len(todo)


def _pack(d: tmk.TMKDescriptor) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, mean=d.mean.astype(np.float16), cos=d.cos.astype(np.float16),
                        sin=d.sin.astype(np.float16), frames=np.array(d.frames))
    return buf.getvalue()


def _unpack(data: bytes) -> tmk.TMKDescriptor:
    z = np.load(io.BytesIO(data))
    return tmk.TMKDescriptor(z["mean"].astype(np.float64), z["cos"].astype(np.float64),
                             z["sin"].astype(np.float64), int(z["frames"]))


def tmk_scores(case: Case, a: str, b: str, max_offset_s: float) -> dict[str, float] | None:
    """Video-level TMK evidence for a pair: level-1 cosine, level-2 score and offset."""
    with case.sessions() as s:
        fa, fb = s.get(VideoFingerprint, a), s.get(VideoFingerprint, b)
    if fa is None or fb is None:
        return None
    da, db = _unpack(fa.data), _unpack(fb.data)
    score, offset = tmk.level2(da, db, max_offset_s)
    return {"tmk_level1": round(tmk.level1(da, db), 3), "tmk_level2": round(score, 3), "tmk_offset_s": offset}


@dataclass
class Match:
    """A near-duplicate pair: ``a`` (the shorter) lies in ``b`` at ``b_time = rate · a_time + offset_s``."""

    a: str
    b: str
    offset_s: float
    match: float  # share of a's frames matching at that alignment
    # how much closer frames are at this offset than at other offsets, in bits; null when the videos are
    # too short to compare other offsets (never Infinity: the JSON stays strict)
    margin_bits: float | None
    median_bits: float
    rate: float = 1.0  # b's frames per a's frame time (1.25: a plays 1.25× faster than b)
    views: str = "same framing"
    tmk: dict[str, float] | None = None
    transforms: list[str] = field(default_factory=list)  # in words, what makes a differ from b
    frames: list[dict[str, float]] = field(default_factory=list)  # matched frame times, for side-by-side review
    verification: dict[str, Any] | None = None


@dataclass
class _Video:
    t: np.ndarray  # (n,) seconds
    w: np.ndarray  # (n, NVIEWS, 4) uint64 hash words; views a hash lacks are all zero
    has: np.ndarray  # (NVIEWS,) bool: views present
    c: np.ndarray  # (n, 4) uint64: the coarse view (64 bits in the first word)
    cbits: np.ndarray  # (n, 60) uint8: the coarse view's candidate bits, lowest frequency first
    c2: np.ndarray  # (n, 4) uint64: the same coarse bits of the centre 80 % view (zero where it is missing)
    cbits2: np.ndarray  # (n, 60) uint8


_FIRST_BYTE = int(min(COARSE_BITS.min(), COARSE_KEY_BITS.min())) // 8


def _coarse(whole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coarse view words (n, 4) and its candidate bits (n, 60), from the whole view's (n, 32) hash bytes."""
    n = len(whole)
    bits = np.unpackbits(np.ascontiguousarray(whole[:, _FIRST_BYTE:32]), axis=1)
    c = np.zeros((n, 4), np.uint64)
    low = np.packbits(bits[:, COARSE_BITS - 8 * _FIRST_BYTE], axis=1)
    c[:, 0] = np.ascontiguousarray(low).view(">u8").astype(np.uint64)[:, 0]
    return c, np.ascontiguousarray(bits[:, COARSE_KEY_BITS - 8 * _FIRST_BYTE])


def load_hashes(case: Case, shas: set[str] | None = None) -> dict[str, _Video]:
    """Every (or the named) video's frame hashes of usable quality, as arrays (one pass, vectorised)."""
    q = select(FrameHash.sha256, FrameHash.t, FrameHash.hash).where(FrameHash.quality >= pdq.MIN_QUALITY)
    if shas is not None:
        q = q.where(FrameHash.sha256.in_(shas))
    with case.engine.connect() as conn:
        if shas is None:  # the whole archive: the driver's cursor directly (SQLAlchemy's rows cost more than the query)
            cur = conn.connection.cursor()
            try:
                cur.execute(f"SELECT sha256, t, hash FROM frame_hashes WHERE quality >= {int(pdq.MIN_QUALITY)} "
                            "ORDER BY sha256, t")
                rows = cur.fetchall()
            finally:
                cur.close()
        else:
            rows = conn.execute(q.order_by(FrameHash.sha256, FrameHash.t)).tuples().all()
    if not rows:
        return {}
    sha_col, t_col, h_col = zip(*rows, strict=True)
    n = len(rows)
    hs = [bytes(h) for h in h_col]
    lengths = np.fromiter(map(len, hs), dtype=np.int64, count=n)
    width = NVIEWS * pdq.HASH_BYTES
    buf = np.zeros((n, width), np.uint8)
    for L in np.unique(lengths).tolist():
        sel = np.flatnonzero(lengths == L)
        k = min(L, width)
        if k:
            buf[sel, :k] = np.frombuffer(b"".join(hs[i][:k] for i in sel.tolist()), np.uint8).reshape(len(sel), k)
    words = buf.view(">u8").astype(np.uint64).reshape(n, NVIEWS, 4)
    t = np.asarray(t_col, dtype=np.float64)
    c, cbits = _coarse(buf[:, :pdq.HASH_BYTES])
    c2, cbits2 = _coarse(buf[:, COARSE_CENTRE * pdq.HASH_BYTES:(COARSE_CENTRE + 1) * pdq.HASH_BYTES])
    starts = [0] + [i for i in range(1, n) if sha_col[i] != sha_col[i - 1]] + [n]
    nv_row = np.minimum(lengths // pdq.HASH_BYTES, NVIEWS)
    out = {}
    for lo, hi in zip(starts[:-1], starts[1:], strict=True):
        nv = int(nv_row[lo:hi].min())
        if nv:
            out[sha_col[lo]] = _Video(t[lo:hi], words[lo:hi], np.arange(NVIEWS) < nv, c[lo:hi], cbits[lo:hi],
                                     c2[lo:hi], cbits2[lo:hi])
    return out


def _unique_sorted(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(x, return_counts=True) by sorting (numpy's hash-based unique is slow on millions of codes)."""
    if not len(x):
        return x, np.zeros(0, np.int64)
    x = np.sort(x)
    first = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    return x[first], np.diff(np.r_[first, len(x)])


def candidate_pairs(videos: dict[str, _Video]) -> dict[tuple[str, str], set[tuple[int, int]]]:
    """Video pairs (a < b) sharing a 32-bit band value in a joined view pair → the view pairs (view of a,
    view of b) that share one."""
    shas = sorted(videos)
    if not shas:
        return {}
    vs = [videos[x] for x in shas]
    w = np.concatenate([v.w for v in vs])
    cb = np.concatenate([v.cbits for v in vs]).astype(np.uint64)
    cb2 = np.concatenate([v.cbits2 for v in vs]).astype(np.uint64)
    vid_row = np.repeat(np.arange(len(shas), dtype=np.uint64), [len(v.t) for v in vs])
    has = np.stack([v.has for v in vs])
    parts = []
    band_ids = np.arange(pdq.BANDS, dtype=np.uint64)[None, :] << np.uint64(32)
    for vw in range(NVIEWS):
        rows = np.flatnonzero(has[vid_row.astype(np.int64), vw])
        if not len(rows):
            continue
        b32 = np.ascontiguousarray(w[rows, vw, :].astype(">u8")).view(">u4").astype(np.uint64)
        k = (band_ids | b32).ravel()
        parts.append((k, np.repeat(vid_row[rows], pdq.BANDS), vw))
    width = int(np.clip(np.ceil(np.log2(max(len(cb), 2))) - 1, 12, 20))
    nb = cb.shape[1] // width
    weights = np.uint64(1) << np.arange(width - 1, -1, -1, dtype=np.uint64)
    ck = np.stack([(cb[:, i * width:(i + 1) * width] * weights).sum(1) for i in range(nb)], axis=1)
    cband = (np.arange(nb, dtype=np.uint64)[None, :] + np.uint64(pdq.BANDS)) << np.uint64(32)
    parts.append(((cband | ck).ravel(), np.repeat(vid_row, nb), COARSE))
    # the same bands of the centre 80 % view's coarse bits (a rotated or filmed copy's edges differ most)
    rows2 = np.flatnonzero(has[vid_row.astype(np.int64), COARSE_CENTRE])
    if len(rows2):
        ck2 = np.stack([(cb2[rows2, i * width:(i + 1) * width] * weights).sum(1) for i in range(nb)], axis=1)
        parts.append(((cband + (np.uint64(nb) << np.uint64(32)) | ck2).ravel(), np.repeat(vid_row[rows2], nb),
                      COARSE))
    # one entry per (band value, video, view), sorted by band value: packed into one integer to sort once
    if len(shas) < 1 << 20:
        packed, _ = _unique_sorted(np.concatenate([(k << np.uint64(24)) | (v << np.uint64(3)) | np.uint64(vw)
                                                   for k, v, vw in parts]))
        key = packed >> np.uint64(24)
        vid = ((packed >> np.uint64(3)) & np.uint64((1 << 21) - 1)).astype(np.int64)
        view = (packed & np.uint64(7)).astype(np.int8)
    else:  # pragma: no cover - over a million videos: sort on three keys
        key = np.concatenate([k for k, _, _ in parts])
        vid = np.concatenate([v for _, v, _ in parts]).astype(np.int64)
        view = np.concatenate([np.full(len(k), vw, np.int8) for k, _, vw in parts])
        order = np.lexsort((view, vid, key))
        key, vid, view = key[order], vid[order], view[order]
    # bucket sizes in distinct videos; drop lone values and stop words
    new_bucket = np.r_[True, key[1:] != key[:-1]]
    bucket = np.cumsum(new_bucket) - 1
    first_of_video = np.r_[True, (key[1:] != key[:-1]) | (vid[1:] != vid[:-1])]
    nvid = np.bincount(bucket, weights=first_of_video)[bucket]
    keep = (nvid >= 2) & (nvid <= MAX_BUCKET_VIDEOS)
    key, vid, view = key[keep], vid[keep], view[keep]
    allowed = np.zeros((NVIEWS + 1, NVIEWS + 1), bool)
    for x, y in VIEW_PAIRS:
        allowed[x, y] = allowed[y, x] = True
    found: list[np.ndarray] = []
    step = 1
    while step < len(key):
        same = key[:-step] == key[step:]
        if not same.any():
            break
        i = np.flatnonzero(same)
        j = i + step
        ok = (vid[i] != vid[j]) & allowed[view[i], view[j]]
        i, j = i[ok], j[ok]
        lo = vid[i] < vid[j]
        va, vb = np.where(lo, vid[i], vid[j]), np.where(lo, vid[j], vid[i])
        wa, wb = np.where(lo, view[i], view[j]), np.where(lo, view[j], view[i])
        found.append(((va.astype(np.int64) * len(shas) + vb) * (NVIEWS + 1) + wa) * (NVIEWS + 1) + wb)
        step += 1
    out: dict[tuple[str, str], set[tuple[int, int]]] = defaultdict(set)
    if found:
        codes, hits = _unique_sorted(np.concatenate(found))
        wb_ = codes % (NVIEWS + 1)
        wa_ = (codes // (NVIEWS + 1)) % (NVIEWS + 1)
        pair = codes // ((NVIEWS + 1) * (NVIEWS + 1))
        keep = (wa_ != COARSE) | (hits >= COARSE_MIN_HITS)
        for p_, x_, y_ in zip(pair[keep].tolist(), wa_[keep].tolist(), wb_[keep].tolist(), strict=True):
            a_, b_ = divmod(p_, len(shas))
            out[(shas[a_], shas[b_])].add((x_, y_))
    return out


@dataclass
class _Align:
    rate: float
    offset: float
    match: float
    median: float
    inside: int
    pairs: list[tuple[int, int, int]]  # (i in short, j in long, bits)


def _match_at(ts: np.ndarray, tl: np.ndarray, d: np.ndarray, rate: float, offset: float,
              thr: int = FRAME_MATCH_BITS) -> _Align:
    """Share of the short video's frames (inside the long one's span) whose nearest-in-time long frames
    (the nearest or a neighbour: sampling instants differ) match; median distance."""
    mapped = rate * ts + offset
    inside = np.flatnonzero((mapped >= tl[0] - 0.6) & (mapped <= tl[-1] + 0.6))
    if len(inside) < 2:
        return _Align(rate, offset, 0.0, 256.0, len(inside), [])
    idx = np.clip(np.searchsorted(tl, mapped[inside]), 0, len(tl) - 1)
    cand = np.stack([np.clip(idx - 1, 0, len(tl) - 1), idx, np.clip(idx + 1, 0, len(tl) - 1)], axis=1)
    near = np.abs(tl[cand] - mapped[inside, None]) <= max(0.45, 0.6 * float(np.median(np.diff(tl))) if len(tl) > 1
                                                          else 0.45)
    dd = np.where(near, d[inside[:, None], cand], 256)
    best = np.argmin(dd, axis=1)
    bits = dd[np.arange(len(inside)), best]
    j = cand[np.arange(len(inside)), best]
    pairs = [(int(i), int(jj), int(b)) for i, jj, b in zip(inside, j, bits, strict=True)]
    return _Align(rate, offset, float((bits <= thr).mean()), float(np.median(bits)), len(inside), pairs)


def _align(s: _Video, lv: _Video, vs: int, vl: int) -> tuple[_Align | None, float | None]:
    if vs == COARSE:
        d, thr = pdq.hamming(s.c, lv.c), COARSE_MATCH_BITS
        if s.has[COARSE_CENTRE] and lv.has[COARSE_CENTRE]:  # the closer of the whole and centre 80 % views
            d = np.minimum(d, pdq.hamming(s.c2, lv.c2))
    else:
        d, thr = pdq.hamming(s.w[:, vs, :], lv.w[:, vl, :]), FRAME_MATCH_BITS
    ii, jj = np.nonzero(d <= thr)
    if not len(ii):
        return None, None
    best: _Align | None = None
    for rate in RATES if vs != COARSE else (1.0,):  # the coarse view is loose enough without a free speed
        off = lv.t[jj] - rate * s.t[ii]
        bins, counts = np.unique(np.round(off * 4) / 4, return_counts=True)
        for o in bins[np.argsort(-counts)][:3]:
            for fine in (o - 0.125, o, o + 0.125):
                a = _match_at(s.t, lv.t, d, rate, float(fine), thr)
                if a.inside < MIN_CONTAINED * len(s.t):
                    continue
                # a speed change must earn its place: clearly better than plain time
                gain = 0.0 if rate == 1.0 else 0.1
                if best is None or (a.match - gain, -a.median) > (best.match, -best.median):
                    best = a
    if best is None:
        return None, None
    # the offset from the matched frames themselves (the vote's bins are a quarter second wide)
    good = [(i, j) for i, j, b in best.pairs if b <= thr]
    if good:
        fine = float(np.median([lv.t[j] - best.rate * s.t[i] for i, j in good]))
        again = _match_at(s.t, lv.t, d, best.rate, fine, thr)
        if (again.match, -again.median) >= (best.match, -best.median) and again.inside >= best.inside:
            best = again
    others = []
    for k in (3.0, 6.0, 10.0, 20.0, 30.0, 60.0):
        for cand in (best.offset - k, best.offset + k):
            o = _match_at(s.t, lv.t, d, best.rate, cand, thr)
            if o.inside >= 3:
                others.append(o.median)
    # in whole-hash bits (the coarse view has 64, not 256)
    margin = ((float(np.median(others)) - best.median) * (256 // d_bits(vs))) if others else None
    return best, margin


def _rank(a: _Align, views: tuple[int, int]) -> tuple[bool, bool, float, float]:
    """Alignments compared: passing first, then on the full 256 bits before the coarse view, then share and
    closeness."""
    return a.match >= MIN_MATCH, views[0] != COARSE, a.match, -a.median / d_bits(views[0])


def d_bits(view: int) -> int:
    return 64 if view == COARSE else 256


def _stats(case: Case, shas: set[str]) -> dict[str, dict[str, Any]]:
    with case.sessions() as s:
        return {sha: dict(st or {}) for sha, st in s.execute(select(AnalysisRun.sha256, AnalysisRun.stats).where(
            AnalysisRun.analyzer == ANALYZER, AnalysisRun.sha256.in_(shas)))}


def _border_words(b: list[float] | None) -> str | None:
    if not b or max(b) < 0.01:
        return None
    top, bottom, left, right = b
    kind = ("letterbox and pillarbox" if min(top, bottom) >= 0.01 and min(left, right) >= 0.01 else
            "letterbox" if min(top, bottom) >= 0.01 else "pillarbox" if min(left, right) >= 0.01 else "border")
    parts = [f"{n} {round(100 * x)} %" for n, x in zip(("top", "bottom", "left", "right"), b, strict=True)
             if x >= 0.01]
    return f"{kind} ({', '.join(parts)})"


PERSPECTIVE_MIN = 0.055


def explain(m: Match, borders: dict[str, list[float] | None], la: str = "a", lb: str = "b") -> list[str]:
    """What makes ``m.a`` (called ``la``) differ from ``m.b`` (``lb``), in words, from the verification."""
    v = m.verification or {}
    label = {"a": la, "b": lb}
    out = []
    if m.views == "mirrored":
        out.append(f"{la} is mirrored (flipped left to right)")
    g = v.get("geometry") or {}
    share = g.get("a_shows_share_of_b")
    if share is not None and share < 0.93:
        out.append(f"{la} is cropped to {round(100 * share)} % of {lb}")
    elif share is not None and share > 1.07:
        out.append(f"{lb} is cropped to {round(100 / share)} % of {la}")
    if abs(g.get("rotation_deg") or 0.0) >= 1.5:
        out.append(f"rotated {abs(g['rotation_deg']):.0f} degrees")
    # a registration on a small re-encode carries a few per cent of spurious keystone (the demo's WhatsApp copy:
    # 0.04); a screen filmed from the side shows about twice that (0.07 in dupes.variants' screen recording)
    if (g.get("perspective") or 0.0) >= PERSPECTIVE_MIN:
        out.append("perspective (filmed off a screen?)")
    for who in ("a", "b"):
        w = _border_words(borders.get(getattr(m, who)))
        if w:
            out.append(f"{label[who]} has borders: {w}")
    ov = v.get("overlay")
    if ov:
        x0, y0, x1, y1 = ov["box"]
        out.append(f"overlay in {label[ov['static_in']]} (caption or logo) on {round(100 * ov['share'])} % of the "
                   f"picture, region x {x0:.2f}-{x1:.2f}, y {y0:.2f}-{y1:.2f} of {la}")
    for who in v.get("greyscale") or []:
        out.append(f"{label[who]} is greyscale")
    if abs(m.rate - 1.0) > 0.01:
        out.append(f"speed: {la} plays {m.rate:.2f}x as fast as {lb}")
    if v.get("still"):
        out.append("still scene: matched on the picture, not on motion")
    return out


def _verify(case: Case, m: Match, dur: dict[str, float], borders: dict[str, list[float] | None],
            views: tuple[int, int], pairs: list[tuple[float, float]]) -> vf.Verdict:
    """Verify at the hashes' alignment; where what moves agrees only loosely, the alignment may be off by a
    few frames (still scenes hash alike over time): the best of a few nearby offsets is kept (and the
    match's offset corrected)."""
    best = _verify_at(case, m, dur, borders, views, pairs, 0.0)
    if (best.ok and (best.still or (best.motion_corr or 0.0) >= 0.8)) or (best.motion_corr or 0.0) < 0.3:
        return best  # clearly a copy, or clearly not (copies a few frames off measured 0.44-0.56)
    base = m.offset_s
    for delta in (-0.1, 0.1, -0.2, 0.2, -0.3, 0.3, -0.4, 0.4, -0.5, 0.5):
        v = _verify_at(case, m, dur, borders, views, pairs, delta)
        if (v.ok, v.motion_corr or 0.0) > (best.ok, best.motion_corr or 0.0):
            best, m.offset_s = v, round(base + delta, 2)
            if (v.motion_corr or 0.0) >= 0.9:
                break
    return best


def _verify_at(case: Case, m: Match, dur: dict[str, float], borders: dict[str, list[float] | None],
               views: tuple[int, int], pairs: list[tuple[float, float]], delta: float) -> vf.Verdict:
    ts = [p[0] for p in pairs]
    if len(ts) > vf.CHECK_TIMES:
        pick = np.linspace(0, len(ts) - 1, vf.CHECK_TIMES).round().astype(int)
        ts = [ts[i] for i in pick]
    da = dur[m.a]
    lo, hi = (min(ts), max(ts)) if ts else (0.0, da)
    ref_a, ref_b = case.store.media_ref(m.a), case.store.media_ref(m.b)
    scale = {0: 1.0, 1: 1.0, 2: pdq.CENTRE[2], 3: pdq.CENTRE[3], COARSE: 1.0}
    sa, sb = scale[views[0]], scale[views[1]]
    if views == (3, 3):
        sa = sb = 1.0
    fa = vf.grab(m.a, ref_a, da, ts, borders.get(m.a))
    off = m.offset_s + delta
    fb = vf.grab(m.b, ref_b, dur[m.b], [m.rate * t + off for t in ts], borders.get(m.b))
    v = None
    # motion over MOTION_DT; where little moves in that time, over as long as the matched span allows
    for dt in (vf.MOTION_DT, max(vf.MOTION_DT * 2, 0.8 * (hi - lo))):
        ts2 = [t + dt if t + dt <= hi + 1e-6 else t - dt for t in ts]
        fa2 = vf.grab(m.a, ref_a, da, ts2, borders.get(m.a))
        fb2 = vf.grab(m.b, ref_b, dur[m.b], [m.rate * t + off for t in ts2], borders.get(m.b))
        v = vf.verify(fa, fa2, fb, fb2, mirrored=1 in views, view_scales=(sa, sb))
        if not v.still:
            break
    assert v is not None
    return v


def find_matches(case: Case, verify: bool = True) -> list[Match]:
    """Near-duplicate pairs; with ``verify`` (the default) each is checked on pixels and explained."""
    videos = load_hashes(case)
    cands = candidate_pairs(videos)
    scored: list[tuple[Match, tuple[int, int], list[tuple[float, float]]]] = []
    for (x, y), combos in cands.items():
        vx, vy = videos[x], videos[y]
        short, long_ = (x, y) if vx.t[-1] <= vy.t[-1] else (y, x)
        s, lv = videos[short], videos[long_]
        best: tuple[_Align, float | None, tuple[int, int]] | None = None
        tried = set()
        for wx, wy in combos | {(0, 0), (COARSE, COARSE)}:
            ws, wl = (wx, wy) if short == x else (wy, wx)
            for pair in {(ws, wl), (wl, ws)}:  # a joined view pair may explain either direction
                if pair in tried or not (pair == (COARSE, COARSE) or (s.has[pair[0]] and lv.has[pair[1]])):
                    continue
                if tuple(sorted(pair)) not in VIEW_PAIRS:
                    continue
                tried.add(pair)
                a, margin = _align(s, lv, *pair)
                if a is not None and (best is None or _rank(a, pair) > _rank(best[0], best[2])):
                    best = (a, margin, pair)
        if best is None:
            continue
        a, margin, views = best
        if a.match < MIN_MATCH or (margin is not None and margin < MIN_MARGIN_BITS):
            continue
        name = VIEW_PAIRS[tuple(sorted(views))]  # type: ignore[index]
        thr = COARSE_MATCH_BITS if views[0] == COARSE else FRAME_MATCH_BITS
        frames = [{"a_t": round(float(s.t[i]), 3), "b_t": round(float(lv.t[j]), 3), "bits": b,
                   "of_bits": d_bits(views[0])} for i, j, b in a.pairs if b <= thr]
        m = Match(short, long_, round(a.offset, 2), round(a.match, 3),
                  None if margin is None else round(margin, 1), a.median, round(a.rate, 3), name,
                  frames=frames)
        scored.append((m, views, [(f["a_t"], f["b_t"]) for f in frames]))
    scored.sort(key=lambda x: (-x[0].match, x[0].median_bits))
    if not verify:
        return [m for m, _, _ in scored]
    shas = {sha for m, _, _ in scored for sha in (m.a, m.b)}
    stats = _stats(case, shas)
    borders = {sha: stats.get(sha, {}).get("borders") for sha in shas}
    with case.sessions() as ss:
        dur = {sha: float(d or 0) for sha, d in ss.execute(
            select(MediaProbe.sha256, MediaProbe.duration_s).where(MediaProbe.sha256.in_(shas)))}
    return _verified(case, scored, dur, borders)


def _connected(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The groups of videos that pairs connect (union-find), keyed by a member of each."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = defaultdict(list)
    for x in list(parent):
        groups[find(x)].append(x)
    return groups


def _verified(case: Case, scored: list[tuple[Match, tuple[int, int], list[tuple[float, float]]]],
              dur: dict[str, float], borders: dict[str, list[float] | None]) -> list[Match]:
    """Verify on pixels only as many pairs as the clusters need: within each group of hash matches, from
    the longest video out, each member against the members already verified (best hash match first)."""
    by_video: dict[str, list[int]] = defaultdict(list)
    for k, (m, _, _) in enumerate(scored):
        by_video[m.a].append(k)
        by_video[m.b].append(k)
    groups = _connected([(m.a, m.b) for m, _, _ in scored])
    videos = {x for members in groups.values() for x in members}
    out: list[Match] = []
    done: dict[int, vf.Verdict] = {}
    clocks = _overlay_clocks(case, videos)
    for k, (m, _, _) in enumerate(scored):
        if (why := clock_contradiction(m, clocks)) is not None:
            done[k] = vf.Verdict(False, why)
    for members in groups.values():
        remaining = set(members)
        while len(remaining) > 1:
            seed = max(remaining, key=lambda x: (dur.get(x, 0.0), x))
            cluster = {seed}
            grown = True
            while grown:
                grown = False
                for x in sorted(remaining - cluster):
                    links = [k for k in by_video[x] if ({scored[k][0].a, scored[k][0].b} - {x}) <= cluster]
                    links.sort(key=lambda k: (seed not in (scored[k][0].a, scored[k][0].b), k))
                    for k in links[:MAX_VERIFY_TRIES]:
                        if k not in done:
                            m, views, pairs = scored[k]
                            try:
                                done[k] = _verify(case, m, dur, borders, views, pairs)
                            except Exception as exc:  # a damaged file fails its verification, not the run
                                done[k] = vf.Verdict(False, f"could not verify: {type(exc).__name__}")
                        if done[k].ok:
                            cluster.add(x)
                            grown = True
                            break
            remaining -= cluster
            if len(cluster) == 1:
                continue
            for k, v in done.items():
                m = scored[k][0]
                if v.ok and m.a in cluster and m.b in cluster:
                    overlay = None
                    if v.overlay:
                        x0, y0, x1, y1 = v.overlay["box_in_a"]
                        box = [x0, y0, x1, y1]
                        if m.views == "mirrored":  # measured on a mirrored a
                            box = [round(1 - x1, 3), y0, round(1 - x0, 3), y1]
                        overlay = {"share": v.overlay["share"], "box": box, "static_in": v.overlay["static_in"]}
                    m.verification = {"ok": True, "reason": v.reason, "inliers": v.inliers,
                                      "motion_corr": v.motion_corr, "picture_corr": v.picture_corr,
                                      "still": v.still, "greyscale": v.greyscale, "geometry": v.geometry,
                                      "overlay": overlay}
                    m.transforms = explain(m, borders)
                    m.tmk = tmk_scores(case, m.a, m.b, max(dur.get(m.a, 0.0), dur.get(m.b, 0.0)) + 2.0)
                    out.append(m)
    return out


CLOCK_TOLERANCE_S = 3.0  # an overlay read to the second, on frames matched to a tenth, in re-encodes too


def _overlay_clocks(case: Case, shas: set[str]) -> dict[str, tuple[str | None, datetime]]:
    """Camera and clock start of each video whose burnt-in overlay was read (``custodes timeline``)."""
    if not shas:
        return {}
    with case.sessions() as ss:
        rows = ss.execute(select(Recording.sha256, Recording.camera_id, Recording.start_at)
                          .where(Recording.sha256.in_(shas), Recording.source == "overlay"))
        return {sha: (cam, start) for sha, cam, start in rows if start is not None}


def clock_contradiction(m: Match, clocks: dict[str, tuple[str | None, datetime]]) -> str | None:
    """Why the burnt-in clocks say ``a`` and ``b`` are different moments, or None.

    A copy, a re-encode or a clip of a recording shows the recording's own burnt-in clock at the matched
    frames. Two recordings of one fixed camera can look alike frame for frame (a still corridor, the same
    people walking through), and only the clock in the picture tells them apart: where both overlays were
    read and their clocks at the matched moment disagree by more than a few seconds, the pair is no copy."""
    if m.a not in clocks or m.b not in clocks:
        return None
    (cam_a, start_a), (cam_b, start_b) = clocks[m.a], clocks[m.b]
    t_a = m.frames[len(m.frames) // 2]["a_t"] if m.frames else 0.0
    at_a = start_a + timedelta(seconds=t_a)
    at_b = start_b + timedelta(seconds=m.rate * t_a + m.offset_s)
    apart = abs((at_a - at_b).total_seconds())
    if apart <= CLOCK_TOLERANCE_S * max(1.0, m.rate, 1.0 / max(m.rate, 1e-6)):
        return None
    same = f"the same camera ({cam_a})" if cam_a and cam_a == cam_b else "their cameras"
    return (f"the burnt-in clocks differ by {apart:.0f} s at the matched frames ({at_a:%H:%M:%S} against "
            f"{at_b:%H:%M:%S}): different moments of {same}, not a copy")


def clusters(case: Case, save: bool = True, actor: str = "custodes") -> dict[str, Any]:
    """The clusters of near-duplicates; with ``save`` (the default) the matches are also stored as this run's
    finding, replacing the previous run's (``custodes.dupes.store``: sealed, with a signed ``dupes.run``)."""
    matches = find_matches(case)
    groups = _connected([(m.a, m.b) for m in matches])
    videos = {x for members in groups.values() for x in members}
    with case.sessions() as s:
        media = {m.sha256: m for m in s.scalars(select(MediaProbe).where(MediaProbe.sha256.in_(list(videos))))}
        copies: dict[str, list[str]] = defaultdict(list)
        for sha, name in s.execute(select(Provenance.sha256, Provenance.original_name)
                                   .where(Provenance.sha256.in_(list(videos))).order_by(Provenance.recorded_at)):
            copies[sha].append(name)
    stats = _stats(case, videos)
    borders = {sha: stats.get(sha, {}).get("borders") for sha in videos}

    def label(sha: str) -> str:
        return copies[sha][0] if copies.get(sha) else sha[:12]

    run = None
    if save:
        from custodes.dupes.store import save_matches

        run = save_matches(case, matches, {sha: label(sha) for sha in videos}, borders, actor)["run"]
    out = []
    for members in groups.values():
        longest = max(members, key=lambda x: (media[x].duration_s or 0, x))
        offsets = {longest: 0.0}
        how: dict[str, list[str]] = {longest: []}
        # offsets relative to the longest member, following matches from it (a lies in b at rate·t + offset)
        changed = True
        while changed:
            changed = False
            for m in matches:
                if m.b in offsets and m.a not in offsets and m.a in members:
                    offsets[m.a] = offsets[m.b] + m.offset_s
                    how[m.a] = explain(m, borders, "this copy", label(m.b))
                    changed = True
                elif m.a in offsets and m.b not in offsets and m.b in members:
                    offsets[m.b] = offsets[m.a] - m.offset_s
                    how[m.b] = explain(m, borders, label(m.a), "this copy")
                    changed = True
        items = []
        for x in sorted(members, key=lambda x: (-(media[x].duration_s or 0), x)):
            mp = media[x]
            dur = mp.duration_s or 0
            full = media[longest].duration_s or 0
            rel = "source (longest)" if x == longest else (
                "copy / re-encode" if abs(dur - full) <= max(0.5, 0.05 * full) else "clip")
            items.append({"sha256": x, "names": copies.get(x, []), "duration_s": dur,
                          "resolution": f"{mp.width}x{mp.height}", "offset_in_source_s": offsets.get(x),
                          "relation": rel, "transforms": how.get(x, [])})
        out.append({"members": items, "matches": [asdict(m) for m in matches if m.a in members]})
    out.sort(key=lambda c: -len(c["members"]))
    return {"clusters": out, "matches": len(matches), "run": run}

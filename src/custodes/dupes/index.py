"""``custodes dupes``: clusters of copies, re-encodes and clips, with the clip's offset in its source.

Exact duplicates are already one object with several provenance rows (ingest).
Near duplicates are found in three steps that never compare all pairs:

1. every video's sampled frames are PDQ-hashed and each hash is cut into 16
   bands of 16 bits, stored in an indexed table;
2. one indexed self-join lists pairs of frames that share at least two band
   values exactly (a re-encoded frame usually keeps several bands intact; two
   unrelated frames rarely share two); band values shared by very many frames
   — a black screen, a static corridor — are ignored like stop words;
3. for each pair of videos with such frame pairs, the time offsets of frame
   pairs within 31 bits vote for an alignment; the alignment is accepted when
   most of the shorter video's frames match at that offset and clearly better
   than at other offsets (two recordings of the same static scene match
   everywhere, a copy matches at one offset).
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, select, text

from custodes.analyze import pdq, tmk
from custodes.store.case import Case
from custodes.store.db import AnalysisRun, FrameHash, HashBand, MediaProbe, Provenance, VideoFingerprint

ANALYZER = "pdq"  # frame hashes and the TMK video fingerprint are made in one decoding pass
FRAME_MATCH_BITS = 31
MAX_BUCKET = 200
# Two unrelated frames share one 16-bit band by chance with probability 16/65536, so in a large archive
# single-band pairs grow with the square of the frame count; two shared bands happen by chance ~10^4×
# less often, while a re-encoded frame (≤ 31 bits changed) still keeps two bands intact most of the time,
# and a copy has many frames to vote with.
MIN_BANDS = 2
MIN_MATCH = 0.6  # share of the shorter video's frames that match at the chosen offset
MIN_CONTAINED = 0.8  # share of the shorter video's frames that fall inside the longer at that offset
MIN_MARGIN_BITS = 4.0  # median frame distance at the offset vs at other offsets


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
        try:
            frames = pdq.frame_hashes(case.store.media_ref(sha), float(dur or 0), floats=floats)
        except Exception as exc:  # a hostile file must not stop the others
            frames, err = [], f"{type(exc).__name__}: {exc}"
        with case.sessions() as s:
            old = select(FrameHash.id).where(FrameHash.sha256 == sha)
            s.execute(delete(HashBand).where(HashBand.frame_id.in_(old)))
            s.execute(delete(FrameHash).where(FrameHash.sha256 == sha))
            s.execute(delete(AnalysisRun).where(AnalysisRun.sha256 == sha, AnalysisRun.analyzer == ANALYZER))
            s.execute(delete(VideoFingerprint).where(VideoFingerprint.sha256 == sha))
            if frames and len(floats) == len(frames):
                d = tmk.describe(np.array([t for t, _, _ in frames]), np.stack(floats))
                s.add(VideoFingerprint(sha256=sha, version=tmk.VERSION, frames=d.frames, data=_pack(d)))
            rows = [FrameHash(sha256=sha, t=t, hash=h, quality=q) for t, h, q in frames]
            s.add_all(rows)
            s.flush()
            s.add_all(HashBand(frame_id=r.id, sha256=sha, band=i, value=v)
                      for r in rows if r.quality >= pdq.MIN_QUALITY for i, v in enumerate(pdq.bands(r.hash)))
            s.add(AnalysisRun(sha256=sha, analyzer=ANALYZER, version=pdq.VERSION, status="failed" if err else "ok",
                              error=err, stats={"frames": len(rows)}, finished_at=datetime.now(UTC)))
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
    a: str
    b: str
    offset_s: float  # time in b where a's start lies (b_time = a_time + offset)
    match: float  # share of the shorter video's frames matching at that offset
    margin_bits: float  # how much closer frames are at this offset than at others (inf: nothing to compare)
    median_bits: float
    tmk: dict[str, float] | None = None


def _frames(case: Case, shas: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out: dict[str, tuple[list[float], list[bytes]]] = defaultdict(lambda: ([], []))
    with case.sessions() as s:
        for sha, t, h, q in s.execute(select(FrameHash.sha256, FrameHash.t, FrameHash.hash, FrameHash.quality)
                                      .where(FrameHash.sha256.in_(shas)).order_by(FrameHash.sha256, FrameHash.t)):
            if q >= pdq.MIN_QUALITY:
                out[sha][0].append(t)
                out[sha][1].append(h)
    return {k: (np.asarray(v[0]), pdq.as_words(v[1])) for k, v in out.items()}


def _match_at(ta: np.ndarray, wa: np.ndarray, tb: np.ndarray, wb: np.ndarray,
              offset: float) -> tuple[float, float, int]:
    """Share of a's frames (inside b's span) whose nearest-in-time b frame matches; median distance."""
    shifted = ta + offset
    inside = (shifted >= tb[0] - 0.6) & (shifted <= tb[-1] + 0.6)
    if inside.sum() < 2:
        return 0.0, 256.0, int(inside.sum())
    idx = np.clip(np.searchsorted(tb, shifted[inside]), 0, len(tb) - 1)
    prev = np.clip(idx - 1, 0, len(tb) - 1)
    near = np.where(np.abs(tb[prev] - shifted[inside]) < np.abs(tb[idx] - shifted[inside]), prev, idx)
    d = np.array([pdq.hamming(wa[i:i + 1], wb[j:j + 1])[0, 0] for i, j in zip(np.flatnonzero(inside), near,
                                                                              strict=True)])
    return float((d <= FRAME_MATCH_BITS).mean()), float(np.median(d)), int(inside.sum())


def candidate_pairs(case: Case) -> dict[tuple[str, str], list[tuple[float, float, bytes, bytes]]]:
    """Frame pairs sharing a band value, grouped by video pair (a < b): (ta, tb, ha, hb)."""
    sql = text("""
        WITH common AS (
            SELECT band, value FROM hash_bands GROUP BY band, value
            HAVING COUNT(*) > 1 AND COUNT(*) <= :max_bucket
        ), shared AS (
            SELECT a.frame_id AS fa, b.frame_id AS fb
            FROM common c
            JOIN hash_bands a ON a.band = c.band AND a.value = c.value
            JOIN hash_bands b ON b.band = c.band AND b.value = c.value AND a.sha256 < b.sha256
            GROUP BY a.frame_id, b.frame_id
            HAVING COUNT(*) >= :min_bands
        )
        SELECT fa.sha256, fb.sha256, fa.t, fb.t, fa.hash, fb.hash
        FROM shared
        JOIN frame_hashes fa ON fa.id = shared.fa
        JOIN frame_hashes fb ON fb.id = shared.fb
    """)
    pairs: dict[tuple[str, str], list[tuple[float, float, bytes, bytes]]] = defaultdict(list)
    with case.engine.connect() as conn:
        for sa, sb, ta, tb, ha, hb in conn.execute(sql, {"max_bucket": MAX_BUCKET, "min_bands": MIN_BANDS}):
            pairs[(sa, sb)].append((ta, tb, bytes(ha), bytes(hb)))
    return pairs


def find_matches(case: Case) -> list[Match]:
    pairs = candidate_pairs(case)
    frames = _frames(case, {s for p in pairs for s in p})
    matches = []
    for (a, b), fps in pairs.items():
        votes: dict[float, int] = defaultdict(int)
        for ta, tb, ha, hb in fps:
            if pdq.hamming(pdq.as_words([ha]), pdq.as_words([hb]))[0, 0] <= FRAME_MATCH_BITS:
                votes[round((tb - ta) * 2) / 2] += 1
        if not votes or a not in frames or b not in frames:
            continue
        # align the shorter onto the longer
        short, long_, sign = (a, b, 1) if frames[a][0][-1] <= frames[b][0][-1] else (b, a, -1)
        (ts, ws), (tl, wl) = frames[short], frames[long_]
        best: tuple[float, float, float, int] | None = None
        for off in sorted(votes, key=lambda o: -votes[o])[:5]:
            o = off * sign
            for fine in (o - 0.25, o, o + 0.25):
                m, med, n = _match_at(ts, ws, tl, wl, fine)
                if best is None or m > best[1]:
                    best = (fine, m, med, n)
        if best is None or best[1] < MIN_MATCH:
            continue
        # the shorter video must lie (mostly) inside the longer one: a copy or a cut, not two
        # recordings that happen to agree for a few seconds at their ends
        if best[3] < MIN_CONTAINED * len(ts):
            continue
        off, m, med, _ = best
        # the same offset test at clearly different offsets: a copy matches at one offset only,
        # two recordings of one static scene match (about as closely) everywhere
        others = []
        for k in (3.0, 6.0, 10.0, 20.0, 30.0, 60.0):
            for cand in (off - k, off + k):
                mo, dmed, n = _match_at(ts, ws, tl, wl, cand)
                if n >= 3:
                    others.append(dmed)
        margin = (float(np.median(others)) - med) if others else float("inf")
        if margin < MIN_MARGIN_BITS:
            continue
        span_s = float(max(tl[-1], ts[-1])) + 2.0
        matches.append(Match(short, long_, round(off, 2), round(m, 3), round(margin, 1), med,
                             tmk_scores(case, short, long_, span_s)))
    return matches


def clusters(case: Case) -> dict[str, Any]:
    matches = find_matches(case)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for m in matches:
        parent[find(m.a)] = find(m.b)
    groups: dict[str, list[str]] = defaultdict(list)
    for x in list(parent):
        groups[find(x)].append(x)
    with case.sessions() as s:
        media = {m.sha256: m for m in s.scalars(select(MediaProbe).where(MediaProbe.sha256.in_(list(parent))))}
        copies: dict[str, list[str]] = defaultdict(list)
        for sha, name in s.execute(select(Provenance.sha256, Provenance.original_name)
                                   .where(Provenance.sha256.in_(list(parent))).order_by(Provenance.recorded_at)):
            copies[sha].append(name)
    out = []
    for members in groups.values():
        longest = max(members, key=lambda x: media[x].duration_s or 0)
        offsets = {longest: 0.0}
        # offsets relative to the longest member, following matches from it
        changed = True
        while changed:
            changed = False
            for m in matches:
                if m.b in offsets and m.a not in offsets and m.a in members:
                    offsets[m.a] = offsets[m.b] + m.offset_s
                    changed = True
                elif m.a in offsets and m.b not in offsets and m.b in members:
                    offsets[m.b] = offsets[m.a] - m.offset_s
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
                          "relation": rel})
        out.append({"members": items, "matches": [m.__dict__ for m in matches if m.a in members]})
    out.sort(key=lambda c: -len(c["members"]))
    return {"clusters": out, "matches": len(matches)}

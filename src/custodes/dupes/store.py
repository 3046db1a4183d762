"""Near-duplicate matches kept as a finding, and what the review app derives from them (issues 22 and 27).

``custodes dupes`` stores each verified match (``DupeMatch``: a, b, offset, rate, what was done, matched frame
times, the run's id). The rows are sealed in the signed ledger like segments (store/seals.py, grouped by ``a``);
a re-run replaces the previous run's rows in one sealed commit, with a signed ``dupes.run`` event naming both
runs and how many matches each held.

From the stored matches, at read time (nothing is written):

- clusters: the groups the matches connect; a cluster's source is its longest member (as ``clusters`` chooses),
  and each member's time maps to the source's by ``t_source = rate · t + offset``;
- covering: a review given on a stretch of one member covers the aligned stretch of every other member, so the
  queue does not send a second reviewer to footage already seen in a copy (no review row is written for it);
- collapsing: a copy's segment whose aligned stretch in the source is flagged too is not a row of its own in
  the queue: the source's row stands for it (``+N copies``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select

from custodes.store.case import Case
from custodes.store.db import DupeMatch, MediaProbe, Segment

ACTION = "dupes.run"


def save_matches(case: Case, matches: Iterable[Any], names: dict[str, str], borders: dict[str, Any],
                 actor: str = "custodes") -> dict[str, Any]:
    """Replace the stored matches with this run's (``Match`` objects from ``find_matches``), in one sealed
    commit with a signed ``dupes.run`` event. Returns the event's details."""
    from custodes.dupes.index import explain

    run = str(uuid.uuid4())
    now = datetime.now(UTC)
    ms = list(matches)
    with case.sessions() as s:
        before = s.execute(select(DupeMatch.run_id, func.count()).group_by(DupeMatch.run_id)).all()
        s.execute(delete(DupeMatch))  # every group the table holds is resealed (empty unless matched again)
        for m in ms:
            s.add(DupeMatch(run_id=run, a=m.a, b=m.b, offset_s=float(m.offset_s), rate=float(m.rate),
                            match=float(m.match), views=str(m.views)[:80],
                            transforms=explain(m, borders, names.get(m.a, m.a[:12]), names.get(m.b, m.b[:12])),
                            frames=[{"a_t": float(f["a_t"]), "b_t": float(f["b_t"])} for f in m.frames],
                            verification=m.verification, created_at=now))
        details = {"run": run, "matches": len(ms), "pairs": sorted([m.a[:12], m.b[:12]] for m in ms)[:200],
                   "replaced": [{"run": r, "matches": int(n)} for r, n in before]}
        s.log(actor, ACTION, None, details)
        s.commit()
    return details


@dataclass
class Member:
    sha256: str
    source: str  # the cluster's longest member
    rate: float  # t_source = rate · t + offset
    offset: float
    duration: float
    relation: str  # "source (longest)" | "copy / re-encode" | "clip"
    members: list[str] = field(default_factory=list)  # the whole cluster, longest first

    def to_source(self, t: float) -> float:
        return self.rate * t + self.offset

    def from_source(self, t: float) -> float:
        return (t - self.offset) / self.rate if self.rate else t


@dataclass
class Clusters:
    members: dict[str, Member]
    matches: list[DupeMatch]

    def __bool__(self) -> bool:
        return bool(self.members)

    def aligned(self, x: str, y: str, t: float) -> float:
        """The time in ``y`` of the moment at ``t`` in ``x`` (two members of one cluster)."""
        return self.members[y].from_source(self.members[x].to_source(t))

    def others(self, x: str) -> list[str]:
        m = self.members.get(x)
        return [y for y in m.members if y != x] if m else []

    def copies(self) -> set[str]:
        return {x for x, m in self.members.items() if x != m.source}


def load_clusters(s: Any) -> Clusters:
    """The clusters of the stored matches, with each member's time map to its source."""
    rows = list(s.scalars(select(DupeMatch).order_by(DupeMatch.id)))
    if not rows:
        return Clusters({}, [])
    shas = {x for r in rows for x in (r.a, r.b)}
    dur = {sha: float(d or 0.0) for sha, d in s.execute(
        select(MediaProbe.sha256, MediaProbe.duration_s).where(MediaProbe.sha256.in_(shas)))}
    from custodes.dupes.index import _connected

    # each group's members sorted, the groups by their first member: the same clusters in the same order each time
    groups = sorted((sorted(g) for g in _connected([(r.a, r.b) for r in rows]).values()), key=lambda g: g[0])
    out: dict[str, Member] = {}
    for members in groups:
        ordered = sorted(members, key=lambda x: (-dur.get(x, 0.0), x))
        src = max(members, key=lambda x: (dur.get(x, 0.0), x))
        maps: dict[str, tuple[float, float]] = {src: (1.0, 0.0)}
        changed = True
        while changed:  # follow matches out from the source: a lies in b at t_b = rate · t_a + offset
            changed = False
            for r in rows:
                rate = r.rate or 1.0
                if r.b in maps and r.a not in maps and r.a in members:
                    rb, ob = maps[r.b]
                    maps[r.a] = (rb * rate, rb * r.offset_s + ob)
                    changed = True
                elif r.a in maps and r.b not in maps and r.b in members:
                    ra, oa = maps[r.a]
                    maps[r.b] = (ra / rate, oa - ra * r.offset_s / rate)
                    changed = True
        full = dur.get(src, 0.0)
        for x in members:
            rate, off = maps.get(x, (1.0, 0.0))
            d = dur.get(x, 0.0)
            rel = "source (longest)" if x == src else (
                "copy / re-encode" if abs(d * rate - full) <= max(0.5, 0.05 * full) else "clip")
            out[x] = Member(x, src, rate, off, d, rel, ordered)
    return Clusters(out, rows)


def _over(a0: float, a1: float, b0: float, b1: float) -> bool:
    from custodes.web.review import same_span

    return same_span(a0, a1, b0, b1)


def covered(s: Any, cl: Clusters, segments: Iterable[Any] | None = None) -> dict[int, dict[str, Any]]:
    """Segments (of cluster members) with no review of their own whose stretch a review given in another member
    covers, aligned: segment id -> the newest such review (state, by, from: the member, at: its start there).
    ``segments``: rows with id, sha256, start_s, end_s; None: every segment of every member."""
    if not cl:
        return {}
    from custodes.web.review import over, reviews_by_file

    if segments is None:
        segs = list(s.execute(select(Segment.id, Segment.sha256, Segment.start_s, Segment.end_s)
                              .where(Segment.sha256.in_(list(cl.members)))))
    else:
        segs = [g for g in segments if g.sha256 in cl.members]
    if not segs:
        return {}
    wanted = {y for g in segs for y in cl.members[g.sha256].members}
    by_file = reviews_by_file(s, wanted)
    out: dict[int, dict[str, Any]] = {}
    for g in segs:
        if over(by_file.get(g.sha256, []), g.start_s, g.end_s):
            continue  # reviewed in itself: its own state stands
        best: tuple[int, dict[str, Any]] | None = None
        for y in cl.others(g.sha256):
            for r in by_file.get(y, []):
                a0, a1 = cl.aligned(y, g.sha256, r.start_s), cl.aligned(y, g.sha256, r.end_s)
                if _over(min(a0, a1), max(a0, a1), g.start_s, g.end_s) and (best is None or r.id > best[0]):
                    best = (r.id, {"state": r.state, "by": r.author, "id": r.id, "from": y,
                                   "at": round(r.start_s, 1)})
        if best is not None:
            out[g.id] = best[1]
    return out


def collapsed(s: Any, cl: Clusters) -> set[int]:
    """Segments of copies whose aligned stretch in their source is flagged too: the source's row stands for
    them in the queue (a copy's stretch the source's triage did not flag keeps its own row)."""
    copies = cl.copies()
    if not copies:
        return set()
    by_file: dict[str, list[Any]] = defaultdict(list)
    for g in s.execute(select(Segment.id, Segment.sha256, Segment.start_s, Segment.end_s).where(
            Segment.sha256.in_(list(copies | {cl.members[x].source for x in copies})))):
        by_file[g.sha256].append(g)
    out = set()
    for x in copies:
        m = cl.members[x]
        for g in by_file.get(x, []):
            a0, a1 = sorted((m.to_source(g.start_s), m.to_source(g.end_s)))
            if any(h.start_s < a1 and h.end_s > a0 for h in by_file.get(m.source, [])):
                out.add(g.id)
    return out


def queue_view(s: Any) -> tuple[Clusters, dict[int, dict[str, Any]], set[int]]:
    """The clusters, the covered segments and the collapsed ones, for the queue (cheap when nothing matched)."""
    cl = load_clusters(s)
    if not cl:
        return cl, {}, set()
    return cl, covered(s, cl), collapsed(s, cl)


def member_panel(cl: Clusters, sha: str, names: dict[str, str], frames_per_match: int = 4) -> list[dict[str, Any]]:
    """For the workspace page of ``sha``: every other member of its cluster, with its offset from this one, what
    was done (the stored match's words), where to open it at the aligned time, and a few matched frame pairs
    (times in this file and in the other) for the side-by-side evidence."""
    if sha not in cl.members:
        return []
    out = []
    for y in cl.others(sha):
        direct = [r for r in cl.matches if {r.a, r.b} == {sha, y}]
        pairs: list[dict[str, float]] = []
        how: list[str] = []
        if direct:
            r = direct[0]
            how = list(r.transforms or [])
            fr = list(r.frames or [])
            if len(fr) > frames_per_match:
                step = (len(fr) - 1) / (frames_per_match - 1)
                fr = [fr[round(i * step)] for i in range(frames_per_match)]
            for f in fr:
                here, there = (f["a_t"], f["b_t"]) if r.a == sha else (f["b_t"], f["a_t"])
                pairs.append({"here": round(float(here), 1), "there": round(float(there), 1)})
        else:  # linked through another member: the aligned times only
            how = [w for r in cl.matches if y in (r.a, r.b) for w in (r.transforms or [])][:4]
        offset = cl.aligned(sha, y, 0.0)  # where this file's start lies in the other (negative: before it)
        out.append({"sha256": y, "name": names.get(y, y[:12]), "relation": cl.members[y].relation,
                    "offset_s": round(offset, 2), "rate": round(cl.members[y].rate / cl.members[sha].rate, 3),
                    "transforms": how, "direct": bool(direct), "pairs": pairs})
    return out

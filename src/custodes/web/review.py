"""Review states per flagged stretch, and the plain-language reasons for a flag (one place for them:
triage/reasons.py).

A review is a verdict on the span it judged: the file (``sha256``) and the segment's ``start_s``–``end_s`` when it
was given, kept in its ``Review`` row (append-only, sealed) and in its signed ``review`` event. Triage run again
replaces a file's segments (new ids, maybe other spans), so a segment's state is the newest review whose span is
the same stretch as the segment's (intersection over union at least ``MATCH_IOU``): a verdict survives re-triage
and never lands on a segment covering another time range. A segment without one is unreviewed.

The four-eyes rule: confirming or disputing is a second review, by someone other than whoever reviewed the
stretch before; once a second review was given, only an investigator or an admin may record another kind of
state over it (recorded as overriding it), never the first reviewer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, case, or_, select

from custodes.store.db import Review
from custodes.triage.reasons import plain_reason, plain_reasons

__all__ = ["plain_reason", "plain_reasons"]

UNREVIEWED = "unreviewed"
NOTHING = "nothing of concern"
ANNOTATED = "annotated"
SECOND = "second review wanted"
CONFIRMED = "confirmed"
DISPUTED = "disputed"
STATES = (NOTHING, ANNOTATED, SECOND, CONFIRMED, DISPUTED)  # what a reviewer may record
ALL_STATES = (UNREVIEWED, *STATES)
DONE = (NOTHING, ANNOTATED, CONFIRMED, DISPUTED)  # a segment in one of these needs nobody's eyes now
SECOND_REVIEW = (CONFIRMED, DISPUTED)  # a second reviewer's verdict (four eyes)
MATCH_IOU = 0.5  # a review is about a segment when their spans overlap by at least this share of both together


def same_span(a_start: float, a_end: float, b_start: float, b_end: float) -> bool:
    """Whether two stretches of one file are the same stretch: intersection over union >= ``MATCH_IOU``."""
    inter = min(a_end, b_end) - max(a_start, b_start)
    union = max(a_end, b_end) - min(a_start, b_start)
    if union <= 0:  # two instants
        return a_start == b_start
    return inter > 0 and inter >= MATCH_IOU * union


def span_match(review: Any, segment: Any) -> Any:
    """``same_span`` in SQL, between a review table (or alias) and a segment table."""
    inter = (case((review.end_s < segment.end_s, review.end_s), else_=segment.end_s)
             - case((review.start_s > segment.start_s, review.start_s), else_=segment.start_s))
    union = (case((review.end_s > segment.end_s, review.end_s), else_=segment.end_s)
             - case((review.start_s < segment.start_s, review.start_s), else_=segment.start_s))
    return and_(review.sha256 == segment.sha256, or_(
        and_(review.start_s == segment.start_s, review.end_s == segment.end_s),
        and_(review.start_s < segment.end_s, review.end_s > segment.start_s, inter >= MATCH_IOU * union)))


def reviews_by_file(s: Any, shas: Iterable[str]) -> dict[str, list[Review]]:
    """Every review of these files, oldest first."""
    out: dict[str, list[Review]] = {}
    keys = sorted(set(shas))
    for i in range(0, len(keys), 500):
        for r in s.scalars(select(Review).where(Review.sha256.in_(keys[i:i + 500])).order_by(Review.id)):
            out.setdefault(r.sha256, []).append(r)
    return out


def over(reviews: Sequence[Any], start_s: float, end_s: float) -> list[Any]:
    """The reviews (rows or dicts with start_s/end_s, oldest first) that are about this stretch."""
    def get(r: Any, k: str) -> Any:
        return r[k] if isinstance(r, dict) else getattr(r, k)

    return [r for r in reviews if get(r, "start_s") is not None
            and same_span(float(get(r, "start_s")), float(get(r, "end_s")), start_s, end_s)]


def reviews_over(s: Any, segment: Any) -> list[Review]:
    """The reviews about this segment's stretch, oldest first."""
    return over(reviews_by_file(s, [segment.sha256]).get(segment.sha256, []), segment.start_s, segment.end_s)


def latest_states(s: Any, segments: Iterable[Any]) -> dict[int, dict[str, Any]]:
    """Each segment's newest review over its stretch (state, who, when); a segment without one is absent.
    ``segments``: rows with id, sha256, start_s and end_s."""
    segs = list(segments)
    by_file = reviews_by_file(s, {g.sha256 for g in segs})
    out: dict[int, dict[str, Any]] = {}
    for g in segs:
        mine = over(by_file.get(g.sha256, []), g.start_s, g.end_s)
        if mine:
            r = mine[-1]
            out[g.id] = {"state": r.state, "by": r.author, "id": r.id}
    return out


def first_reviewers(reviews: Sequence[Any]) -> set[str]:
    """Who reviewed a stretch other than as a second review (rows or dicts, the reviews over one stretch)."""
    return {str(r["author"] if isinstance(r, dict) else r.author) for r in reviews
            if (r["state"] if isinstance(r, dict) else r.state) not in SECOND_REVIEW}


def second_reviewers(reviews: Sequence[Any]) -> list[str]:
    """Who gave a second review (confirmed or disputed) of a stretch, as the app allows it: someone who is not
    one of its first reviewers; in the order they gave it. ``reviews``: the reviews over one stretch."""
    first = first_reviewers(reviews)
    out = [str(r["author"] if isinstance(r, dict) else r.author) for r in reviews
           if (r["state"] if isinstance(r, dict) else r.state) in SECOND_REVIEW]
    return list(dict.fromkeys(a for a in out if a not in first))


def second_review(reviews: Sequence[Any]) -> Any | None:
    """The newest second review (confirmed or disputed) over a stretch, if any was given."""
    seconds = [r for r in reviews if (r["state"] if isinstance(r, dict) else r.state) in SECOND_REVIEW]
    return seconds[-1] if seconds else None

"""Review states per segment, and the plain-language reasons for a flag (one place for them: triage/reasons.py).

A segment's review state is the newest ``Review`` row for it (append-only, sealed, each one with a signed
``review`` event in the ledger); a segment without one is unreviewed.
"""

from __future__ import annotations

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

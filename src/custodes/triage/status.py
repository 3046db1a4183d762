"""Which videos triage has not looked at yet (for the queue's "run triage" hint)."""

from __future__ import annotations

from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.db import AnalysisRun, MediaProbe
from custodes.triage.runner import ANALYZER


def untriaged(case: Case) -> list[str]:
    """SHA-256 of every readable video with no triage run of any version (ok or failed)."""
    with case.sessions() as s:
        seen = {sha for (sha,) in s.execute(select(AnalysisRun.sha256).where(AnalysisRun.analyzer == ANALYZER))}
        videos = [sha for (sha,) in s.execute(select(MediaProbe.sha256).where(
            MediaProbe.status.in_(("ok", "damaged")), MediaProbe.width.is_not(None)).order_by(MediaProbe.sha256))]
    return [sha for sha in videos if sha not in seen]

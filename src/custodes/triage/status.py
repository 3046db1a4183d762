"""Where triage stands on a case: the videos it has not looked at yet, the jobs it ran."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.db import AnalysisRun, Job, MediaProbe
from custodes.triage.runner import ANALYZER


def untriaged(case: Case) -> list[str]:
    """SHA-256 of every readable video with no triage run of any version (ok or failed)."""
    with case.sessions() as s:
        seen = {sha for (sha,) in s.execute(select(AnalysisRun.sha256).where(AnalysisRun.analyzer == ANALYZER))}
        videos = [sha for (sha,) in s.execute(select(MediaProbe.sha256).where(
            MediaProbe.status.in_(("ok", "damaged")), MediaProbe.width.is_not(None)).order_by(MediaProbe.sha256))]
    return [sha for sha in videos if sha not in seen]


def list_jobs(case: Case) -> list[dict[str, Any]]:
    """Jobs run on this case, newest first: engine, workers, status, counts and how many results each kept."""
    case.ensure_schema()
    with case.sessions() as s:
        rows = list(s.scalars(select(Job).order_by(Job.started_at.desc())))
        per_job: dict[str, int] = {}
        for (jid,) in s.execute(select(AnalysisRun.job_id)):
            if jid:
                per_job[jid] = per_job.get(jid, 0) + 1
    return [{"id": j.id, "kind": j.kind, "engine": j.engine, "address": j.address, "workers": j.workers,
             "actor": j.actor, "version": j.version, "status": j.status, "host": j.host, "pid": j.pid,
             "started_at": j.started_at, "finished_at": j.finished_at, "counts": j.counts,
             "results_kept": per_job.get(j.id, 0)} for j in rows]

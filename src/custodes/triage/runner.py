"""``custodes triage``: analyse every video of a case into signals and review segments.

Work is per video, in a process pool (``--workers``). Each finished video is
written in one transaction (its signals, its segments and its run record), so
a killed run resumes where it stopped, and a re-run skips every video whose
run record carries the current analysis version. Videos that fail (corrupt,
truncated past repair) get a ``failed`` record with the reason; the rest go on.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from custodes.media.source import MediaRef
from custodes.store.case import Case
from custodes.store.db import AnalysisRun, EvidenceObject, MediaProbe, Provenance, Segment, Signal
from custodes.triage.score import MODEL_NAME, TRIAGE_VERSION, VideoResult, analyze_video

ANALYZER = "triage"


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers are spawned, never forked: a fork copies the locks of OpenCV's, onnxruntime's and
    OpenMP's thread pools while other threads hold them, and the child can hang forever."""
    return multiprocessing.get_context("spawn")


def _worker_init() -> None:
    # one thread per worker process: the pool provides the parallelism
    import cv2

    cv2.setNumThreads(1)


def _analyze(ref: MediaRef) -> VideoResult:
    try:
        return analyze_video(ref)
    except Exception as exc:  # a hostile file must not take the batch down
        return VideoResult(ok=False, error=f"analysis failed: {type(exc).__name__}: {exc}")


@dataclass
class TriageReport:
    videos: int = 0
    analysed: int = 0
    skipped_current: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    not_analysable: list[dict[str, str]] = field(default_factory=list)
    segments: int = 0
    footage_s: float = 0.0
    analysed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pending_videos(case: Case, force: bool = False) -> tuple[list[tuple[str, str, float]], list[dict[str, str]], int]:
    """(todo [(sha, name, duration)], not analysable [{sha, name, reason}], skipped)."""
    with case.sessions() as s:
        rows = s.execute(select(EvidenceObject.sha256, MediaProbe.status, MediaProbe.reason, MediaProbe.width,
                                MediaProbe.duration_s)
                         .join(MediaProbe, MediaProbe.sha256 == EvidenceObject.sha256)
                         .where(EvidenceObject.kind == "file")).all()
        done = {sha for (sha,) in s.execute(select(AnalysisRun.sha256).where(
            AnalysisRun.analyzer == ANALYZER, AnalysisRun.version == TRIAGE_VERSION))}
    names = case.display_names()
    todo, bad, skipped = [], [], 0
    for sha, status, reason, width, dur in rows:
        name = names.get(sha, sha[:12])
        if status == "not_media":
            continue
        if status == "unreadable" or not width:
            bad.append({"sha256": sha, "name": name, "reason": reason or "no video stream"})
            continue
        if sha in done and not force:
            skipped += 1
            continue
        todo.append((sha, name, float(dur or 0.0)))
    todo.sort(key=lambda x: -x[2])  # longest first: better packing across workers
    return todo, bad, skipped


def store_result(case: Case, sha: str, res: VideoResult) -> None:
    now = datetime.now(UTC)
    with case.sessions() as s:
        s.execute(delete(Signal).where(Signal.sha256 == sha))
        s.execute(delete(Segment).where(Segment.sha256 == sha))
        s.execute(delete(AnalysisRun).where(AnalysisRun.sha256 == sha, AnalysisRun.analyzer == ANALYZER))
        s.add_all(Signal(sha256=sha, analyzer=r.analyzer, version=r.version, kind=r.kind, start_s=r.start_s,
                         end_s=r.end_s, value=r.value, data=r.data) for r in res.signals)
        s.add_all(Segment(sha256=sha, start_s=g.start_s, end_s=g.end_s, score=g.score, reasons=g.reasons,
                          model_version=MODEL_NAME, created_at=now) for g in res.segments)
        s.add(AnalysisRun(sha256=sha, analyzer=ANALYZER, version=TRIAGE_VERSION,
                          status="ok" if res.ok else "failed", error=res.error,
                          stats={**res.stats, "peak": res.peak}, finished_at=now))
        s.commit()


def run_triage(case: Case, actor: str, workers: int = 1, force: bool = False,
               progress: Callable[[str, float], None] = lambda k, n: None) -> TriageReport:
    case.ensure_schema()
    rep = TriageReport()
    with case.exclusive("triage"):
        todo, bad, skipped = pending_videos(case, force)
        rep.videos = len(todo) + len(bad) + skipped
        rep.skipped_current, rep.not_analysable = skipped, bad
        progress("total", sum(d for _, _, d in todo))
        paths = {sha: case.store.media_ref(sha) for sha, _, _ in todo}
        names = {sha: name for sha, name, _ in todo}
        durations = {sha: d for sha, _, d in todo}

        def finish(sha: str, res: VideoResult) -> None:
            store_result(case, sha, res)
            rep.footage_s += res.duration_s or durations[sha]
            rep.analysed_s += res.analysed_s
            if res.ok:
                rep.analysed += 1
                rep.segments += len(res.segments)
            else:
                rep.failed.append({"sha256": sha, "name": names[sha], "reason": res.error})
            progress("advance", durations[sha])

        if workers <= 1:
            _worker_init()
            for sha, _, _ in todo:
                finish(sha, _analyze(paths[sha]))
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, mp_context=worker_context()) as ex:
                queue = list(todo)
                running: dict[Future[VideoResult], str] = {}
                while queue or running:
                    while queue and len(running) < workers * 2:
                        sha = queue.pop(0)[0]
                        running[ex.submit(_analyze, paths[sha])] = sha
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        sha = running.pop(fut)
                        try:
                            res = fut.result()
                        except Exception as exc:  # worker died (e.g. killed by the OOM killer)
                            res = VideoResult(ok=False, error=f"worker failed: {exc}")
                        finish(sha, res)
        case.ledger.append(actor, "triage.run", None, {
            "version": TRIAGE_VERSION, "analysed": rep.analysed, "failed": len(rep.failed),
            "skipped_current": rep.skipped_current, "segments": rep.segments, "workers": workers,
            "pid": os.getpid()})
    return rep


def queue_rows(case: Case, limit: int = 0, min_score: float = 0.0) -> dict[str, Any]:
    """The ranked review queue, plus the videos that could not be analysed and why."""
    case.ensure_schema()
    with case.sessions() as s:
        names: dict[str, str] = {}
        paths: dict[str, str] = {}
        for sha, name, src, member in s.execute(select(Provenance.sha256, Provenance.original_name,
                                                       Provenance.source_path, Provenance.member_path)
                                                .order_by(Provenance.recorded_at)):
            names.setdefault(sha, name)
            paths.setdefault(sha, src + (f"!/{member}" if member else ""))
        q = select(Segment).where(Segment.score >= min_score).order_by(Segment.score.desc(), Segment.sha256,
                                                                         Segment.start_s)
        if limit:
            q = q.limit(limit)
        segs = list(s.scalars(q))
        runs = list(s.scalars(select(AnalysisRun).where(AnalysisRun.analyzer == ANALYZER)))
        failed = [r for r in runs if r.status == "failed"]
        partial = [r for r in runs if r.status == "ok" and (r.stats or {}).get("errors")]
        unreadable = list(s.scalars(select(MediaProbe).where(MediaProbe.status == "unreadable")))
    items = [{"rank": i + 1, "sha256": g.sha256, "name": names.get(g.sha256, ""), "source": paths.get(g.sha256, ""),
              "start_s": g.start_s, "end_s": g.end_s, "score": round(g.score, 4),
              "reasons": [r["text"] for r in g.reasons], "signals": g.reasons, "model": g.model_version}
             for i, g in enumerate(segs)]
    not_analysed = [{"sha256": r.sha256, "name": names.get(r.sha256, ""), "reason": r.error} for r in failed]
    not_analysed += [{"sha256": m.sha256, "name": names.get(m.sha256, ""), "reason": m.reason} for m in unreadable]
    partly = [{"sha256": r.sha256, "name": names.get(r.sha256, ""), "reason": "; ".join(r.stats["errors"])}
              for r in partial]
    return {"segments": items, "not_analysed": not_analysed, "partly_analysed": partly}

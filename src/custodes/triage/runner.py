"""``custodes triage``: analyse every video of a case into signals and review segments.

Work is per video, in a process pool (``--workers``). Each finished video is
written in one transaction (its signals, its segments and its run record), so
a killed run resumes where it stopped, and a re-run skips every video whose
run record carries the current analysis version. Videos that fail (corrupt,
truncated past repair) get a ``failed`` record with the reason; the rest go on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from custodes.analyze import edits, pleading
from custodes.engine import EngineError, make_engine
from custodes.media.decode import DecodeError
from custodes.media.source import MediaRef
from custodes.store.case import Case, CaseError
from custodes.store.db import (
    AnalysisRun,
    EvidenceObject,
    Job,
    MediaProbe,
    Provenance,
    Segment,
    Signal,
    TranscriptSegment,
)
from custodes.triage.reasons import plain_reasons
from custodes.triage.score import MODEL_NAME, TRIAGE_VERSION, VideoResult, analyze_video

ANALYZER = "triage"


def _worker_init() -> None:
    """Set up a worker once: one thread each (the pool provides the parallelism), models loaded now."""
    import cv2

    from custodes.analyze.audio_events import AudioEventModel
    from custodes.triage.score import load_models

    cv2.setNumThreads(1)
    load_models()
    # a missing audio model is reported per video by the analysis, which then goes on without audio events
    with contextlib.suppress(Exception):
        AudioEventModel.load()


def _fault_kill_once() -> None:
    # Fault-injection point for the worker-death tests: the first worker to get here (the marker
    # file does not exist yet) dies by SIGKILL, mid-run, as under the OOM killer.
    marker = os.environ.get("CUSTODES_FAULT_KILL_WORKER_ONCE")
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


def _analyze(ref: MediaRef) -> VideoResult:
    _fault_kill_once()
    try:
        return analyze_video(ref)
    except Exception as exc:  # a hostile file must not take the batch down
        why = str(exc).strip() or "no message"  # MemoryError and friends carry none
        return VideoResult(ok=False, error=f"analysis failed: {type(exc).__name__}: {why}")


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


def store_result(case: Case, sha: str, res: VideoResult, job_id: str | None = None, attempts: int = 1) -> None:
    """All of one video's results in one transaction, replacing any earlier ones: never duplicated."""
    now = datetime.now(UTC)
    with case.sessions() as s:
        # the findings of other stages stay: edits inside the file (timeline) do not depend on triage; pose
        # looked at the segments being replaced, so it goes with them and is run again by the next `pose`
        s.execute(delete(Signal).where(Signal.sha256 == sha, Signal.analyzer != edits.ANALYZER))
        s.execute(delete(Segment).where(Segment.sha256 == sha))
        s.execute(delete(AnalysisRun).where(AnalysisRun.sha256 == sha, AnalysisRun.analyzer.in_((ANALYZER, "pose"))))
        s.add_all(Signal(sha256=sha, analyzer=r.analyzer, version=r.version, kind=r.kind, start_s=r.start_s,
                         end_s=r.end_s, value=r.value, data=r.data) for r in res.signals)
        s.add_all(Segment(sha256=sha, start_s=g.start_s, end_s=g.end_s, score=g.score, reasons=g.reasons,
                          model_version=MODEL_NAME, created_at=now) for g in res.segments)
        s.add(AnalysisRun(sha256=sha, analyzer=ANALYZER, version=TRIAGE_VERSION,
                          status="ok" if res.ok else "failed", error=res.error,
                          stats={**res.stats, "peak": res.peak}, finished_at=now, job_id=job_id,
                          attempts=attempts, worker=str(res.stats.get("worker", ""))))
        s.commit()


def _start_job(case: Case, kind: str, engine: Any, actor: str, version: str = TRIAGE_VERSION) -> str:
    """Record a new job; any job of this kind still marked running was killed (we hold the case lock)."""
    now = datetime.now(UTC)
    job_id = str(uuid.uuid4())
    with case.sessions() as s:
        for stale in s.scalars(select(Job).where(Job.kind == kind, Job.status == "running")):
            stale.status = "interrupted"
        s.add(Job(id=job_id, kind=kind, engine=engine.name, address=engine.address, workers=engine.workers,
                  actor=actor, version=version, status="running", host=socket.gethostname(),
                  pid=os.getpid(), started_at=now, counts={}))
        s.commit()
    return job_id


def _finish_job(case: Case, job_id: str, counts: dict[str, Any]) -> None:
    with case.sessions() as s:
        job = s.get(Job, job_id)
        if job is not None:
            job.status, job.finished_at, job.counts = "done", datetime.now(UTC), counts
            s.commit()


def run_triage(case: Case, actor: str, workers: int = 1, force: bool = False,
               progress: Callable[[str, float], None] = lambda k, n: None,
               engine: str = "local", address: str | None = None) -> TriageReport:
    case.ensure_schema()
    rep = TriageReport()
    try:
        runner = make_engine(engine, workers, address)
    except EngineError as exc:
        raise CaseError(str(exc)) from exc
    with case.exclusive("triage"):
        todo, bad, skipped = pending_videos(case, force)
        rep.videos = len(todo) + len(bad) + skipped
        rep.skipped_current, rep.not_analysable = skipped, bad
        progress("total", sum(d for _, _, d in todo))
        names = {sha: name for sha, name, _ in todo}
        durations = {sha: d for sha, _, d in todo}
        job_id = _start_job(case, "triage", runner, actor)

        def finish(sha: str, res: VideoResult, attempts: int) -> None:
            store_result(case, sha, res, job_id, attempts)
            rep.footage_s += res.duration_s or durations[sha]
            rep.analysed_s += res.analysed_s
            if res.ok:
                rep.analysed += 1
                rep.segments += len(res.segments)
            else:
                rep.failed.append({"sha256": sha, "name": names[sha], "reason": res.error})
            progress("advance", durations[sha])

        def failed(sha: str, reason: str, attempts: int) -> None:
            finish(sha, VideoResult(ok=False, error=reason), attempts)

        try:
            runner.run([(sha, case.store.media_ref(sha)) for sha, _, _ in todo], _analyze, _worker_init,
                       finish, failed)
        except EngineError as exc:
            raise CaseError(str(exc)) from exc
        counts = {"analysed": rep.analysed, "failed": len(rep.failed), "skipped_current": rep.skipped_current,
                  "segments": rep.segments}
        _finish_job(case, job_id, counts)
        case.ledger.append(actor, "triage.run", None, {
            "version": TRIAGE_VERSION, **counts, "workers": workers, "engine": runner.name,
            "address": runner.address, "job": job_id, "pid": os.getpid()})
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
        pleas = _pleas(s, {g.sha256 for g in segs})
    items = []
    for i, g in enumerate(segs):
        signals = list(g.reasons)
        if plea := pleading.reasons_for(pleas.get(g.sha256, []), g.start_s, g.end_s):
            signals.append(plea)  # from the sealed transcripts, read as the queue is listed
        items.append({"rank": i + 1, "sha256": g.sha256, "name": names.get(g.sha256, ""),
                      "source": paths.get(g.sha256, ""), "start_s": g.start_s, "end_s": g.end_s,
                      "score": round(g.score, 4), "reasons": plain_reasons(signals), "signals": signals,
                      "model": g.model_version})
    not_analysed = [{"sha256": r.sha256, "name": names.get(r.sha256, ""), "reason": r.error} for r in failed]
    not_analysed += [{"sha256": m.sha256, "name": names.get(m.sha256, ""), "reason": m.reason} for m in unreadable]
    partly = [{"sha256": r.sha256, "name": names.get(r.sha256, ""), "reason": "; ".join(r.stats["errors"])}
              for r in partial]
    return {"segments": items, "not_analysed": not_analysed, "partly_analysed": partly}


def _pleas(s: Any, shas: set[str]) -> dict[str, list[pleading.Plea]]:
    """Pleading heard in the transcripts of these videos (none before `custodes transcribe`)."""
    found: dict[str, list[pleading.Plea]] = {}
    if not shas:
        return found
    for sha, words in s.execute(select(TranscriptSegment.sha256, TranscriptSegment.words)
                                .where(TranscriptSegment.sha256.in_(shas))):
        found.setdefault(sha, []).extend(pleading.find_pleas(words or []))
    return found


@dataclass
class PoseReport:
    videos: int = 0
    segments: int = 0
    skipped_current: int = 0
    seconds: float = 0.0
    down: int = 0
    strikes: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_pose(case: Case, actor: str, top: int = 20, min_score: float = 0.3, pad_s: float = 2.0,
             progress: Callable[[str, float], None] = lambda k, n: None) -> PoseReport:
    """A second look at the top of the queue: pose on each of the ``top`` best segments (score ≥ ``min_score``).

    Pose costs about a core-second per second of footage, too much for every candidate window, and on
    fight-surv it does not improve the classifier (grouped AUC 0.816 → 0.817), so it does not change
    scores. It adds what a reviewer wants to know first: someone on the floor, blows and kicks, as
    signals and as reasons on the segment. Videos whose pose run is current are skipped.
    """
    from custodes.analyze import pose

    if not pose.available():
        raise CaseError("pose needs its own environment (MediaPipe with numpy<2): run `make pose`, "
                        "or set CUSTODES_POSE_PYTHON")
    case.ensure_schema()
    rep = PoseReport()
    with case.exclusive("triage"):
        with case.sessions() as s:
            segs = list(s.scalars(select(Segment).where(Segment.score >= min_score)
                                  .order_by(Segment.score.desc()).limit(top)))
            done = {sha for (sha,) in s.execute(select(AnalysisRun.sha256).where(
                AnalysisRun.analyzer == "pose", AnalysisRun.version == pose.VERSION))}
        by_video: dict[str, list[Segment]] = {}
        for g in segs:
            by_video.setdefault(g.sha256, []).append(g)
        todo = {sha: gs for sha, gs in by_video.items() if sha not in done}
        rep.skipped_current = len(by_video) - len(todo)
        from custodes.engine.local import LocalEngine

        job_id = _start_job(case, "pose", LocalEngine(1), actor, pose.VERSION)
        progress("total", sum(g.end_s - g.start_s + 2 * pad_s for gs in todo.values() for g in gs))
        for sha, gs in todo.items():
            found: list[tuple[str, float, float, float]] = []
            error = ""
            for g in gs:
                try:
                    tr = pose.track(case.store.media_ref(sha), max(0.0, g.start_s - pad_s), g.end_s + pad_s)
                except (pose.PoseUnavailable, DecodeError) as exc:
                    error = str(exc)
                    break
                found += pose.signals(tr)
                rep.segments += 1
                rep.seconds += g.end_s - g.start_s + 2 * pad_s
                progress("advance", g.end_s - g.start_s + 2 * pad_s)
            _store_pose(case, sha, gs, found, error, pose.VERSION, job_id)
            rep.videos += 1
            rep.down += sum(1 for k, *_ in found if k == "pose_down")
            rep.strikes += sum(1 for k, *_ in found if k == "pose_strike")
            if error:
                rep.failed.append({"sha256": sha, "reason": error})
        _finish_job(case, job_id, {k: v for k, v in rep.as_dict().items() if k != "failed"})
        case.ledger.append(actor, "pose.run", None, {"version": pose.VERSION, "job": job_id, **{
            k: v for k, v in rep.as_dict().items() if k != "failed"}, "failed": len(rep.failed)})
    return rep


def _store_pose(case: Case, sha: str, segs: list[Segment], found: list[tuple[str, float, float, float]],
                error: str, version: str, job_id: str) -> None:
    texts = {"pose_down": "a person on the floor ({d:.1f} s)", "pose_strike": "fast strike or kick ({n}×)"}
    with case.sessions() as s:
        s.execute(delete(Signal).where(Signal.sha256 == sha, Signal.analyzer == "pose"))
        s.execute(delete(AnalysisRun).where(AnalysisRun.sha256 == sha, AnalysisRun.analyzer == "pose"))
        s.add_all(Signal(sha256=sha, analyzer="pose", version=version, kind=k, start_s=a, end_s=b, value=v)
                  for k, a, b, v in found)
        for g in segs:
            row = s.get(Segment, g.id)
            if row is None:
                continue
            inside = [(k, a, b) for k, a, b, _ in found if a < row.end_s and b > row.start_s]
            reasons = [r for r in (row.reasons or []) if not str(r.get("signal", "")).startswith("pose_")]
            down = sum(b - a for k, a, b in inside if k == "pose_down")
            strikes = sum(1 for k, *_ in inside if k == "pose_strike")
            if down:
                reasons.append({"signal": "pose_down", "value": round(down, 1),
                                "text": texts["pose_down"].format(d=down)})
            if strikes:
                reasons.append({"signal": "pose_strike", "value": strikes,
                                "text": texts["pose_strike"].format(n=strikes)})
            row.reasons = reasons
        s.add(AnalysisRun(sha256=sha, analyzer="pose", version=version, status="failed" if error else "ok",
                          error=error, stats={"signals": len(found), "segments": len(segs)},
                          finished_at=datetime.now(UTC), job_id=job_id))
        s.commit()

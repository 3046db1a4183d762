"""Transcribe every video with audio into the case (resumable, versioned), then index it.

Non-English speech also gets an English machine translation (Whisper's own translate task, offline, the same
weights), stored beside the original in ``transcripts.translation``; wherever it is shown it is marked as a
machine translation (``MACHINE_TRANSLATION``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, select

from custodes.analyze import speech
from custodes.search.index import reindex
from custodes.store.case import Case
from custodes.store.db import AnalysisRun, MediaProbe, TranscriptSegment

ANALYZER = "speech"
MACHINE_TRANSLATION = "machine translation"
MACHINE_TRANSCRIPT = "machine transcript"


def transcribe_case(case: Case, language: str | None = None, progress: Callable[[int], None] = lambda n: None,
                    translate: bool = True) -> dict[str, int]:
    case.ensure_schema()
    with case.sessions() as s:
        vids = [sha for (sha,) in s.execute(select(MediaProbe.sha256).where(
            MediaProbe.status.in_(("ok", "damaged")), MediaProbe.audio_codec.is_not(None)))]
        done = {sha for (sha,) in s.execute(select(AnalysisRun.sha256).where(
            AnalysisRun.analyzer == ANALYZER, AnalysisRun.version == speech.VERSION))}
    todo = [v for v in vids if v not in done]
    segments = failed = translated = 0
    for sha in todo:
        err = ""
        try:
            segs = speech.transcribe_file(case.store.media_ref(sha), language, translate=translate)
        except speech.SpeechModelUnavailable:
            raise
        except Exception as exc:  # one bad file must not stop the rest
            segs, err = [], f"{type(exc).__name__}: {exc}"
            failed += 1
        with case.sessions() as s:
            s.execute(delete(TranscriptSegment).where(TranscriptSegment.sha256 == sha))
            s.execute(delete(AnalysisRun).where(AnalysisRun.sha256 == sha, AnalysisRun.analyzer == ANALYZER))
            s.add_all(TranscriptSegment(sha256=sha, start_s=g.start_s, end_s=g.end_s, text=g.text,
                                        language=g.language, avg_logprob=g.avg_logprob, words=g.words,
                                        version=speech.VERSION, translation=g.translation) for g in segs)
            s.add(AnalysisRun(sha256=sha, analyzer=ANALYZER, version=speech.VERSION,
                              status="failed" if err else "ok", error=err, stats={"segments": len(segs)},
                              finished_at=datetime.now(UTC)))
            s.commit()
        segments += len(segs)
        translated += sum(1 for g in segs if g.translation)
        progress(1)
    reindex(case, kinds=("transcript",))
    return {"videos": len(vids), "transcribed": len(todo), "skipped_current": len(vids) - len(todo),
            "segments": segments, "translated": translated, "failed": failed}


def translations(case: Case, ids: list[str]) -> dict[str, str]:
    """The English machine translation of each transcript segment (by id, as search hits name it) that has one."""
    keys = [int(i) for i in ids if str(i).isdigit()]
    if not keys:
        return {}
    with case.sessions() as s:
        return {str(i): str(t) for i, t in s.execute(select(TranscriptSegment.id, TranscriptSegment.translation).where(
            TranscriptSegment.id.in_(keys), TranscriptSegment.translation.is_not(None)))}

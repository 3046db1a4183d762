"""Transcripts (Whisper base, offline) and full-text search over transcripts, overlays and notes."""

import numpy as np
import pytest
from sqlalchemy import select, text

from custodes.analyze.speech import looks_wrong, transcribe_wave, word_error_rate
from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import espeak
from custodes.search.index import SearchError, search
from custodes.search.transcribe import transcribe_case
from custodes.store.case import Case
from custodes.store.db import TranscriptSegment
from custodes.store.verify import verify_case
from custodes.timeline.build import read_recordings
from tests.conftest import cli_json, run_cli

EN = "Open the cell door. Everybody stay where you are."
RU = "Откройте дверь камеры. Всем оставаться на местах."
EN2 = "Stop resisting and get down on the floor."


@pytest.mark.no_database
def test_wer():
    assert word_error_rate("a b c d", "a b c d") == 0
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert word_error_rate("Всё спокойно.", "все спокойно") == 0


def _voices():
    en, ru = espeak(EN, "en"), espeak(RU, "ru")
    if en is None or ru is None:
        pytest.skip("no speech synthesiser")
    return en, ru


@pytest.mark.no_database
def test_looks_wrong():
    good = [{"word": "Откройте", "p": 0.9}, {"word": "дверь", "p": 0.8}]
    assert not looks_wrong(good, "ru") and looks_wrong(good, "en")  # Cyrillic decoded as English
    assert looks_wrong([{"word": "ОПНОССЕЛЬОР!", "p": 0.29}], "ru")  # English speech forced into Russian
    assert looks_wrong([], "ru", voiced_s=2.0) and not looks_wrong([], "ru", voiced_s=0.5)


@pytest.mark.no_database
def test_one_language_costs_one_call_and_one_detection():
    """A file in one language is decoded in one Whisper call over its joined voiced chunks, with one language
    detection for the file, not one of each per chunk."""
    _voices()
    said = ["Stop resisting and get down on the floor.", "He needs a doctor, he is not breathing properly.",
            "Nobody saw anything, do you understand me?", "Bring him to the medical room right now."]
    silence = np.zeros(24000, np.float32)
    parts = [silence]
    for line in said:
        parts += [espeak(line, "en"), silence]
    stats: dict[str, int] = {}
    segs = transcribe_wave(np.concatenate(parts), stats=stats)
    # at most one chunk looked at again (espeak's English is unclear speech), never each one
    assert stats["chunks"] == 4 and stats["calls"] == 1 and stats["detections"] <= 2, stats
    assert {s.language for s in segs} == {"en"} and all(s.translation is None for s in segs)
    assert word_error_rate(" ".join(said), " ".join(s.text for s in segs)) <= 0.2


@pytest.mark.no_database
@pytest.mark.slow
def test_russian_then_english_gets_each_part_right_and_a_translation():
    """Code switching: detected once as Russian, the English part's words look wrong (or are missing), so
    that chunk alone is detected again and decoded as English; the Russian part gets an English machine
    translation, the English part none."""
    _, ru = _voices()
    en = espeak(EN2, "en")
    silence = np.zeros(24000, np.float32)
    stats: dict[str, int] = {}
    segs = transcribe_wave(np.concatenate([silence, ru, silence, en, silence]), translate=True, stats=stats)
    by_lang: dict[str, list] = {}
    for s in segs:
        by_lang.setdefault(s.language, []).append(s)
    assert set(by_lang) == {"ru", "en"}, [(s.language, s.text) for s in segs]
    assert by_lang["ru"][-1].end_s <= by_lang["en"][0].start_s
    assert word_error_rate(RU, " ".join(s.text for s in by_lang["ru"])) <= 0.35
    assert word_error_rate(EN2, " ".join(s.text for s in by_lang["en"])) <= 0.35
    assert stats["detections"] <= 3  # the file, and the chunk that looked wrong
    ru_en = " ".join(s.translation or "" for s in by_lang["ru"]).lower()
    assert "door" in ru_en and not any("\u0400" <= c <= "\u04ff" for c in ru_en), ru_en
    assert all(s.translation is None for s in by_lang["en"])
    words = [w for s in by_lang["en"] for w in s.words]
    assert words and words[0]["start"] >= (24000 * 2 + len(ru)) / 16000 - 0.5  # in file time, after the Russian


@pytest.mark.no_database
def test_english_and_russian_in_one_recording():
    en, ru = _voices()
    silence = np.zeros(24000, np.float32)
    segs = transcribe_wave(np.concatenate([silence, en, silence, ru, silence]))
    by_lang = {}
    for s in segs:
        by_lang.setdefault(s.language, []).append(s)
    assert set(by_lang) == {"en", "ru"}
    assert word_error_rate(EN, " ".join(s.text for s in by_lang["en"])) <= 0.35
    assert word_error_rate(RU, " ".join(s.text for s in by_lang["ru"])) <= 0.35
    assert by_lang["en"][0].start_s < by_lang["ru"][0].start_s
    words = [w for s in segs for w in s.words]
    assert all(w["start"] <= w["end"] for w in words) and words[0]["start"] >= 1.0  # after the silence


@pytest.fixture(scope="module")
def searchable(tmp_path_factory, demo_drive):
    drive, truth = demo_drive
    case = Case.init(tmp_path_factory.mktemp("search") / "case", "tester")
    Ingestor(case, "tester", note="Drive from source K, label 'B-block March'").run([drive])
    read_recordings(case)
    doc = transcribe_case(case)
    return case, doc


def test_transcribe_case_and_rerun(searchable):
    case, doc = searchable
    # 7: the WhatsApp re-encode has no audio track; the drive has three utterances (demo/build.py), at least one
    # segment each (Whisper may or may not split "Cell check, block B. All quiet." in two: both are right)
    assert doc["transcribed"] == 7 and doc["failed"] == 0 and doc["segments"] >= 3
    again = transcribe_case(case)
    assert again["transcribed"] == 0 and again["skipped_current"] == 7


def test_search_finds_english_speech_at_its_time(searchable):
    case, _ = searchable
    hits = search(case, "quiet")
    assert hits and hits[0]["kind"] == "transcript"
    assert hits[0]["name"] in ("CAM01_20260314_020000.mp4", "CAM01_20260314_020000 (1).mp4")
    assert 2.0 <= hits[0]["start_s"] <= 6.0  # spoken at 3 s into the clip


def test_search_finds_russian_speech(searchable):
    case, _ = searchable
    hits = search(case, "спокойно")
    assert hits and hits[0]["name"] == "CAM02_20260314_020000.mp4"


def test_russian_demo_speech_has_an_english_machine_translation(searchable):
    case, doc = searchable
    with case.sessions() as s:
        rows = list(s.scalars(select(TranscriptSegment)))
    ru = [r for r in rows if r.language == "ru"]
    assert ru and doc["translated"] >= 1
    english = " ".join(r.translation or "" for r in ru).lower()
    assert "camera" in english or "check" in english or "calm" in english, english
    assert not any("\u0400" <= c <= "\u04ff" for c in english)
    assert all(r.translation is None for r in rows if r.language == "en")
    # the CLI shows it, marked as machine translation
    hit = next(h for h in cli_json("search", str(case.root), "спокойно")["hits"] if h["kind"] == "transcript")
    assert hit["translation"] and hit["translation_is"] == "machine translation"
    out = run_cli("search", str(case.root), "спокойно", env={"COLUMNS": "300"}).stdout
    assert "machine translation, English" in out


def test_verify_catches_an_edited_translation(searchable):
    case, _ = searchable
    assert verify_case(case).ok
    with case.sessions() as s:
        row = s.scalars(select(TranscriptSegment).where(TranscriptSegment.translation.is_not(None))).first()
        assert row is not None
        rid, sha, was = row.id, row.sha256, row.translation
    try:
        with case.engine.begin() as conn:
            conn.execute(text("UPDATE transcripts SET translation = 'All is calm, nobody was beaten.' "
                              "WHERE id = :i"), {"i": rid})
        assert ("record.mismatch", f"transcripts:{sha}") in {(p.kind, p.where) for p in verify_case(case).problems}
    finally:
        with case.engine.begin() as conn:
            conn.execute(text("UPDATE transcripts SET translation = :t WHERE id = :i"), {"t": was, "i": rid})
    assert verify_case(case).ok


def test_search_overlay_and_notes(searchable):
    case, _ = searchable
    from custodes.search.index import reindex

    reindex(case)
    assert any(h["kind"] == "overlay" for h in search(case, "CAM 02"))
    assert any(h["kind"] == "note" for h in search(case, "source K"))


def test_hostile_queries_are_safe(searchable):
    case, _ = searchable
    # FTS5 syntax in user input is quoted away: these are plain words, never operators or SQL
    for q in ("NEAR(", "a OR", "cell) OR (1", "-- ;DROP TABLE x", 'quiet" OR "x'):
        assert isinstance(search(case, q), list)
    assert search(case, 'quiet" OR "x') == []  # all words must occur: "x" does not
    for q in ('"', "*", "!!!"):
        with pytest.raises(SearchError):
            search(case, q)


def test_search_cli_json(searchable):
    case, _ = searchable
    doc = cli_json("search", str(case.root), "cell", "--kind", "transcript")
    assert doc["query"] == "cell" and all(h["kind"] == "transcript" for h in doc["hits"])
    assert run_cli("search", str(case.root), "!!!").returncode == 1


def test_postgres_query_matches_numbers_read_after_a_hyphen():
    from custodes.search.index import _pg_query

    # PostgreSQL indexes 'CAM-02' as 'cam' and '-02': a query for "CAM 02" must match that
    assert _pg_query("CAM 02") == "'CAM' & ('02':* | '-02':*)"
    assert _pg_query("02 door") == "('02' | '-02') & 'door':*"

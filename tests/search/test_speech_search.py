"""Transcripts (Whisper base, offline) and full-text search over transcripts, overlays and notes."""

import numpy as np
import pytest

from custodes.analyze.speech import transcribe_wave, word_error_rate
from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import espeak
from custodes.search.index import SearchError, search
from custodes.search.transcribe import transcribe_case
from custodes.store.case import Case
from custodes.timeline.build import read_recordings
from tests.conftest import cli_json, run_cli

EN = "Open the cell door. Everybody stay where you are."
RU = "Откройте дверь камеры. Всем оставаться на местах."


def test_wer():
    assert word_error_rate("a b c d", "a b c d") == 0
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert word_error_rate("Всё спокойно.", "все спокойно") == 0


def test_english_and_russian_in_one_recording():
    en, ru = espeak(EN, "en"), espeak(RU, "ru")
    if en is None or ru is None:
        pytest.skip("no speech synthesiser")
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
    # 7: the WhatsApp re-encode has no audio track
    assert doc["transcribed"] == 7 and doc["failed"] == 0 and doc["segments"] >= 4
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

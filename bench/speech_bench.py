"""Transcript word error rate on speech synthesised offline (espeak-ng English, Festival Russian)."""

from __future__ import annotations

import time

import numpy as np

from custodes.analyze.speech import transcribe_wave, word_error_rate
from custodes.media.synth import espeak

SENTENCES = {
    "en": ["Cell check, block B. All quiet tonight.", "Open the cell door. Everybody stay where you are.",
           "Stop resisting and get down on the floor.", "He needs a doctor, he is not breathing properly.",
           "Nobody saw anything, do you understand me?"],
    "ru": ["Проверка камеры, всё спокойно.", "Откройте дверь камеры. Всем оставаться на местах.",
           "Лицом к стене, руки за спину.", "Ему нужен врач, он плохо дышит.",
           "Никто ничего не видел, ты меня понял?"],
}


def run() -> dict:
    out: dict = {"bench": "speech transcripts, word error rate (Whisper base int8, VAD, per-chunk language)"}
    for lang, sents in SENTENCES.items():
        errs, words, audio_s, t0 = 0.0, 0, 0.0, time.perf_counter()
        for s in sents:
            wave = espeak(s, lang)
            if wave is None:
                out[lang] = "no synthesiser"
                break
            pad = np.zeros(8000, np.float32)
            audio = np.concatenate([pad, wave, pad])
            audio_s += len(audio) / 16000
            hyp = " ".join(x.text for x in transcribe_wave(audio))
            n = len(s.split())
            errs += word_error_rate(s, hyp) * n
            words += n
        else:
            out[lang] = {"wer": round(errs / words, 3), "words": words,
                         "x_realtime": round(audio_s / (time.perf_counter() - t0), 1)}
    return out

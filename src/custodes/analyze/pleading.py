"""Pleading and pain in speech: "не надо", "больно", "хватит", "stop", "please", "it hurts".

Body cameras record sound, and what a person being beaten says is often the clearest sign of it. This
analyzer reads the word-timed transcripts that ``custodes transcribe`` stored and finds phrases of begging,
pain and protest, in Russian and English, so the queue can say "someone pleads: «не надо» at 0:31".

It is a reason for a reviewer, not a score: the phrases are also said in calm moments ("please sit down"),
and no labelled footage here measures whether they should move a segment up. A phrase counts only in
full words (``надо`` alone is no plea; ``не надо`` is), case and ``ё`` folded, punctuation ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

VERSION = "pleading-1"

# Each phrase as words. Russian inflections that matter are listed (больно / больно!, не бейте / не бей).
PHRASES: dict[str, tuple[str, ...]] = {
    "ru": ("не надо", "не бейте", "не бей", "больно", "мне больно", "хватит", "пожалуйста", "отпустите",
           "отпусти", "помогите", "прекратите", "перестаньте", "за что", "не могу дышать", "умоляю",
           "я ничего не сделал", "простите"),
    "en": ("stop", "please", "it hurts", "that hurts", "you're hurting me", "help", "help me", "let me go",
           "i can't breathe", "don't", "no more", "i didn't do anything", "leave me alone"),
}
WORD = re.compile(r"[\w']+", re.UNICODE)


def _fold(word: str) -> str:
    return word.lower().replace("ё", "е").replace("’", "'")


def _tokens(words: Iterable[dict[str, Any]]) -> list[tuple[str, float, float]]:
    """Every spoken token with its time; Whisper's words carry punctuation and sometimes two tokens."""
    out = []
    for w in words:
        for tok in WORD.findall(_fold(str(w.get("word", "")))):
            out.append((tok, float(w.get("start", 0.0)), float(w.get("end", w.get("start", 0.0)))))
    return out


_PATTERNS = {lang: sorted((tuple(WORD.findall(_fold(p))) for p in phrases), key=len, reverse=True)
             for lang, phrases in PHRASES.items()}


@dataclass(frozen=True)
class Plea:
    start_s: float
    end_s: float
    phrase: str
    language: str


def find_pleas(words: list[dict[str, Any]]) -> list[Plea]:
    """The phrases of pleading in one transcript segment's words (longest phrase first at each word)."""
    toks = _tokens(words)
    found: list[Plea] = []
    i = 0
    while i < len(toks):
        match = None
        for lang, patterns in _PATTERNS.items():
            for pat in patterns:
                if tuple(t[0] for t in toks[i:i + len(pat)]) == pat and (match is None or len(pat) > len(match[1])):
                    match = (lang, pat)
        if match:
            lang, pat = match
            found.append(Plea(toks[i][1], toks[i + len(pat) - 1][2], " ".join(pat), lang))
            i += len(pat)
        else:
            i += 1
    return found


def reasons_for(pleas: list[Plea], start_s: float, end_s: float, pad_s: float = 2.0) -> dict[str, Any] | None:
    """The reason a segment [start_s, end_s] gets from the pleas heard in or just around it, or None."""
    inside = [p for p in pleas if p.end_s >= start_s - pad_s and p.start_s <= end_s + pad_s]
    if not inside:
        return None
    phrases = list(dict.fromkeys(p.phrase for p in inside))
    first = min(p.start_s for p in inside)
    shown = ", ".join(f"«{p}»" for p in phrases[:3]) + (" …" if len(phrases) > 3 else "")
    return {"signal": "speech:pleading", "value": len(inside), "at_s": round(first, 2), "phrases": phrases,
            "text": f"someone pleads or cries out in pain: {shown} at {int(first) // 60}:{int(first) % 60:02d} "
                    "(from the machine transcript)"}

"""Machine transcripts fit to show a court: repetition loops and typical hallucinated text.

Whisper, given noise, music or a long struggle, is known to loop ("No, no, no, ..." a hundred times) and to
emit text it learned from subtitled video rather than heard: subtitle credits ("Субтитры сделал DimaTorzok"),
"Продолжение следует...", "Thanks for watching!". Neither is what was said. ``fit_to_show`` returns the text
to print and a short note of what was taken out, so a report never prints a loop or a credit as speech and
always says that something was removed.
"""

from __future__ import annotations

import re
import unicodedata

LOOP_NOTE = "repetition loop removed"
HALLUCINATION_NOTE = "text typical of speech-recognition hallucination removed (not speech)"

# a unit (1..MAX_UNIT words) repeated at least MIN_REPEATS times in a row is a loop; KEEP of them are shown
MAX_UNIT = 8
MIN_REPEATS = 4
KEEP = 2
# a single word repeated this often (a sound Whisper stretches: "а-а-а-а", "hahahaha") is a loop too
CHAR_RUN = re.compile(r"([^\W\d]{1,4}?)(?:[-‐ ]?\1){7,}", re.IGNORECASE)

# Normalised (lower case, letters, digits and single spaces) phrases that Whisper is known to produce from
# silence or noise. A segment that is nothing but one of them (or starts with a credit line) is not speech.
_WHOLE = {
    "продолжение следует", "спасибо за просмотр", "спасибо за внимание", "подписывайтесь на канал",
    "ставьте лайки", "до новых встреч", "редактор субтитров", "субтитры", "аплодисменты", "музыка",
    "thanks for watching", "thank you for watching", "thank you so much for watching", "please subscribe",
    "subscribe to my channel", "like and subscribe", "see you next time", "see you in the next video",
    "bye bye", "music", "applause", "silence", "you",
}
_CREDITS = (
    "субтитры сделал", "субтитры создавал", "субтитры подготовил", "субтитры делал", "субтитры от",
    "редактор субтитров", "корректор", "автор субтитров", "перевод и субтитры", "субтитры и перевод",
    "subtitles by", "subtitled by", "captions by", "transcribed by", "translated by", "amara org",
)
_PREFIXES = _CREDITS + (
    "thanks for watching", "thank you for watching", "please subscribe", "продолжение следует",
    "спасибо за просмотр", "подписывайтесь на",
)
_ANYWHERE = ("amara org", "dimatorzok", "www ", " com ", "youtube", "ютуб")


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces (for matching, never for showing)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def is_hallucination(text: str) -> bool:
    """Text Whisper is known to invent from silence or noise (credits, sign-offs, bracketed sound labels)."""
    stripped = text.strip()
    if re.fullmatch(r"[\[(♪*].*[\])♪*]", stripped) and len(stripped) < 40:  # "[Music]", "(аплодисменты)", "♪"
        return True
    n = normalise(stripped)
    if not n:
        return bool(stripped)  # only punctuation or notes: nothing was said
    padded = f" {n} "
    return n in _WHOLE or n.startswith(_PREFIXES) or any(x in padded for x in _ANYWHERE)


def _collapse_loops(words: list[str]) -> tuple[list[str], bool]:
    """Each run of a unit of 1..MAX_UNIT words repeated MIN_REPEATS+ times in a row keeps KEEP repeats and
    '…'. Words are compared normalised, so "No, no, no." is one unit repeated."""
    keys = [normalise(w) for w in words]
    out: list[str] = []
    found = False
    i = 0
    while i < len(words):
        best: tuple[int, int] | None = None  # (unit length, repeats) covering the most words
        for n in range(1, MAX_UNIT + 1):
            unit = keys[i:i + n]
            if len(unit) < n or not any(unit):
                break
            reps = 1
            while keys[i + reps * n:i + (reps + 1) * n] == unit:
                reps += 1
            if reps >= MIN_REPEATS and (best is None or n * reps > best[0] * best[1]):
                best = (n, reps)
        if best is None:
            out.append(words[i])
            i += 1
            continue
        n, reps = best
        kept = words[i:i + n * KEEP]
        out.extend(kept[:-1])
        out.append(kept[-1].rstrip(",.;:!?…") + " …")
        found = True
        i += n * reps
    return out, found


def fit_to_show(text: str) -> tuple[str, str | None]:
    """The text to print for a machine transcript segment and a note of what was removed (None: nothing).

    An empty shown text means the whole segment is not speech (a hallucination) and should be left out, with
    the note said in its place.
    """
    if text is None:
        return "", None
    text = " ".join(str(text).split())
    if not text:
        return "", None
    notes: list[str] = []
    # a credit line glued after real speech ("Stop it. Субтитры сделал DimaTorzok"): cut it off
    words = text.split()
    for cut in range(1, len(words)):
        if normalise(" ".join(words[cut:])).startswith(_CREDITS):
            text = " ".join(words[:cut])
            notes.append(HALLUCINATION_NOTE)
            break
    if is_hallucination(text):
        return "", HALLUCINATION_NOTE
    shown, n = CHAR_RUN.subn(lambda m: (m.group(1) + "-") * KEEP + m.group(1) + " …", text)
    words, looped = _collapse_loops(shown.split())
    if n or looped:
        notes.insert(0, LOOP_NOTE)
    return " ".join(words), "; ".join(notes) or None

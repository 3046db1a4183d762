"""Readable names for file and archive-member names whose bytes are not UTF-8.

A drive from a Russian facility holds names in several encodings: UTF-8 from Linux and recent tools,
cp1251 (Windows "ANSI") in tar archives and copies, and cp866 (the DOS/OEM code page) in zips written by
Russian Windows archivers without the zip UTF-8 flag. Every name gets one readable form, the same on every
run (so a re-run finds what an earlier run recorded), and keeps the bytes it was read from whenever the
readable form is not simply their UTF-8: those bytes are the provenance, the readable form a guess.

Legacy decodings are accepted only when they read as Russian text; bytes that decode as nothing sensible
are shown as backslash escapes (``\\xff``), which name the bytes exactly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

# relative frequency of Russian letters (per mille), to tell cp1251 from cp866 where both decode to Cyrillic
_RUSSIAN = dict(zip("оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё",
                    (110, 85, 80, 74, 67, 63, 55, 47, 45, 44, 35, 32, 30, 28, 26, 20, 19, 17, 17, 16, 16, 14, 12,
                     10, 9, 7, 6, 5, 4, 3, 3, 1, 1), strict=True))
_PUNCTUATION = set("№«»–—…\u00a0")
_CYRILLIC = "\u0400-\u045f\u0490\u0491"
# a Latin and a Cyrillic letter side by side ("cafВ") is how a Western name reads in a Russian code page
_MIXED_WORD = re.compile(f"[A-Za-z][{_CYRILLIC}]|[{_CYRILLIC}][A-Za-z]")


@dataclass(frozen=True)
class Name:
    """``text``: the readable name; ``raw``: the bytes it was read from, kept only when they differ from
    ``text`` encoded as UTF-8 (then they are the name's provenance); ``escaped``: ``text`` shows some bytes
    as ``\\xNN``."""

    text: str
    raw: bytes | None = None
    escaped: bool = False

    @property
    def raw_hex(self) -> str | None:
        return None if self.raw is None else self.raw.hex()

    @property
    def structure(self) -> str:
        """The name to check as a path (separators, ``..``): the backslashes of escapes are no separators."""
        return self.raw.decode("utf-8", "replace") if self.escaped and self.raw is not None else self.text

    @property
    def leaf(self) -> str:
        """The last component of the name as a path ('/' or '\\' between components), readable."""
        if self.escaped and self.raw is not None:
            return escaped(([b""] + [p for p in re.split(rb"[/\\]", self.raw) if p])[-1])
        return PurePosixPath(self.text.replace("\\", "/")).name


def _of(text: str, raw: bytes, escapes: bool = False) -> Name:
    return Name(text, None if text.encode("utf-8") == raw else raw, escapes)


def escaped(raw: bytes) -> str:
    """UTF-8 where the bytes are UTF-8, ``\\xNN`` for each byte that is not."""
    return raw.decode("utf-8", "backslashreplace")


def _russian_score(text: str) -> int | None:
    """How much ``text`` reads as Russian; None when a non-ASCII character in it is no Cyrillic letter or
    common Russian punctuation (a wrong code page yields box drawing, symbols, Latin accents), or when a
    word mixes Latin and Cyrillic letters."""
    if _MIXED_WORD.search(text):
        return None
    score, cyrillic = 0, False
    for ch in text:
        if ch.isascii():
            continue
        if "\u0400" <= ch <= "\u045f" or ch in "Ґґ":
            cyrillic = True
            score += _RUSSIAN.get(ch.lower(), 1)
        elif ch not in _PUNCTUATION:
            return None
    return score if cyrillic else None


def legacy_cyrillic(raw: bytes, encodings: tuple[str, ...]) -> str | None:
    """The decoding of ``raw`` among ``encodings`` that reads best as Russian, or None."""
    best: tuple[int, str] | None = None
    for enc in encodings:
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        score = _russian_score(text)
        if score is not None and (best is None or score > best[0]):
            best = (score, text)
    return None if best is None else best[1]


def decode(raw: bytes, legacy: tuple[str, ...], fallback: str | None = None) -> Name:
    """UTF-8 if the bytes are UTF-8, else the best Russian legacy decoding, else ``fallback`` (an encoding
    that decodes every byte), else backslash escapes."""
    try:
        return _of(raw.decode("utf-8"), raw)
    except UnicodeDecodeError:
        pass
    text = legacy_cyrillic(raw, legacy)
    if text is not None:
        return _of(text, raw)
    if fallback:
        return _of(raw.decode(fallback), raw)
    return _of(escaped(raw), raw, escapes=True)


def from_path(path: str | os.PathLike[str]) -> Name:
    """A path on this machine. Not guessed at: escapes name its bytes exactly, so that the investigator can
    find the file again (Python hands undecodable bytes over as surrogates, which no database can store)."""
    raw = os.fsencode(path)
    text = escaped(raw)
    return _of(text, raw, escapes=text.encode("utf-8") != raw)


def from_surrogates(text: str) -> Name:
    """A name that a library decoded as UTF-8 with ``surrogateescape`` (tarfile): legacy code pages tried
    for the bytes that were not UTF-8 (cp1251 first: Russian Windows tools write tar names in it)."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that stand for no byte
        return without_lone_surrogates(text)
    return decode(raw, ("cp1251", "cp866"))


def without_lone_surrogates(text: str) -> Name:
    """A name holding surrogates that stand for no character (a broken UTF-16 name in a 7z): each becomes
    U+FFFD; the name's UTF-16 is kept as its bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-16-le", "surrogatepass")
        return Name(raw.decode("utf-16-le", "replace"), raw)
    return Name(text)

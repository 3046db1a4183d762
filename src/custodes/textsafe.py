"""Text from the evidence, made safe to show on a terminal.

File names on a seized drive are chosen by whoever made it: a name may carry terminal escape sequences
(retitling the window, clearing the screen, faking output) or bidirectional overrides that show
``gpj.exe`` as ``exe.jpg``. Human output shows such characters as escapes; JSON output keeps the exact text.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; Arabic letter mark, LRM/RLM, bidi embeddings/overrides/isolates, line and
# paragraph separators
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character and bidi override written as ``\\xNN`` / ``\\uNNNN``."""
    return _UNSAFE.sub(_escape, text)

"""What the workspace says in words: review states per segment and plain-language reasons for a flag.

A segment's review state is the newest ``Review`` row for it (append-only, sealed, each one with a signed
``review`` event in the ledger); a segment without one is unreviewed.
"""

from __future__ import annotations

from typing import Any

UNREVIEWED = "unreviewed"
NOTHING = "nothing of concern"
ANNOTATED = "annotated"
SECOND = "second review wanted"
CONFIRMED = "confirmed"
DISPUTED = "disputed"
STATES = (NOTHING, ANNOTATED, SECOND, CONFIRMED, DISPUTED)  # what a reviewer may record
ALL_STATES = (UNREVIEWED, *STATES)
DONE = (NOTHING, ANNOTATED, CONFIRMED, DISPUTED)  # a segment in one of these needs nobody's eyes now

# what the audio-event groups are called on screen (YAMNet's "gunshot" in a cell is a bang or an impact)
AUDIO_WORDS = {"screaming": "screaming", "shouting": "shouting", "impact": "blows or impacts",
               "gunshot": "a bang or impact", "crying": "crying"}


def strength(value: float) -> str:
    return "strongly" if value >= 0.85 else "clearly" if value >= 0.65 else "somewhat"


def plain_reason(r: dict[str, Any]) -> str | None:
    """One reason as a reviewer would say it; the model's numbers stay in the API and the report."""
    signal, value = str(r.get("signal", "")), r.get("value")
    v = float(value) if isinstance(value, (int, float)) else 0.0
    if signal == "p_visual":
        return f"movement {strength(v)} like a fight"
    if signal.startswith("audio:"):
        group = signal.split(":", 1)[1]
        return f"sounds like {AUDIO_WORDS.get(group, group.replace('_', ' '))}"
    if signal == "loudness":
        return "much louder than the rest of this recording"
    if signal == "vif":
        return "sudden movement across the whole picture"
    if signal == "caveat:sensor_noise":
        return "grainy picture: movement may be overstated"
    if signal == "pose_down":
        return f"a person on the floor for {v:.0f} s" if v >= 1 else "a person on the floor"
    if signal == "pose_strike":
        n = int(v)
        return f"a fast strike or kick ({n} times)" if n > 1 else "a fast strike or kick"
    text = str(r.get("text", "")).strip()
    return text or None


def plain_reasons(reasons: list[dict[str, Any]]) -> list[str]:
    return [t for t in (plain_reason(r) for r in reasons or []) if t]

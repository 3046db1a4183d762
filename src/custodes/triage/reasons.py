"""Why a segment is in the queue, said as a reviewer would say it.

Segments store their reasons as signals with the model's numbers (``{"signal": "p_visual", "value": 0.97,
"text": ...}``); the numbers stay in ``--json``, the API and the report's method section. What people read
in the queue, the workspace and the CLI is said here, in one place: no "p=0.97", and no YAMNet class
names that mislead in a cell (its "gunshot" there is a bang or a blow).
"""

from __future__ import annotations

from typing import Any

AUDIO_WORDS = {"screaming": "screaming", "shouting": "shouting", "impact": "blows or impacts",
               "gunshot": "a bang or impact", "crying": "crying"}


def strength(value: float) -> str:
    return "strongly" if value >= 0.85 else "clearly" if value >= 0.65 else "somewhat"


def plain_reason(r: dict[str, Any]) -> str | None:
    """One reason in plain words; signals it does not know keep their own text."""
    signal, value = str(r.get("signal", "")), r.get("value")
    v = float(value) if isinstance(value, (int, float)) else 0.0
    if signal == "p_visual":
        return f"movement {strength(v)} like a fight"
    if signal == "video_net":
        return "a video network trained on human actions also sees a fight"
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

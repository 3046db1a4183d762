"""Every analyzer behind the CLI's ``analyzers``: the analyze layer's own, with triage's model and score."""

from __future__ import annotations

from custodes.analyze import registry
from custodes.analyze.registry import AnalyzerInfo
from custodes.triage.score import MODEL_NAME, TRIAGE_VERSION


def analyzers() -> list[AnalyzerInfo]:
    """In pipeline order: triage's model after motion, its score after the audio events it weighs."""
    own = {
        "motion": AnalyzerInfo("violence model", MODEL_NAME, ("p_visual",), ("lightgbm", "onnxruntime"),
                               command="triage"),
        "audio events": AnalyzerInfo("triage score", TRIAGE_VERSION, ("score", "segments"), (), command="triage"),
    }
    out: list[AnalyzerInfo] = []
    for a in registry.analyzers():
        out.append(a)
        if a.name in own:
            out.append(own[a.name])
    return out

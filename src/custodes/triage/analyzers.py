"""Every analyzer behind the CLI's ``analyzers``: the analyze layer's own, with triage's models and score."""

from __future__ import annotations

from custodes.analyze import registry, video_net
from custodes.analyze.registry import AnalyzerInfo
from custodes.triage import video_check
from custodes.triage.score import MOTION_MODELS, TRIAGE_VERSION


def analyzers() -> list[AnalyzerInfo]:
    """In pipeline order: triage's models after motion (the video network's check of the best windows after
    the motion models), its score after the audio events it weighs."""
    own = {
        "motion": [AnalyzerInfo("violence model", MOTION_MODELS, ("p_visual",), ("lightgbm", "onnxruntime"),
                                command="triage"),
                   AnalyzerInfo("video network check", f"{video_net.VERSION}/{video_check.MODEL_NAME}",
                                ("p_visual of the best windows: video_net",),
                                ("fight_detection", "onnxruntime", "onnx"), command="triage")],
        "audio events": [AnalyzerInfo("triage score", TRIAGE_VERSION, ("score", "segments"), (), command="triage")],
    }
    out: list[AnalyzerInfo] = []
    for a in registry.analyzers():
        out.append(a)
        out += own.get(a.name, [])
    return out

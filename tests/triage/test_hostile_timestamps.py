"""A container whose timestamps jump 10^7 s between two frames (a hostile or clock-reset MKV): triage analyses
the seconds that hold video in bounded memory (it asked for more than 4 GB: a row and an array slot for every
claimed second), reports the jump in a sentence, and a MemoryError is never an empty reason."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from custodes.media.decode import packet_timeline
from custodes.media.synth import ClipSpec, write_clip
from custodes.triage import score

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database

JUMP_S = 10_000_000


def jumping_mkv(path: Path, with_audio: bool = True) -> Path:
    """40 frames at 10 fps, the last 20 stamped 10^7 s later; with audio (AAC, 16 kHz) that jumps with it."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 160, 96, "yuv420p"
        vs.codec_context.time_base = vs.time_base = Fraction(1, 10)
        if with_audio:  # every stream before the first packet (the header is written then)
            a = out.add_stream("aac", rate=16000)
            a.layout = "mono"
        for i in range(40):
            f = av.VideoFrame.from_ndarray(np.full((96, 160, 3), (i * 6) % 255, np.uint8), format="rgb24")
            f.pts, f.time_base = (i if i < 20 else i + JUMP_S * 10), Fraction(1, 10)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if with_audio:
            for j in range(4 * 16000 // 1024):
                samples = (np.random.default_rng(j).standard_normal((1, 1024)) * 0.1).astype(np.float32)
                fr = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                fr.sample_rate, fr.time_base = 16000, Fraction(1, 16000)
                fr.pts = j * 1024 + (JUMP_S * 16000 if j * 1024 >= 2 * 16000 else 0)
                for p in a.encode(fr):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    return path


def test_packet_timeline_keeps_the_seconds_that_hold_video(tmp_path: Path) -> None:
    pt = packet_timeline(jumping_mkv(tmp_path / "jump.mkv", with_audio=False))
    assert pt.duration_s > JUMP_S
    assert pt.seconds.tolist() == [0, 1, JUMP_S + 2, JUMP_S + 3] and len(pt.video_bytes) == 4
    assert pt.gaps(60) == [(2.0, JUMP_S + 2.0)]


PROBE = """
import json, resource, sys
from custodes.triage.score import analyze_video
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = analyze_video(sys.argv[1]); before = rss()
r = analyze_video(sys.argv[2])
print(json.dumps({"base_ok": base.ok, "before_mb": before, "after_mb": rss(), "ok": r.ok, "error": r.error,
                  "stats": r.stats, "bitrate_rows": sum(s.analyzer == "bitrate" for s in r.signals),
                  "signals": len(r.signals), "segments": [[g.start_s, g.end_s] for g in r.segments]}))
"""


def test_a_10_million_second_jump_is_analysed_in_bounded_memory(tmp_path: Path) -> None:
    normal = write_clip(tmp_path / "n.mp4", ClipSpec("CAM-1", datetime(2026, 1, 1), 4, fps=10, size=(160, 96),
                                                      seed=1))
    hostile = jumping_mkv(tmp_path / "jump.mkv")
    proc = subprocess.run([sys.executable, "-c", PROBE, str(normal), str(hostile)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["base_ok"]
    # the models are loaded by the first video: what the hostile one adds is its own (was ~2.3 GB)
    assert out["after_mb"] - out["before_mb"] < 150, out
    assert out["bitrate_rows"] == 4 and out["signals"] < 200, out  # a row per second that holds video
    assert out["ok"] is True, out
    assert out["stats"]["errors"] == [f"the video's timestamps jump from 2.0s to {JUMP_S + 2:.1f}s: no video in "
                                      f"those {JUMP_S:,}s, nothing there to analyse"]
    assert 3.0 <= out["stats"]["analysed_s"] <= 4.0  # both seconds of video either side of the jump
    assert all(a >= JUMP_S or b <= 2.0 for a, b in out["segments"]), out


def test_memory_error_is_named_not_empty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def exhausted(path: object) -> None:
        raise MemoryError

    monkeypatch.setattr(score, "packet_timeline", exhausted)
    r = score.analyze_video(tmp_path / "any.mkv")
    assert r.ok is False and r.error.startswith("analysis ran out of memory (MemoryError) on this file")

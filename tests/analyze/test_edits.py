"""Edits inside a file (issue 26): a cut-out minute (the burnt-in clock jumps forward), a clock that runs backwards,
a hole in the frame timestamps, a picture size changing mid-file, a creation time unlike the clock. Real encoded
video with a burnt-in clock drawn as ``media.synth`` draws it, read by the real OCR."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select, text

from custodes.analyze import edits
from custodes.media.synth import _font, overlay_text
from custodes.store.case import Case
from custodes.store.db import Signal
from tests.conftest import run_cli

pytest.importorskip("rapidocr_onnxruntime")

S = datetime(2026, 3, 14, 2, 0, 0)
FPS = 10


def clip(path: Path, clock: Callable[[float], datetime], n: int, size: tuple[int, int] = (640, 360),
         pts: Callable[[int], int] | None = None, created: datetime | None = None, fmt: str | None = None,
         camera: str = "CAM-07") -> Path:
    """``n`` frames at 10 fps (frame i at ``pts(i)`` tenths of a second), each with the burnt-in clock
    ``clock(t)`` drawn over a fixed noisy background, H.264."""
    w, h = size
    font = _font(max(12, h // 22))
    bg = np.random.default_rng(1).integers(60, 120, (h, w, 3), dtype=np.uint8)
    with av.open(str(path), "w", format=fmt) as out:
        if created is not None:
            out.metadata["creation_time"] = created.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, FPS)
        vs.options = {"preset": "veryfast", "crf": "28", "g": str(FPS * 2)}
        for i in range(n):
            p = pts(i) if pts else i
            img = Image.fromarray(bg.copy())
            d = ImageDraw.Draw(img)
            stamp = overlay_text(camera, clock(p / FPS))
            box = d.textbbox((8, 6), stamp, font=font)
            d.rectangle([box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3], fill=(0, 0, 0))
            d.text((8, 6), stamp, font=font, fill=(255, 255, 255))
            fr = av.VideoFrame.from_image(img)
            fr.pts, fr.time_base = p, Fraction(1, FPS)
            for pkt in vs.encode(fr):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path


def cut_minute(t: float) -> datetime:
    """The minute after 02:00:03 was cut out: the frame at 3.0 s shows 02:01:03."""
    return S + timedelta(seconds=int(t) + (60 if t >= 3 else 0))


def runs_backwards(t: float) -> datetime:
    """Normal to 02:00:03, then one second back every second from 4.0 s."""
    return S + timedelta(seconds=int(t) if t < 4 else 3 - (int(t) - 3))


def by_kind(found: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in found if e["name"] == name]


@pytest.mark.slow
def test_cut_out_minute_and_backwards_clock_found_dated_on_the_timeline(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    clip(drive / "cut.mp4", cut_minute, 60, created=S)
    clip(drive / "back.mp4", runs_backwards, 80, camera="CAM-08", created=S)
    clip(drive / "clean.mp4", lambda t: S + timedelta(minutes=5, seconds=int(t)), 40, camera="CAM-09",
         created=S + timedelta(minutes=5))
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    run_cli("ingest", str(case_dir), str(drive), check=True)
    proc = run_cli("timeline", str(case_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    found = doc["edits"]
    (cut,) = by_kind(found, "cut.mp4")
    assert cut["kind"] == "clock_jump_forward" and cut["offset_s"] == pytest.approx(3.0)
    assert cut["value"] == pytest.approx(60, abs=1)
    assert cut["camera"] == "CAM-07" and "02:00:02" in cut["seen"] and "02:01:03" in cut["seen"]
    # dated: the moment on the timeline is the recording's start plus the offset of the first frame after the cut
    rec = next(r for c in doc["cameras"] for r in c["recordings"] if r["name"] == "cut.mp4")
    assert datetime.fromisoformat(cut["at"]) == datetime.fromisoformat(rec["start"]) + timedelta(seconds=3)
    (back,) = by_kind(found, "back.mp4")
    assert back["kind"] == "clock_runs_backwards" and back["offset_s"] == pytest.approx(4.0)
    assert "02:00:03" in back["seen"] and "02:00:02" in back["seen"] and back["value"] < 0
    assert not by_kind(found, "clean.mp4")  # an unbroken clock, its creation time agreeing: nothing
    svg = Path(doc["plot"]).read_text()
    assert "clock_jump_forward: the burnt-in clock jumps" in svg and "clock_runs_backwards" in svg
    shown = run_cli("timeline", str(case_dir)).stdout
    assert "EDIT" in shown and "about 60 s of clock time are missing" in " ".join(shown.split())
    # the findings are signals, sealed like every signal: one altered past the application is caught by verify
    assert run_cli("verify", str(case_dir)).returncode == 0
    case = Case(case_dir)
    with case.sessions() as s:
        sha = s.scalars(select(Signal.sha256).where(Signal.kind == "clock_jump_forward")).one()
    with case.engine.begin() as conn:
        conn.execute(text("UPDATE signals SET value = 0.0 WHERE kind = 'clock_jump_forward'"))
    out = run_cli("verify", str(case_dir), "--json")
    assert out.returncode != 0
    assert any(p["kind"] == "record.mismatch" and p["where"] == f"signals:{sha}"
               for p in json.loads(out.stdout)["problems"]), out.stdout


@pytest.mark.slow
def test_hole_in_frame_timestamps_and_creation_time_unlike_the_clock(tmp_path: Path) -> None:
    from custodes.analyze import overlay

    # 3 s of frames, then nothing for 30 s, then 3 s more; the clock follows the timestamps (the recorder paused)
    hole = clip(tmp_path / "hole.mp4", lambda t: S + timedelta(seconds=int(t)), 60,
                pts=lambda i: i if i < 30 else i + 300, created=S - timedelta(hours=2, minutes=17))
    res = overlay.read_overlay(str(hole), 36.0)
    found = edits.find_edits(str(hole), 36.0, (S - timedelta(hours=2, minutes=17)).isoformat() + "Z", res)
    kinds = [f.kind for f in found]
    assert kinds.count("timestamp_gap") == 1 and not any(k.startswith("clock_") for k in kinds), kinds
    (gap,) = [f for f in found if f.kind == "timestamp_gap"]
    assert (gap.start_s, gap.end_s) == pytest.approx((2.9, 33.0)) and gap.value == pytest.approx(30.1)
    (ct,) = [f for f in found if f.kind == "creation_time_mismatch"]
    assert ct.value == pytest.approx(-(2 * 3600 + 17 * 60), abs=1) and ct.data["looks_like_time_zone"] is False
    zone = edits.creation_finding((S + timedelta(hours=3)).isoformat(), S, 6.0)
    assert zone is not None and zone.data["looks_like_time_zone"] is True and "+3 h" in zone.seen
    assert edits.creation_finding((S + timedelta(seconds=6)).isoformat(), S, 6.0) is None  # stamped at close


def test_picture_size_changing_mid_file(tmp_path: Path) -> None:
    """Two MPEG-TS recordings joined byte for byte, the second larger and its timestamps running on."""
    a = clip(tmp_path / "a.ts", lambda t: S, 30, size=(320, 180), fmt="mpegts")
    b = clip(tmp_path / "b.ts", lambda t: S, 30, size=(480, 270), pts=lambda i: i + 30, fmt="mpegts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    scan = edits.scan_container(str(joined))
    (change,) = [f for f in scan.findings if f.kind == "codec_change"]
    assert change.data["before"][:2] == [320, 180] and change.data["after"][:2] == [480, 270]
    assert change.start_s == pytest.approx(3.0, abs=0.25)  # the first keyframe of the second recording
    assert not [f for f in edits.scan_container(str(a)).findings]


def test_a_misread_digit_is_not_an_edit() -> None:
    """One reading unlike both neighbours (which agree) is dropped; two frames showing a new offset are an edit."""
    R = edits._Reading
    rs = [R(0.0, S, ""), R(1.0, S + timedelta(seconds=1), ""), R(2.0, S + timedelta(seconds=52), ""),
          R(3.0, S + timedelta(seconds=3), "")]
    assert edits.drop_misreads(rs) == [rs[0], rs[1], rs[3]]
    assert len(edits._segments(edits.drop_misreads(rs))) == 1
    jumped = [*rs[:2], R(2.0, S + timedelta(seconds=62), ""), R(3.0, S + timedelta(seconds=63), "")]
    assert edits.drop_misreads(jumped) == jumped and len(edits._segments(jumped)) == 2
    # a digit misread on a few neighbouring frames (a soft re-encode) is not a jump and a jump back
    blip = [R(t / 10, S + timedelta(seconds=int(t / 10) + (1 if 50 <= t <= 55 else 0)), "") for t in range(0, 90, 1)]
    assert len(edits._segments(blip)) == 3 and len(edits.drop_blips(edits._segments(blip))) == 1

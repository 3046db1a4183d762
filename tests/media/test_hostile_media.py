"""Hostile media (issue 21): a poisoned index, noise, an absurd frame size or date never stops a case,
never takes the machine's memory, and always ends in one sentence saying what is wrong."""

from __future__ import annotations

import csv
import json
import struct
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import av
import numpy as np
import pytest

from custodes.ingest.pipeline import Ingestor
from custodes.media import thumbs
from custodes.media.probe import ProbeResult, probe
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.db import MediaProbe
from custodes.store.verify import verify_case
from custodes.timeline.complaints import ComplaintsError, import_csv, parse_rows
from tests.conftest import run_cli

STATUSES = {"ok", "damaged", "unreadable", "not_media"}
BIG = (16000, 9000)
# Peak RSS allowed to a process that probes, thumbnails or builds the timeline of the 16000x9000 video: its
# imports take ~100 MB, one decoded frame of it alone 216 MB (before: 2.2 GB for one thumbnail)
RSS_BOUND_MB = 300


def _sha(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def _moov(data: bytes) -> tuple[int, int]:
    """(offset, size) of the top-level ``moov`` box."""
    off = 0
    while off + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[off:off + 8])
        if kind == b"moov":
            return off, size
        if size < 8:
            break
        off += size
    raise AssertionError("no moov box")


def poison(data: bytes, code: bytes = b"zzzz") -> bytes:
    """The recipe: overwrite the video sample entry's codec tag (``avc1`` in ``stsd``, inside ``moov``).
    The file still opens, its video stream has no codec (PyAV's ``codec_context`` is None), and probe-1
    raised AttributeError on ``.width`` for it."""
    m0, size = _moov(data)
    i = data.index(b"avc1", m0, m0 + size)
    return data[:i] + code + data[i + 4:]


def _one_sentence(reason: str) -> bool:
    return bool(reason) and "\n" not in reason and "Traceback" not in reason and len(reason) < 300


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("hostile") / "CAM01_0001.mp4",
                      ClipSpec("CAM-01", datetime(2026, 1, 2, 3, 4, 5), 3, fps=10, size=(320, 180)))


def write_big_video(out: Path) -> Path:
    """One black 16000x9000 H.264 frame (~420 KB). Encoded in a child process: x264 needs ~900 MB for it,
    which would otherwise stay with the test process."""
    code = f"""
import av
with av.open({str(out)!r}, "w") as o:
    vs = o.add_stream("libx264", rate=1)
    vs.width, vs.height, vs.pix_fmt = {BIG[0]}, {BIG[1]}, "yuv420p"
    vs.options = {{"preset": "ultrafast"}}
    f = av.VideoFrame({BIG[0]}, {BIG[1]}, "yuv420p")
    for plane, value in zip(f.planes, (16, 128, 128)):
        plane.update(bytes([value]) * plane.buffer_size)
    for p in [*vs.encode(f), *vs.encode()]:
        o.mux(p)
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def big_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_video(tmp_path_factory.mktemp("big") / "big.mp4")


def _peak_rss_mb(*cmd: str) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``cmd`` under a fresh parent and return the child's peak RSS in MB (ru_maxrss of RUSAGE_CHILDREN
    counts every child ever waited for, so the parent must be new)."""
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, file=sys.stderr); "
               "sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, timeout=300)
    return int(proc.stderr.strip().splitlines()[-1]), proc


# -- 1. a poisoned index ---------------------------------------------------------------------------------------

def _check_poison(src: Path, tmp_path: Path) -> None:
    bad = tmp_path / ("poisoned_" + src.name)
    bad.write_bytes(poison(src.read_bytes()))
    with av.open(str(bad)) as c:  # the recipe does what it says
        assert c.streams.video and c.streams.video[0].codec_context is None
    res = probe(bad)
    assert res.status == "damaged" and res.width is None
    assert res.reason.startswith("video stream 0 has no known codec") and _one_sentence(res.reason)


def test_poisoned_index_is_damaged_with_a_reason(clip, tmp_path):
    _check_poison(clip, tmp_path)


def test_poisoned_real_clip_is_damaged_with_a_reason(fight_surv, tmp_path):
    _check_poison(fight_surv / "fight" / "fi001.mp4", tmp_path)


def _corruption_sweep(src: Path, tmp_path: Path, n: int, seed: int) -> dict[str, int]:
    data = src.read_bytes()
    m0, size = _moov(data)
    rng = np.random.default_rng(seed)
    seen: dict[str, int] = {"codecless": 0}
    path = tmp_path / "variant.mp4"
    for _ in range(n):
        b = bytearray(data)
        for pos in rng.integers(m0 + 8, m0 + size, 50):
            b[pos] = int(rng.integers(0, 256))
        path.write_bytes(b)
        res = probe(path)  # must not raise
        assert isinstance(res, ProbeResult) and res.status in STATUSES
        assert res.status == "ok" or _one_sentence(res.reason), res.reason
        seen[res.status] = seen.get(res.status, 0) + 1
        try:
            with av.open(str(path), metadata_errors="replace") as c:
                seen["codecless"] += any(s.codec_context is None for s in c.streams)
        except av.error.FFmpegError:
            pass
    return seen


def test_random_index_corruption_never_raises(clip, tmp_path):
    seen = _corruption_sweep(clip, tmp_path, 200, seed=21)
    # the sweep reaches what crashed probe-1 (a stream without a codec), and files that still decode pass
    assert seen["codecless"] >= 5 and seen.get("ok", 0) >= 1, seen


def test_random_index_corruption_of_real_clips_never_raises(fight_surv, tmp_path):
    for i, name in enumerate(("fight/fi001.mp4", "noFight/nofi001.mp4")):
        seen = _corruption_sweep(fight_surv / name, tmp_path, 100, seed=i)
        assert seen["codecless"] >= 5, seen


def _good_clips(folder: Path, n: int, first_seed: int = 1) -> list[Path]:
    return [write_clip(folder / f"CAM02_{i:04d}.mp4",
                       ClipSpec("CAM-02", datetime(2026, 1, 2, 4, i), 2, fps=10, size=(160, 90), seed=i))
            for i in range(first_seed, first_seed + n)]


def test_ingest_goes_on_past_a_poisoned_file(case, clip, tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    good = _good_clips(drive, 3)
    # objects are probed in hash order: pick a poison that sorts first, so every good file comes after it
    data = clip.read_bytes()
    bad = drive / "CAM01_0001.mp4"
    for k in range(100):
        bad.write_bytes(poison(data, b"zz%02d" % k))
        if _sha(bad) < min(_sha(g) for g in good):
            break
    else:
        raise AssertionError("no poison variant sorts first")
    rep = Ingestor(case, "tester").run([drive])
    assert rep.media == {"ok": 3, "damaged": 1}
    assert [p["name"] for p in rep.problem_media] == [bad.name]
    with case.sessions() as s:
        for g in good:
            assert s.get(MediaProbe, _sha(g)).status == "ok"
        row = s.get(MediaProbe, _sha(bad))
        assert row.status == "damaged" and "no known codec" in row.reason and row.probe_version == "probe-2"
    assert verify_case(case).ok
    # the next ingest into the same case works, and probes what it brings
    more = tmp_path / "more"
    more.mkdir()
    (late,) = _good_clips(more, 1, first_seed=7)
    rep2 = Ingestor(case, "tester").run([more])
    assert rep2.media == {"ok": 1}
    with case.sessions() as s:
        assert s.get(MediaProbe, _sha(late)).status == "ok"
        assert s.get(MediaProbe, _sha(bad)).reason == row.reason  # the sealed probe is left as it was
    assert verify_case(case).ok


# -- 2. an absurd creation time ----------------------------------------------------------------------------------

def _plain_clip(path: Path, creation_time: str) -> Path:
    """Two seconds of grey with no burnt-in clock: only the container's creation time can place it.
    ``use_metadata_tags`` keeps the tag as the string given (mvhd's own field wraps 9999 to 2035)."""
    with av.open(str(path), "w", options={"movflags": "use_metadata_tags"}) as out:
        out.metadata["creation_time"] = creation_time
        vs = out.add_stream("libx264", rate=5)
        vs.width, vs.height, vs.pix_fmt = 160, 90, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((90, 160, 3), 90, np.uint8), format="rgb24")
            frame.pts = i
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def test_creation_time_in_year_9999_is_ignored_by_timeline_and_complaints(case, tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    bad = _plain_clip(drive / "far_future.mp4", "9999-12-31T23:59:59Z")
    good = _plain_clip(drive / "plain.mp4", "2026-01-02T03:04:05Z")
    assert probe(bad).creation_time == "9999-12-31T23:59:59Z"  # the tag is kept as found
    Ingestor(case, "tester").run([drive])
    register = tmp_path / "complaints.csv"
    with register.open("w", newline="") as fh:
        csv.writer(fh).writerows([["start", "end", "facility", "person", "text"],
                                  ["2026-01-02 03:04", "2026-01-02 03:05", "IK-1", "A.", "beaten"]])
    import_csv(case, register, "tester")

    # the commands that failed for the whole case with OverflowError, as a user runs them
    tl = run_cli("timeline", str(case.root), "--json")
    assert tl.returncode == 0, tl.stderr
    doc = json.loads(tl.stdout)
    unplaced = {u["sha256"]: u["reason"] for u in doc["unplaced"]}
    assert unplaced[_sha(bad)].endswith("implausible creation time 9999-12-31T23:59:59Z ignored")
    assert [r["sha256"] for c in doc["cameras"] for r in c["recordings"]] == [_sha(good)]
    cl = run_cli("complaints", "list", str(case.root), "--json")
    assert cl.returncode == 0, cl.stderr
    (row,) = json.loads(cl.stdout)
    assert [c["sha256"] for c in row["covered_by"]] == [_sha(good)]


def test_complaint_dated_9999_is_refused_in_one_sentence():
    with pytest.raises(ComplaintsError) as err:
        parse_rows(b"start,end,text\n2026-01-02 03:04,2026-01-02 03:05,x\n9999-12-31 23:00,9999-12-31 23:59,y\n")
    assert str(err.value) == ("nothing imported; fix these lines: line 3: implausible date '9999-12-31 23:00' "
                              "(before 1990 or more than a year ahead)")


# -- 3. an absurd frame size -------------------------------------------------------------------------------------

def test_absurd_frame_size_is_refused_at_probe(big_video):
    assert big_video.stat().st_size < 1_000_000
    res = probe(big_video)
    assert (res.status, res.width, res.height) == ("unreadable", *BIG)
    assert res.reason == "frame size 16000×9000 beyond what the review tools decode; kept as stored"


def test_absurd_frame_size_is_never_decoded_at_full_size(big_video):
    """Probe, four thumbnails at once and a contact sheet of the 16000x9000 video in one process.
    Before: 2166 MB for one thumbnail, 7195 MB for four at once."""
    code = f"""
import threading
from custodes.media.decode import DecodeError, gray_frames
from custodes.media.probe import probe
from custodes.media.thumbs import contact_sheet, frame_at
p = {str(big_video)!r}
assert probe(p).status == "unreadable"
out = []
ts = [threading.Thread(target=lambda: out.append(frame_at(p, 0.0))) for _ in range(4)]
ts.append(threading.Thread(target=lambda: out.append(contact_sheet(p, 1.0))))
for t in ts: t.start()
for t in ts: t.join()
assert out == [None] * 5, out
try:
    list(gray_frames(p, fps=1, size=(64, 48)))
    raise AssertionError("decoded")
except DecodeError:
    pass
"""
    rss, proc = _peak_rss_mb(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    assert rss < RSS_BOUND_MB, f"peak RSS {rss} MB"


def test_timeline_of_a_case_with_an_absurd_frame_size_stays_small(big_video, clip, tmp_path):
    """Before: `timeline` read the overlay of the 16000x9000 frame in RGB (1.06 GB here, 2.85 GB reported)."""
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "big.mp4").write_bytes(big_video.read_bytes())
    case = tmp_path / "case"
    run_cli("init", str(case), check=True)
    run_cli("ingest", str(case), str(drive), "--json", check=True)
    rss, proc = _peak_rss_mb(sys.executable, "-m", "custodes", "timeline", str(case), "--json")
    assert proc.returncode == 0, proc.stderr
    assert rss < RSS_BOUND_MB, f"peak RSS {rss} MB"


def test_timeline_does_not_read_an_absurd_frame_probed_before_probe_2(case, clip, tmp_path, monkeypatch):
    """A probe-1 row calls the 16000x9000 video "ok"; it stays as sealed, and the timeline still refuses it."""
    from custodes.analyze import overlay
    from custodes.timeline import build

    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "big.mp4").write_bytes(clip.read_bytes())
    old = ProbeResult("ok", container="mov,mp4,m4a,3gp,3g2,mj2", duration_s=1.0, width=BIG[0], height=BIG[1])
    monkeypatch.setattr("custodes.ingest.pipeline.probe", lambda *a, **k: old)
    Ingestor(case, "tester").run([drive])

    def read_overlay(*a, **k):
        raise AssertionError("overlay read of an absurd frame size")

    monkeypatch.setattr(overlay, "read_overlay", read_overlay)
    assert build.read_recordings(case) == 1
    (u,) = build.build_timeline(case)["unplaced"]
    assert u["reason"] == "frame size 16000×9000 beyond what the review tools decode; kept as stored"


def test_thumbnail_decodes_are_bounded_process_wide(clip, monkeypatch):
    live, peak = [0], [0]
    lock = threading.Lock()
    real = thumbs._frame_at

    def counted(*a, **k):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.05)
        try:
            return real(*a, **k)
        finally:
            with lock:
                live[0] -= 1

    monkeypatch.setattr(thumbs, "_frame_at", counted)
    out = []
    ts = [threading.Thread(target=lambda: out.append(thumbs.frame_at(clip, 1.0))) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert peak[0] == thumbs.MAX_CONCURRENT_DECODES == 2
    assert [im.size for im in out] == [(320, 180)] * 6  # scaled straight from YUV, same picture size as before
    sheet = thumbs.contact_sheet(clip, 3.0, n=4, cols=2, width=100)
    assert sheet is not None and sheet.size == (200, 2 * 56)


# -- 4. noise --------------------------------------------------------------------------------------------------

# names that let FFmpeg's extension guess pick a demuxer that reads anything (g729, cdg, ansi art, raw pcm ...)
NOISE_NAMES = ("", ".bin", ".cdg", ".g729", ".ans", ".sw", ".ul", ".aac", ".mp4", ".ts", ".mp3", ".wav", ".dav")


def test_random_bytes_are_never_ok_media(tmp_path):
    rng = np.random.default_rng(4)
    seen: dict[str, int] = {}
    for i in range(500):
        name = f"blob{i}{NOISE_NAMES[i % len(NOISE_NAMES)]}"
        path = tmp_path / name
        path.write_bytes(rng.bytes(int(rng.integers(100, 2001))))
        res = probe(path, name_hint=name)
        assert res.status != "ok", (name, res)
        assert _one_sentence(res.reason), res
        seen[res.status] = seen.get(res.status, 0) + 1
        path.unlink()
    assert set(seen) <= {"not_media", "unreadable"}, seen


def _audio_only(path: Path, codec: str) -> Path:
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=16000, layout="mono")
        fmt = "s16" if codec.startswith("pcm") else "fltp"
        for k in range(0, 16000, 1024):
            samples = (np.sin(np.arange(k, k + 1024) / 8) * (8000 if fmt == "s16" else 0.3))
            fr = av.AudioFrame.from_ndarray(samples[None, :].astype(np.int16 if fmt == "s16" else np.float32),
                                            format=fmt, layout="mono")
            fr.sample_rate, fr.pts = 16000, k
            for p in st.encode(fr):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


def test_synthetic_media_still_ok(clip, tmp_path):
    assert probe(clip).status == "ok"
    assert probe(_audio_only(tmp_path / "radio.wav", "pcm_s16le")).status == "ok"
    assert probe(_audio_only(tmp_path / "radio.m4a", "aac")).status == "ok"


def test_real_clips_still_ok(fight_surv):
    for sub in ("fight", "noFight"):
        for f in sorted((fight_surv / sub).glob("*.mp4"))[:5]:
            res = probe(f)
            assert res.status == "ok" and res.width and res.video_codec == "h264", (f, res)

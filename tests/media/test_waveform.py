"""The strip's waveform from real files encoded by FFmpeg (through PyAV): 3 s of silence then 2 s of a loud tone
gives low peaks then high ones at the right buckets; a video without sound, a truncated file and a file that is
no media at all each get a sentence, never a traceback; a long file's buckets widen to stay within the cap."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from custodes.media import waveform

RATE = 16000


def write(path: Path, *, audio: bool = True, video: bool = True, seconds: float = 5.0, tone_from: float = 3.0) -> Path:
    """An MP4 (index at the front, as cameras that survive a power cut write it): a grey picture at 10 fps and
    mono AAC, silent until ``tone_from`` and a 440 Hz tone at 0.8 of full scale after it."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        vs = aus = None
        if video:
            vs = out.add_stream("libx264", rate=10)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        if audio:
            aus = out.add_stream("aac", rate=RATE, layout="mono")
        if vs is not None:
            for i in range(int(seconds * 10)):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 4 % 256, np.uint8), format="rgb24")
                for pkt in vs.encode(frame):
                    out.mux(pkt)
            for pkt in vs.encode():
                out.mux(pkt)
        if aus is not None:
            t = np.arange(int(seconds * RATE)) / RATE
            pcm = np.where(t >= tone_from, 0.8 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
            for k in range(0, len(pcm), 1024):
                chunk = np.pad(pcm[k:k + 1024], (0, max(0, k + 1024 - len(pcm))))
                fr = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="fltp", layout="mono")
                fr.sample_rate, fr.pts, fr.time_base = RATE, k, Fraction(1, RATE)
                for pkt in aus.encode(fr):
                    out.mux(pkt)
            for pkt in aus.encode():
                out.mux(pkt)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("wave") / "silence_then_tone.mp4")


def test_silence_then_a_loud_tone_is_low_then_high_at_the_right_buckets(clip):
    r = waveform.peaks(str(clip), 5.0)
    assert r["version"] == waveform.FORMAT and r["bucket_s"] == pytest.approx(0.1)
    p = r["peaks"]
    assert 50 <= len(p) <= 52 and all(isinstance(x, int) and 0 <= x <= 255 for x in p)
    # silence: the first 2.8 s (AAC's pre-echo may touch the bucket just before the tone)
    assert max(p[:28]) <= 3
    # the tone at 0.8 of full scale: about 204 of 255 in every bucket from 3.0 s to 4.9 s
    assert all(190 <= x <= 215 for x in p[30:49])
    assert waveform.dumps(r).startswith(b'{"version":"waveform-1","bucket_s":0.1,"peaks":[0,0,')


def test_a_video_without_sound_has_no_peaks_and_says_so(tmp_path):
    r = waveform.peaks(str(write(tmp_path / "mute.mp4", audio=False)), 5.0)
    assert r == {"version": waveform.FORMAT, "peaks": [], "reason": "This file has no sound."}


def test_a_truncated_file_gives_what_could_be_decoded(tmp_path, clip):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    r = waveform.peaks(str(cut), 5.0)
    assert r["damaged"] is True and "breaks off after" in r["reason"] and "could be decoded" in r["reason"]
    # what came before the damage is there: the silence and the start of the tone
    assert 31 <= len(r["peaks"]) < 50 and max(r["peaks"][:28]) <= 3 and r["peaks"][31] > 190


def test_a_file_that_is_no_media_gets_one_sentence(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01garbage" * 700)
    r = waveform.peaks(str(junk), 5.0)
    assert r["peaks"] == [] and r["reason"].startswith("The sound of this file could not be read: ")
    assert r["reason"].endswith(".") and "Traceback" not in r["reason"]
    # a file gone from under the reader: the same sentence, not an exception
    r = waveform.peaks(str(tmp_path / "missing.mp4"), 5.0)
    assert r["peaks"] == [] and "could not be read" in r["reason"]


def test_long_files_get_wider_buckets_within_the_cap(clip, monkeypatch):
    assert waveform.bucket_samples(5.0) == 800  # a tenth of a second at 8 kHz
    assert waveform.bucket_samples(None) == 800
    assert waveform.bucket_samples(3 * 3600.0) == 21600  # three hours: 2.7 s buckets, 4,000 of them
    # a probe that said nothing of the length: the buckets widen as the sound runs on, never past the cap
    monkeypatch.setattr(waveform, "MAX_BUCKETS", 10)
    r = waveform.peaks(str(clip), None)
    assert len(r["peaks"]) <= 10 and r["bucket_s"] >= 0.4
    assert len(r["peaks"]) * r["bucket_s"] == pytest.approx(5.0, abs=r["bucket_s"] + 0.1)
    assert r["peaks"][0] <= 3 and r["peaks"][-2] > 190  # still silence first, the tone last

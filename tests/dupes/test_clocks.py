"""Two recordings of one fixed camera can look alike frame for frame; the burnt-in clock tells them apart."""

from __future__ import annotations

from datetime import datetime

import pytest

from custodes.dupes.index import Match, clock_contradiction, clusters, hash_videos
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.timeline.build import read_recordings

T0 = datetime(2026, 3, 14, 2, 1, 0)


def _match(offset_s: float = 0.0, rate: float = 1.0) -> Match:
    return Match("a", "b", offset_s, 0.9, None, 10.0, rate, frames=[{"a_t": 10.0, "b_t": 10.0 + offset_s}])


def test_clocks_that_agree_at_the_matched_frames_allow_the_pair() -> None:
    clocks = {"a": ("CAM-01", T0), "b": ("CAM-01", datetime(2026, 3, 14, 2, 0, 55))}
    assert clock_contradiction(_match(offset_s=5.0), clocks) is None  # a clip of b starting 5 s in
    assert clock_contradiction(_match(), {"a": ("CAM-01", T0)}) is None  # b's overlay was never read


def test_clocks_a_minute_apart_refuse_the_pair_in_words() -> None:
    clocks = {"a": ("CAM-01", datetime(2026, 3, 14, 2, 2, 0)), "b": ("CAM-01", T0)}
    why = clock_contradiction(_match(offset_s=-4.8, rate=0.67), clocks)
    assert why and "different moments of the same camera (CAM-01)" in why and "02:02:10" in why


@pytest.mark.slow
@pytest.mark.no_database
def test_recordings_of_one_camera_at_other_times_are_not_copies(tmp_path, demo_drive) -> None:
    drive, truth = demo_drive
    case = Case.init(tmp_path / "case", "tester")
    Ingestor(case, "tester").run([drive])
    read_recordings(case)
    hash_videos(case)
    doc = clusters(case)
    names = [sorted(n for m in c["members"] for n in m["names"]) for c in doc["clusters"]]
    for members in names:  # never two CAM01 recordings of different minutes in one cluster
        minutes = {n.split("_")[2][:4] for n in members if n.startswith("CAM01_")}
        assert len(minutes) <= 1, names
    assert any("VID-20260315-WA0007.mp4" in m for m in names), names  # the WhatsApp re-encode still joins

"""A deleted recording recovered from a disk image fills the gap its deletion made: three consecutive clips of
one camera on a real FAT32 card, the middle one deleted; the timeline shows no gap and marks the middle one as
recovered from a deleted file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from custodes.media.synth import ClipSpec, write_clip
from tests.conftest import run_cli
from tests.ingest.test_images import need, sh, sha

pytest.importorskip("pytsk3")
pytest.importorskip("rapidocr_onnxruntime")

T0 = datetime(2026, 3, 5, 22, 10, 0)


@pytest.mark.slow
def test_recovered_middle_clip_closes_the_gap(tmp_path: Path) -> None:
    need("mkfs.vfat", "mcopy", "mdel", "mmd")
    clips = [write_clip(tmp_path / f"CLIP000{i}.MP4", ClipSpec("CAM-05", T0 + timedelta(seconds=10 * i), 10, fps=5,
                                                                size=(480, 270), seed=20 + i)) for i in range(3)]
    img = tmp_path / "card.fat"
    sh("mkfs.vfat", "-F", "32", "-C", img, str(40 * 1024))
    sh("mmd", "-i", img, "::DCIM")
    for c in clips:
        sh("mcopy", "-i", img, c, f"::DCIM/{c.name}")
    sh("mdel", "-i", img, "::DCIM/CLIP0001.MP4")
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    proc = run_cli("ingest", str(case_dir), str(img), "--json")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("timeline", str(case_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (cam,) = [c for c in doc["cameras"] if c["camera"] == "CAM-05"]
    by_sha = {r["sha256"]: r for r in cam["recordings"]}
    first, middle, third = (by_sha[sha(c)] for c in clips)  # all three placed, the middle one recovered
    assert middle["deleted"] is True and middle["recovery"] == "intact"
    assert first["deleted"] is False and third["deleted"] is False and first["recovery"] is None
    # the recovered clip covers the stretch between the first and the third: no gap, one covered interval
    assert datetime.fromisoformat(middle["start"]) < datetime.fromisoformat(third["start"])
    assert datetime.fromisoformat(middle["end"]) > datetime.fromisoformat(first["end"])
    assert cam["gaps"] == [] and doc["gaps"] == []
    assert len(cam["coverage"]) == 1 and cam["coverage"][0]["files"] == 3
    shown = " ".join(run_cli("timeline", str(case_dir)).stdout.split())
    assert "deleted" in shown and "recovered" in shown and "GAP" not in shown, shown

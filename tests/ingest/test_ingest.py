"""Ingest of the demo drive and of real CCTV clips."""

import hashlib
import shutil

from sqlalchemy import func, select

from custodes.ingest.pipeline import Ingestor
from custodes.store.db import EvidenceObject, MediaProbe, Provenance, Rejection
from custodes.store.verify import verify_case
from tests.conftest import cli_json


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_demo_drive_is_preserved_with_provenance(case, demo_drive):
    drive, truth = demo_drive
    rep = Ingestor(case, "tester", note="demo").run([drive])
    assert rep.refused == []
    assert rep.archives == 1 and rep.archive_members == 2
    assert rep.duplicates == 1  # the copy in copies/from_usb
    # every file on the drive is stored byte for byte
    for f in drive.rglob("*"):
        if f.is_file():
            assert case.store.path_for(_sha(f)).read_bytes() == f.read_bytes()
    with case.sessions() as s:
        dup_sha = _sha(drive / truth.exact_duplicate[0])
        copies = s.scalars(select(Provenance).where(Provenance.sha256 == dup_sha)).all()
        assert sorted(c.source_path for c in copies) == sorted(str(drive / p) for p in truth.exact_duplicate)
        members = s.scalars(select(Provenance).where(Provenance.member_path != "")).all()
        assert sorted(m.member_path for m in members) == ["export/CAM-03_0200.mp4", "export/CAM-03_0201.mp4"]
        assert all(m.source_path == str(drive / truth.archive) for m in members)
        assert all(m.parent_sha256 == _sha(drive / truth.archive) for m in members)
        bad = s.get(MediaProbe, _sha(drive / truth.corrupt[0]))
        assert bad.status == "unreadable" and "cannot open container" in bad.reason
        assert s.get(MediaProbe, _sha(drive / "notes.txt")).status == "not_media"
        ok = s.scalars(select(MediaProbe).where(MediaProbe.status == "ok")).all()
        assert len(ok) == 8
        clip = s.get(MediaProbe, _sha(drive / truth.struggle["file"]))
        facts = (clip.width, clip.height, clip.fps, clip.video_codec, clip.audio_codec)
        assert facts == (640, 360, 10.0, "h264", "aac")
        assert abs(clip.duration_s - 20) < 0.2
        assert clip.creation_time.startswith("2026-03-14T02:00:20")
        assert "BWC-Demo" in clip.tags.get("comment", "")
    assert verify_case(case).ok


def test_rerun_changes_nothing(case, demo_drive):
    drive, _ = demo_drive
    Ingestor(case, "tester").run([drive])
    with case.sessions() as s:
        before = (s.scalar(select(func.count()).select_from(Provenance)),
                  s.scalar(select(func.count()).select_from(EvidenceObject)))
    ingest_events = [e for e in case.ledger.entries() if e["action"] == "ingest"]
    rep = Ingestor(case, "tester").run([drive])
    assert rep.objects_new == 0 and rep.duplicates == 0
    with case.sessions() as s:
        after = (s.scalar(select(func.count()).select_from(Provenance)),
                 s.scalar(select(func.count()).select_from(EvidenceObject)))
    assert after == before
    assert [e for e in case.ledger.entries() if e["action"] == "ingest"] == ingest_events
    assert verify_case(case).ok


def test_real_cctv_clips(case, fight_surv, tmp_path):
    src = tmp_path / "drive"
    for sub in ("fight", "noFight"):
        (src / sub).mkdir(parents=True)
        for f in sorted((fight_surv / sub).glob("*.mp4"))[:8]:
            shutil.copy2(f, src / sub / f.name)
    rep = Ingestor(case, "tester").run([src])
    assert rep.media.get("ok", 0) + rep.media.get("damaged", 0) == 16 - rep.duplicates
    with case.sessions() as s:
        probes = s.scalars(select(MediaProbe)).all()
        assert all(p.width and p.height and p.duration_s and p.video_codec for p in probes)
        assert {p.container for p in probes} == {"mov,mp4,m4a,3gp,3g2,mj2"}
    assert verify_case(case).ok


def test_cli_ingest_json_and_items(tmp_path, small_clip):
    case_dir = tmp_path / "case"
    cli_json("init", str(case_dir))
    doc = cli_json("ingest", str(case_dir), str(small_clip), "--batch-note", "handed over by K.")
    assert doc["objects_new"] == 1 and doc["media"] == {"ok": 1}
    items = cli_json("items", str(case_dir))
    assert len(items) == 1
    assert items[0]["copies"][0]["source_path"] == str(small_clip)
    assert items[0]["media"]["width"] == 320
    batch_start = [e for e in cli_json("ledger", "show", str(case_dir), "--limit", "0") if e["action"] == "batch.start"]
    assert batch_start[0]["details"]["note"] == "handed over by K."


def test_unreadable_source_is_recorded_not_fatal(case, tmp_path, small_clip):
    src = tmp_path / "drive"
    src.mkdir()
    shutil.copy2(small_clip, src / "ok.mp4")
    (src / "link.mp4").symlink_to("/etc/passwd")
    rep = Ingestor(case, "tester").run([src, tmp_path / "does-not-exist"])
    reasons = {r["source_path"].rsplit("/", 1)[-1]: r["reason"] for r in rep.refused}
    assert "symbolic link not followed" in reasons["link.mp4"]
    assert "cannot read source" in reasons["does-not-exist"]
    assert rep.objects_new == 1
    with case.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Rejection)) == 2
    assert verify_case(case).ok

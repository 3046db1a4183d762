"""Carving (issue 26, second slice): video whose directory entry or inode is gone comes back from unallocated space
by structure, byte-identical; a carved or recovered clip that does not play whole is kept and marked partial with
what decodes. Real images built with mkfs.vfat/mtools and mkfs.ext4/debugfs."""

from __future__ import annotations

import os
import random
import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from custodes.ingest import carve
from custodes.media.synth import ClipSpec, write_clip
from tests.conftest import run_cli
from tests.ingest.test_images import MiB, events, ingest, need, object_sha, sh, sha

pytest.importorskip("pytsk3")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("carve-clips")
    return [write_clip(d / f"CLIP000{i}.MP4", ClipSpec(f"CAM-0{i}", datetime(2026, 1, 2, 3, i), 4, fps=10,
                                                        size=(320, 180), seed=10 + i)) for i in range(3)]


def wipe_fat_entry(img: Path, short: bytes) -> None:
    """Zero a deleted FAT directory entry (name, first cluster, size): nothing in the file system points at the
    clip any more; only its bytes remain."""
    data = bytearray(img.read_bytes())
    at = data.find(b"\xe5" + short[1:])
    assert at != -1 and at % 32 == 0
    data[at:at + 32] = b"\xe5" + bytes(31)
    img.write_bytes(bytes(data))


def clip_offset(img: Path, clip: Path) -> int:
    at = img.read_bytes().find(clip.read_bytes()[:4096])
    assert at > 0 and at % 512 == 0
    return at


def fat_wiped(d: Path, clips: list[Path], overwrite_middle: bool = False) -> Path:
    """A bare FAT32 card: three clips copied in; CLIP0001 (and CLIP0002) deleted and their entries wiped. With
    ``overwrite_middle``, 16 KiB in the middle of CLIP0002's bytes are overwritten (random)."""
    need("mkfs.vfat", "mcopy", "mdel", "mmd")
    img = d / "wiped.fat"
    sh("mkfs.vfat", "-F", "32", "-C", img, str(40 * 1024))
    sh("mmd", "-i", img, "::DCIM")
    for c in clips:
        sh("mcopy", "-i", img, c, f"::DCIM/{c.name}")
    offsets = {c.name: clip_offset(img, c) for c in clips}
    sh("mdel", "-i", img, "::DCIM/CLIP0001.MP4", "::DCIM/CLIP0002.MP4")
    wipe_fat_entry(img, b"CLIP0001MP4")
    wipe_fat_entry(img, b"CLIP0002MP4")
    if overwrite_middle:
        with open(img, "r+b") as fh:
            fh.seek(offsets["CLIP0002.MP4"] + clips[2].stat().st_size // 2)
            fh.write(random.Random(7).randbytes(16384))
    return img


def carved(ev: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in ev.items() if "[carved]" in k}


def test_fat32_wiped_entries_carved_byte_identical_and_overwritten_one_partial(tmp_path: Path,
                                                                               clips: list[Path]) -> None:
    img = fat_wiped(tmp_path, clips, overwrite_middle=True)
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    first = ingest(case_dir, img)
    ev = events(case_dir, img)
    assert object_sha(ev["p0/DCIM/CLIP0000.MP4"]) == sha(clips[0])
    assert not any("LIP0001" in k or "LIP0002" in k for k in ev)  # no name is left to recover them by
    found = carved(ev)
    assert len(found) == 2, sorted(ev)
    by_sha = {object_sha(v): (k, v) for k, v in found.items()}
    name, whole = by_sha[sha(clips[1])]  # byte-identical to the original
    raw = img.read_bytes()
    assert whole["offset"] == raw.find(clips[1].read_bytes()[:4096])
    assert name == f"p0/[carved]/at-byte-{whole['offset']}.mp4"
    assert whole["carved"] is True and whole["allocated"] is False and whole["length"] == clips[1].stat().st_size
    assert whole["recovery"] == "intact" and "ftyp" in whole["structure"] and "moov" in whole["structure"]
    assert whole["playback"]["plays_whole"] is True and whole["file_system"] == "FAT32"
    # the overwritten one: kept, same length, not the original's bytes, marked partial with what decodes
    (name2, part), = [v for s, v in by_sha.items() if s != sha(clips[1])]
    assert part["length"] == clips[2].stat().st_size and object_sha(part) != sha(clips[2])
    assert part["recovery"] == "partial" and "does not play whole" in part["recovery_basis"]
    pb = part["playback"]
    assert pb["plays_whole"] is False and pb["errors"] > 0 and 0 < pb["decoded_s"] < pb["duration_s"] - 0.5
    assert f"{pb['decoded_s']:.1f} s of the container's {pb['duration_s']:.1f} s" in part["recovery_basis"]
    # a carved object is evidence like any other: probed, rerun adds nothing, verify is clean
    assert first["objects_new"] >= 3
    again = ingest(case_dir, img)
    assert again["objects_new"] == 0 and again["duplicates"] == 0
    assert run_cli("verify", str(case_dir)).returncode == 0


def test_ext4_cleared_inode_carved(tmp_path: Path, clips: list[Path]) -> None:
    """A DVR disk: the clip's inode cleared (clri) after deletion: no metadata left, the bytes carved back."""
    need("mkfs.ext4", "debugfs")
    src = tmp_path / "src" / "DVR"
    src.mkdir(parents=True)
    for c in clips[:2]:
        (src / c.name).write_bytes(c.read_bytes())
    img = tmp_path / "dvr.img"
    sh("mkfs.ext4", "-q", "-d", src.parent, img, "8M")
    ino = sh("debugfs", "-R", "stat /DVR/CLIP0001.MP4", img).stdout.split("Inode:")[1].split()[0]
    sh("debugfs", "-w", "-R", "rm /DVR/CLIP0001.MP4", img)
    sh("debugfs", "-w", "-R", f"clri <{ino}>", img)
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    ingest(case_dir, img)
    ev = events(case_dir, img)
    assert object_sha(ev["p0/DVR/CLIP0000.MP4"]) == sha(clips[0])
    found = carved(ev)
    assert [object_sha(v) for v in found.values()] == [sha(clips[1])], sorted(ev)
    (v,) = found.values()
    assert v["file_system"] == "ext4" and v["recovery"] == "intact" and v["partition"] is None


def test_carving_bounds_and_hostile_headers() -> None:
    """Structure parsing on bytes: sizes bounded, a header claiming absurd sizes refused, lone headers ignored."""
    def reader(buf: bytes) -> carve.Read:
        return lambda off, n: buf[off:off + n]

    ftyp = struct.pack(">I4s", 24, b"ftyp") + b"isom" + bytes(12)
    mdat = struct.pack(">I4s", 4096, b"mdat") + os.urandom(4088)
    moov = struct.pack(">I4s", 1024, b"moov") + bytes(1016)
    area = bytes(512) + ftyp + mdat + moov + os.urandom(700)
    area += bytes(-len(area) % 512)
    (c,) = carve.scan(reader(area), [(0, len(area))], len(area))
    assert (c.offset, c.length, c.refused) == (512, 24 + 4096 + 1024, None)
    assert [b for b, _ in c.structure] == ["ftyp", "mdat", "moov"]
    # an mdat claiming a petabyte (64-bit size): refused as hostile, nothing read
    huge = struct.pack(">I4sQ", 1, b"mdat", 1 << 50)
    (h,) = carve.scan(reader(ftyp + huge + bytes(1000)), [(0, 1024)], 1024)
    assert h.refused and "hostile" in h.refused and h.length == 0
    # a file running past the end of the file system: carved to the end, said so
    short = ftyp + mdat[:2000]
    (t,) = carve.scan(reader(short), [(0, len(short))], len(short))
    assert t.length == len(short) and t.truncated and "carved to the end" in t.truncated
    # a lone ftyp, and an 'ftyp' not on a sector boundary, are not files
    assert not list(carve.scan(reader(ftyp + bytes(2000)), [(0, 2024)], 2024))
    assert not list(carve.scan(reader(bytes(100) + ftyp + mdat + moov), [(0, 6000)], 6000))
    # AVI: RIFF + size + 'AVI ' + LIST hdrl, followed by an AVIX extension
    riff = b"RIFF" + struct.pack("<I", 2040) + b"AVI LIST" + struct.pack("<I", 4) + b"hdrl" + bytes(2024)
    avix = b"RIFF" + struct.pack("<I", 1016) + b"AVIX" + bytes(1012)
    (a,) = carve.scan(reader(riff + avix + bytes(512)), [(0, 3584)], 3584)
    assert a.kind == "avi" and a.length == 2048 + 1024 and [n for n, _ in a.structure] == ["RIFF AVI", "RIFF AVIX"]


def test_playback_of_a_truncated_clip(tmp_path: Path, clips: list[Path]) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clips[0].read_bytes()[: clips[0].stat().st_size // 2])
    p = carve.playback(str(cut))
    assert p["plays_whole"] is False and p["frames"] == 0 and "does not open" in p["note"]
    whole = carve.playback(str(clips[0]))
    assert whole["plays_whole"] is True and abs(whole["decoded_s"] - 4.0) < 0.3


def test_partitioned_card_carving_offset_in_image(tmp_path: Path, clips: list[Path]) -> None:
    """On an MBR card the carved file's offset counts from the start of the image, not the partition."""
    need("sfdisk")
    fs = fat_wiped(tmp_path, clips)
    card = tmp_path / "card.dd"
    with open(card, "wb") as out:
        out.truncate(MiB + fs.stat().st_size)
    sh("sfdisk", "-q", card, input=f"start=2048, size={fs.stat().st_size // 512}, type=c\n")
    with open(card, "r+b") as out:
        out.seek(MiB)
        out.write(fs.read_bytes())
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    ingest(case_dir, card)
    found = carved(events(case_dir, card))
    assert sorted(object_sha(v) for v in found.values()) == sorted(sha(c) for c in clips[1:])
    for v in found.values():
        assert v["partition"]["index"] == 1 and v["offset"] - v["offset_in_file_system"] == MiB
        assert card.read_bytes()[v["offset"] + 4:v["offset"] + 8] == b"ftyp"


def test_kill_9_with_carved_clips_stored_then_resume(tmp_path: Path, clips: list[Path]) -> None:
    """Killed with the image's members (the allocated clip and both carved ones, one group) stored and not
    recorded: the resumed case holds the same members, carved and recorded once, as an uninterrupted run."""
    from tests.ingest.test_images import member_set

    img = fat_wiped(tmp_path, clips)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    for c in (killed, whole):
        run_cli("init", str(c), check=True)
    proc = run_cli("ingest", str(killed), str(img), "--json", env={"CUSTODES_FAULT": "ingest.member_stored"})
    assert proc.returncode == -9
    ingest(killed, img)
    ingest(whole, img)
    assert member_set(killed, img) == member_set(whole, img)
    assert sum("[carved]" in m for m, *_ in member_set(killed, img)) == 2
    assert run_cli("verify", str(killed)).returncode == 0


BOX_CHAIN = b"\x00\x00\x00\x08ftyp"  # an 8-byte 'ftyp' box, chained: a run of boxes that never holds an mdat


def test_chained_boxes_in_free_space_parsed_once_and_a_clip_after_them_still_carved(tmp_path: Path,
                                                                                  clips: list[Path]) -> None:
    """A 40 MiB FAT32 card with 2 MiB of chained 8-byte 'ftyp' boxes in its unallocated tail (every sector a
    header that walks up to 100,000 boxes: quadratic, minutes) and a real clip after them: each box of the run
    is parsed about once, the clip is carved byte-identical, and the whole ingest takes seconds."""
    need("mkfs.vfat")
    img = tmp_path / "card.img"
    size = 40 * MiB
    sh("mkfs.vfat", "-F", "32", "-C", img, str(size // 1024))
    clip = clips[0].read_bytes()
    with open(img, "r+b") as fh:
        fh.seek(size - 4 * MiB)
        fh.write(BOX_CHAIN * (2 * MiB // 8))
        fh.seek(size - MiB)
        fh.write(clip)
    raw = img.read_bytes()
    work = carve.ScanWork(carve.SCAN_WORK_BASE)
    found = list(carve.scan(lambda off, n: raw[off:off + n], [(0, size)], size, work=work))
    assert [(c.offset, c.length, c.refused) for c in found] == [(size - MiB, len(clip), None)]
    assert work.boxes < 2 * MiB // 8 + 1000 and work.stopped_at is None, work.boxes  # was ~10^9 box reads
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    ingest(case_dir, img)
    ev = carved(events(case_dir, img))
    assert [object_sha(v) for v in ev.values()] == [sha(clips[0])], sorted(ev)
    (v,) = ev.values()
    assert v["offset"] == size - MiB and v["recovery"] == "intact"


def test_carving_budget_stops_the_scan_with_a_sentence(clips: list[Path]) -> None:
    """Box runs crafted so that every sector's header jumps into one long shared tail (each walk a different
    run): the scan's parsing budget stops it, with one last refusal saying where and why."""
    tail_at = 256 * 1024
    buf = bytearray(tail_at + 80_000)
    for s in range(0, tail_at, 512):
        buf[s:s + 8] = struct.pack(">I4s", tail_at - s, b"ftyp")
    buf[tail_at:] = b"\x00\x00\x00\x08free" * (80_000 // 8)
    data = bytes(buf) + bytes(512 - len(buf) % 512) + clips[0].read_bytes()  # the clip on a sector
    work = carve.ScanWork(200_000)
    found = list(carve.scan(lambda off, n: data[off:off + n], [(0, len(data))], len(data), work=work))
    (stop,) = found
    assert stop.kind == "stopped" and stop.length == 0 and work.stopped_at == stop.offset < tail_at
    assert stop.refused and stop.refused.startswith(f"carving stopped early at byte {stop.offset:,}: ")
    assert "not searched" in stop.refused and work.boxes <= 200_000
    # unbounded, the same bytes are carved to the end: the clip after the tail is found
    every = list(carve.scan(lambda off, n: data[off:off + n], [(0, len(data))], len(data),
                            work=carve.ScanWork(None)))
    assert [c.length for c in every] == [len(clips[0].read_bytes())]

"""Disk and card images (issue 26, first slice): real images built with the real tools, ingested through the CLI.

Each image holds synthetic clips; some are deleted, one is partly overwritten by a file written after the
deletion. The intact deleted clips must come back byte-identical, flagged deleted; the overwritten one kept
and marked partial.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from custodes.ingest.archives import sniff
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from tests.conftest import run_cli

pytest.importorskip("pytsk3")

MiB = 1 << 20


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make system-deps installs them)")


def sh(*args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, timeout=60, **kw)


def sha(p: Path | bytes) -> str:
    return hashlib.sha256(p if isinstance(p, bytes) else p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("image-clips")
    return [write_clip(d / f"CLIP000{i}.MP4", ClipSpec(f"CAM-0{i}", datetime(2026, 1, 2, 3, i), 3, fps=10,
                                                        size=(320, 180), seed=i)) for i in range(4)]


@pytest.fixture(scope="module")
def filler(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("filler") / "NEW.BIN"
    p.write_bytes(os.urandom(20_000))  # smaller than a clip: it overwrites only part of the one it lands on
    return p


def fat_card(d: Path, clips: list[Path], filler: Path) -> Path:
    """An SD card: MBR, one FAT32 partition at 1 MiB, DCIM/100MEDIA with four clips; two deleted, then a new
    file written (FAT takes the first free clusters: the first deleted clip's)."""
    need("mkfs.vfat", "mcopy", "mdel", "mmd", "sfdisk")
    fs = d / "fat.part"
    sh("mkfs.vfat", "-F", "32", "-C", fs, str(40 * 1024))  # 40 MiB (FAT32's minimum is about 33)
    sh("mmd", "-i", fs, "::DCIM", "::DCIM/100MEDIA")
    for c in clips:
        sh("mcopy", "-i", fs, c, f"::DCIM/100MEDIA/{c.name}")
    sh("mdel", "-i", fs, "::DCIM/100MEDIA/CLIP0001.MP4", "::DCIM/100MEDIA/CLIP0002.MP4")
    with open(fs, "r+b") as fh:  # FSInfo's next-free hint to 'unknown', so the first free clusters are taken
        fsinfo = int.from_bytes(fh.read(50)[48:50], "little")
        fh.seek(fsinfo * 512 + 0x1EC)
        fh.write(b"\xff\xff\xff\xff")
    sh("mcopy", "-i", fs, filler, "::NEW.BIN")
    card = d / "card.dd"
    with open(card, "wb") as out:
        out.truncate(MiB + fs.stat().st_size)
    sh("sfdisk", "-q", card, input=f"start=2048, size={fs.stat().st_size // 512}, type=c\n")
    with open(card, "r+b") as out:
        out.seek(MiB)
        out.write(fs.read_bytes())
    fs.unlink()
    return card


def ext4_dvr(d: Path, clips: list[Path], filler: Path) -> Path:
    """A DVR disk: bare ext4 built from a folder; two clips deleted with debugfs, one new file written."""
    need("mkfs.ext4", "debugfs")
    src = d / "dvr-src" / "DVR"
    src.mkdir(parents=True)
    for c in clips:
        shutil.copy(c, src / c.name)
    img = d / "dvr.img"
    sh("mkfs.ext4", "-q", "-d", src.parent, img, "8M")
    sh("debugfs", "-w", "-R", "ln /DVR /DVR/loop", img)  # a directory entry back to its own directory
    for gone in ("CLIP0001.MP4", "CLIP0002.MP4"):
        sh("debugfs", "-w", "-R", f"rm /DVR/{gone}", img)
    sh("debugfs", "-w", "-R", f"write {filler} /NEW.BIN", img)  # takes the first deleted clip's inode
    return img


def fuse_edit(img: Path, mount: list[str], edit: Any, loop: bool = False) -> bool:
    """Mount ``img`` with a FUSE driver (through a loop device where the driver needs a block device), run
    ``edit(folder)``, unmount. False where this machine cannot mount."""
    mnt = img.parent / (img.name + ".mnt")
    mnt.mkdir()
    dev = None
    try:
        if loop:
            dev = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
            if not dev:
                return False
        if subprocess.run([*mount, dev or str(img), str(mnt)], capture_output=True, timeout=30).returncode:
            return False
        try:
            edit(mnt)
        finally:
            subprocess.run(["fusermount", "-u", str(mnt)], capture_output=True, timeout=30)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if dev:
            subprocess.run(["losetup", "-d", dev], capture_output=True, timeout=30)
        mnt.rmdir()


def ntfs_pc(d: Path, clips: list[Path], filler: Path) -> tuple[Path, bool]:
    """An office PC's NTFS: four clips copied in with ntfscp; two deleted through ntfs-3g where it mounts."""
    need("mkfs.ntfs", "ntfscp")
    img = d / "pc.img"
    with open(img, "wb") as out:
        out.truncate(16 * MiB)
    sh("mkfs.ntfs", "-q", "-F", "-f", img)
    for c in clips:
        sh("ntfscp", "-q", img, c, c.name)

    def edit(m: Path) -> None:
        (m / "DCIM").mkdir()
        (m / "CLIP0001.MP4").rename(m / "DCIM" / "CLIP0001.MP4")
        (m / "DCIM" / "CLIP0001.MP4").unlink()
        (m / "CLIP0002.MP4").unlink()
        shutil.copy(filler, m / "NEW.BIN")

    return img, bool(shutil.which("ntfs-3g")) and fuse_edit(img, ["ntfs-3g"], edit)


def exfat_card(d: Path, clips: list[Path]) -> Path | None:
    need("mkfs.exfat")
    img = d / "cam.exfat"
    with open(img, "wb") as out:
        out.truncate(8 * MiB)
    sh("mkfs.exfat", img)

    def edit(m: Path) -> None:
        for c in clips[:3]:
            shutil.copy(c, m / c.name)
        (m / "CLIP0001.MP4").unlink()

    ok = bool(shutil.which("mount.exfat-fuse")) and fuse_edit(img, ["mount.exfat-fuse"], edit, loop=True)
    return img if ok else None


def ingest(case_dir: Path, *paths: Path) -> dict[str, Any]:
    proc = run_cli("ingest", str(case_dir), *map(str, paths), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def events(case_dir: Path, source: Path) -> dict[str, dict[str, Any]]:
    """The signed ingest events of the members of one source, by member path (the event's object added)."""
    case = Case(case_dir)
    out = {}
    for e in case.ledger.entries():
        d = e.get("details") or {}
        if e["action"] == "ingest" and d.get("source_path") == str(source) and d.get("member_path"):
            out[d["member_path"]] = {**d, "sha256": e["subject"]}
    return out


def object_sha(ev: dict[str, Any]) -> str:
    return str(ev["sha256"])


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, clips: list[Path], filler: Path) -> dict[str, Any]:
    """One case, one batch: the FAT32 card, the ext4 DVR disk, the NTFS PC disk, the exFAT card, a truncated
    image, a file that only looks like an image, and a plain clip."""
    d = tmp_path_factory.mktemp("images")
    card = fat_card(d, clips, filler)
    dvr = ext4_dvr(d, clips, filler)
    pc, ntfs_deleted = ntfs_pc(d, clips, filler)
    exfat = exfat_card(d, clips)
    truncated = d / "truncated.dd"
    truncated.write_bytes(dvr.read_bytes()[: 3 * MiB])
    lookalike = d / "lookalike.bin"
    blob = bytearray(os.urandom(64 * 1024))
    blob[510:512] = b"\x55\xaa"
    lookalike.write_bytes(bytes(blob))
    sources = [card, dvr, pc, truncated, lookalike, clips[0]] + ([exfat] if exfat else [])
    case_dir = d / "case"
    run_cli("init", str(case_dir), check=True)
    first = ingest(case_dir, *sources)
    second = ingest(case_dir, *sources)
    return {"dir": d, "case": case_dir, "card": card, "dvr": dvr, "pc": pc, "exfat": exfat,
            "ntfs_deleted": ntfs_deleted, "truncated": truncated, "lookalike": lookalike,
            "first": first, "second": second}


def check_deleted(ev: dict[str, Any], original: Path | None, recovery: str) -> None:
    assert ev["deleted"] is True and ev["allocated"] is False
    assert ev["recovery"] == recovery, ev["recovery_basis"]
    assert ev["recovery_basis"]
    if original is not None:
        assert object_sha(ev) == sha(original)


def test_fat32_card_allocated_and_deleted_clips(batch: dict[str, Any], clips: list[Path], filler: Path) -> None:
    ev = events(batch["case"], batch["card"])
    for c in (clips[0], clips[3]):
        e = ev[f"p1/DCIM/100MEDIA/{c.name}"]
        assert object_sha(e) == sha(c)
        assert e["file_system"] == "FAT32" and e["deleted"] is False and e["allocated"] is True
        assert e["partition"] == {"index": 1, "offset": MiB, "type": e["partition"]["type"], "table": "MBR"}
        assert "FAT32" in e["partition"]["type"] or "0x0c" in e["partition"]["type"].lower()
        assert e["inode"] > 0 and e["path"] == f"/DCIM/100MEDIA/{c.name}"
        assert {"crtime", "mtime", "atime"} <= set(e["times"]) and e["image"]["format"] == "raw"
        assert abs(datetime.fromisoformat(e["times"]["mtime"]).timestamp() - c.stat().st_mtime) < 3600 * 24
    assert object_sha(ev["p1/NEW.BIN"]) == sha(filler)
    # FAT marks a deleted entry by its first byte: TSK shows it as '_'
    check_deleted(ev["p1/DCIM/100MEDIA/_LIP0002.MP4"], clips[2], "intact")
    check_deleted(ev["p1/DCIM/100MEDIA/_LIP0001.MP4"], None, "partial")
    assert object_sha(ev["p1/DCIM/100MEDIA/_LIP0001.MP4"]) != sha(clips[1])


def test_ext4_dvr_deleted_clips_and_directory_loop(batch: dict[str, Any], clips: list[Path]) -> None:
    ev = events(batch["case"], batch["dvr"])
    for c in (clips[0], clips[3]):
        e = ev[f"p0/DVR/{c.name}"]
        assert object_sha(e) == sha(c) and e["file_system"] == "ext4" and e["partition"] is None
        assert {"crtime", "mtime", "atime", "ctime"} <= set(e["times"])
    check_deleted(ev["p0/DVR/CLIP0002.MP4"], clips[2], "intact")
    check_deleted(ev["p0/DVR/CLIP0001.MP4"], None, "partial")  # its inode went to NEW.BIN
    refused = {r["member_path"]: r["reason"] for r in batch["first"]["refused"]
               if r["source_path"] == str(batch["dvr"])}
    assert "directory loop" in refused["p0/DVR/loop"]
    assert not any(k.startswith("p0/DVR/loop/") for k in ev)


def test_ntfs_pc_deleted_clips(batch: dict[str, Any], clips: list[Path]) -> None:
    ev = events(batch["case"], batch["pc"])
    assert object_sha(ev["p0/CLIP0000.MP4"]) == sha(clips[0]) and ev["p0/CLIP0000.MP4"]["file_system"] == "NTFS"
    assert not any("$MFT" in k for k in ev)  # the file system's own metadata stays in the image
    if not batch["ntfs_deleted"]:
        pytest.skip("ntfs-3g could not mount here: NTFS deletion not tested")
    assert {"crtime", "mtime", "atime", "ctime"} <= set(ev["p0/CLIP0003.MP4"]["times"])
    check_deleted(ev["p0/DCIM/CLIP0001.MP4"], clips[1], "intact")
    check_deleted(ev["p0/CLIP0002.MP4"], clips[2], "intact")


def test_exfat_card_deleted_clip(batch: dict[str, Any], clips: list[Path]) -> None:
    if batch["exfat"] is None:
        pytest.skip("exFAT needs a loop device and mount.exfat-fuse (root): not available here")
    ev = events(batch["case"], batch["exfat"])
    assert object_sha(ev["p0/CLIP0000.MP4"]) == sha(clips[0]) and ev["p0/CLIP0000.MP4"]["file_system"] == "exFAT"
    check_deleted(ev["p0/CLIP0001.MP4"], clips[1], "intact")
    assert not any(k.startswith("p0/$") for k in ev)


def test_batch_truncated_refused_lookalike_plain_rerun_adds_nothing(batch: dict[str, Any]) -> None:
    first, second = batch["first"], batch["second"]
    refused = {(r["source_path"], r["member_path"]): r["reason"] for r in first["refused"]}
    reason = refused[(str(batch["truncated"]), "")]
    assert "truncated" in reason and "Traceback" not in reason
    assert not events(batch["case"], batch["lookalike"])  # a plain file, though 0x55AA sits at byte 510
    with open(batch["lookalike"], "rb") as fh:
        assert sniff(fh) is None
    assert second["objects_new"] == 0 and second["duplicates"] == 0
    case = Case(batch["case"])
    n_ingest = sum(1 for e in case.ledger.entries() if e["action"] == "ingest")
    proc = run_cli("verify", str(batch["case"]), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sum(1 for e in Case(batch["case"]).ledger.entries() if e["action"] == "ingest") == n_ingest


def test_image_inside_zip_and_e01(tmp_path: Path, clips: list[Path], filler: Path) -> None:
    card = fat_card(tmp_path, clips, filler)
    zipped = tmp_path / "handover.zip"
    # stored, not deflated: a mostly empty card compresses past the zip-bomb ratio limit (ArchiveLimits.max_ratio)
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.write(card, "card.dd")
    sources = [zipped]
    e01 = None
    if shutil.which("ewfacquire"):
        sh("ewfacquire", "-u", "-q", "-t", tmp_path / "card", "-f", "encase6", "-c", "deflate:fast", "-d", "sha1",
           "-C", "26", "-D", "test card", "-e", "tester", "-E", "1", "-N", "none", card)
        e01 = tmp_path / "card.E01"
        sources.append(e01)
    case_dir = tmp_path / "case"
    run_cli("init", str(case_dir), check=True)
    ingest(case_dir, *sources)
    ev = events(case_dir, zipped)
    assert object_sha(ev["card.dd!/p1/DCIM/100MEDIA/CLIP0003.MP4"]) == sha(clips[3])
    check_deleted(ev["card.dd!/p1/DCIM/100MEDIA/_LIP0002.MP4"], clips[2], "intact")
    if e01 is None:
        pytest.skip("ewfacquire (ewf-tools) not installed: E01 not tested")
    ev = events(case_dir, e01)
    e = ev["p1/DCIM/100MEDIA/CLIP0000.MP4"]
    assert object_sha(e) == sha(clips[0])
    assert e["image"]["format"] == "e01" and e["image"]["hash_check"] == "match"
    assert set(e["image"]["embedded"]) == {"MD5", "SHA1"}
    assert e["image"]["computed"]["MD5"] == hashlib.md5(card.read_bytes()).hexdigest()
    check_deleted(ev["p1/DCIM/100MEDIA/_LIP0002.MP4"], clips[2], "intact")
    assert run_cli("verify", str(case_dir)).returncode == 0


def member_set(case_dir: Path, source: Path) -> set[tuple[str, str, bool, str | None]]:
    return {(k, v["sha256"], v["deleted"], v.get("recovery")) for k, v in events(case_dir, source).items()}


def test_kill_9_while_unpacking_an_image_then_resume(tmp_path: Path, clips: list[Path], filler: Path) -> None:
    dvr = ext4_dvr(tmp_path, clips, filler)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    for c in (killed, whole):
        run_cli("init", str(c), check=True)
    proc = run_cli("ingest", str(killed), str(dvr), "--json", env={"CUSTODES_FAULT": "ingest.member_stored"})
    assert proc.returncode == -9  # killed with an image member stored and not yet recorded
    ingest(killed, dvr)
    ingest(whole, dvr)
    assert member_set(killed, dvr) == member_set(whole, dvr)
    assert len(member_set(killed, dvr)) == 5  # CLIP0000, CLIP0003, NEW.BIN; deleted CLIP0002 (intact), CLIP0001
    assert run_cli("verify", str(killed)).returncode == 0

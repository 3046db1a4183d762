"""Hostile archives: refused with a clear reason, nothing written outside the case."""

import io
import os
import stat
import tarfile
import zipfile

import py7zr
import pytest

from custodes.ingest.pipeline import Ingestor
from custodes.store.verify import verify_case


def snapshot(root):
    return {p: p.stat().st_size for p in root.rglob("*") if "case" not in p.relative_to(root).parts[:1]}


def ingest(case, path):
    rep = Ingestor(case, "tester").run([path])
    return rep, {r["member_path"]: r["reason"] for r in rep.refused}


def make_evil_zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok/clip.txt", b"fine")
        zf.writestr("../../escaped.txt", b"evil")
        zf.writestr("/etc/cron.d/evil", b"evil")
        zf.writestr("..\\..\\win.txt", b"evil")
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")


def test_zip_traversal_absolute_and_symlink_refused(case, tmp_path):
    evil = tmp_path / "evil.zip"
    make_evil_zip(evil)
    before = snapshot(tmp_path)
    rep, refused = ingest(case, evil)
    assert "path traversal" in refused["../../escaped.txt"]
    assert "absolute path" in refused["/etc/cron.d/evil"]
    assert "path traversal" in refused["..\\..\\win.txt"]
    assert "symbolic link" in refused["link"]
    assert rep.archive_members == 1  # only ok/clip.txt
    assert snapshot(tmp_path) == before
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert verify_case(case).ok


def test_tar_links_devices_and_traversal_refused(case, tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tf:
        for name, data in (("good.txt", b"fine"), ("../up.txt", b"evil")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, kind, target in (("sym", tarfile.SYMTYPE, "/etc/passwd"), ("hard", tarfile.LNKTYPE, "good.txt"),
                                   ("dev", tarfile.CHRTYPE, "")):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = kind, target
            tf.addfile(ti)
    rep, refused = ingest(case, evil)
    assert "path traversal" in refused["../up.txt"]
    assert "link" in refused["sym"] and "/etc/passwd" in refused["sym"]
    assert "link" in refused["hard"]
    assert "special file" in refused["dev"]
    assert rep.archive_members == 1
    assert verify_case(case).ok


def _evil_7z(path):
    """py7zr refuses to write '../' names, so write a safe name and patch the header."""
    import struct
    import zlib

    with py7zr.SevenZipFile(path, "w") as z:
        z.set_encoded_header_mode(False)
        z.writestr(b"fine", "good.txt")
        z.writestr(b"evil", "XX/escape.txt")
    data = bytearray(path.read_bytes())
    safe, bad = "XX/escape.txt".encode("utf-16-le"), "../escape.txt".encode("utf-16-le")
    i = data.index(safe)
    data[i:i + len(safe)] = bad
    off, size = struct.unpack_from("<QQ", data, 12)
    header = bytes(data[32 + off:32 + off + size])
    struct.pack_into("<I", data, 28, zlib.crc32(header))
    struct.pack_into("<I", data, 8, zlib.crc32(bytes(data[12:32])))
    path.write_bytes(bytes(data))


def test_7z_traversal_refused_and_good_members_kept(case, tmp_path):
    evil = tmp_path / "evil.7z"
    _evil_7z(evil)
    before = snapshot(tmp_path)
    rep, refused = ingest(case, evil)
    assert "path traversal" in refused["../escape.txt"]
    assert rep.archive_members == 1
    assert snapshot(tmp_path) == before
    assert not (tmp_path.parent / "escape.txt").exists()


def test_zip_bomb_refused(case, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open("big.bin", "w", force_zip64=True) as fh:
        chunk = b"\0" * (1 << 20)
        for _ in range(300):
            fh.write(chunk)
    assert bomb.stat().st_size < 1_000_000
    rep, refused = ingest(case, bomb)
    assert any("zip bomb" in r for r in refused.values())
    assert rep.archive_members == 0
    assert list(case.store.tmp_dir.iterdir()) == []
    total = sum(p.stat().st_size for p in case.store.root.glob("??/*"))
    assert total < 2_000_000  # the bomb itself is kept as evidence, its contents are not


def test_gzip_tar_bomb_stopped_while_streaming(case, tmp_path):
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tf:
        ti = tarfile.TarInfo("zeros.bin")
        ti.size = 300 << 20

        class Zeros(io.RawIOBase):
            left = ti.size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = b"\0" * n
                self.left -= n
                return n

        tf.addfile(ti, io.BufferedReader(Zeros()))
    rep, refused = ingest(case, bomb)
    assert any("zip bomb" in r for r in refused.values())
    assert list(case.store.tmp_dir.iterdir()) == []


def test_nested_archives_unpack_with_member_paths(case, tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("deep/clip.txt", b"inner evidence")
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("inner.zip", inner.getvalue())
    rep, refused = ingest(case, outer)
    assert refused == {}
    assert rep.archives == 2 and rep.archive_members == 2
    from sqlalchemy import select

    from custodes.store.db import Provenance
    with case.sessions() as s:
        paths = sorted(p.member_path for p in s.scalars(select(Provenance)))
    assert paths == ["", "inner.zip", "inner.zip!/deep/clip.txt"]


@pytest.mark.parametrize("payload", [b"PK\x03\x04garbage" * 10, b"7z\xbc\xaf\x27\x1c" + os.urandom(200)])
def test_damaged_archive_is_kept_and_reported(case, tmp_path, payload):
    bad = tmp_path / "damaged.zip"
    bad.write_bytes(payload)
    rep, refused = ingest(case, bad)
    assert any("damaged" in r for r in refused.values())
    assert rep.objects_new == 1  # the damaged archive itself is preserved
    assert verify_case(case).ok

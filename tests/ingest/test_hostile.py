"""Hostile archives: refused with a clear reason, nothing written outside the case."""

import io
import os
import stat
import tarfile
import zipfile

import py7zr
import pytest

from custodes.ingest.archives import ArchiveBudget, ArchiveLimits
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
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


def _zip_of(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def nested_bomb(copies, levels, zeros):
    """A 42.zip-style bomb: ``copies`` members of ``zeros`` zero bytes, that zip ``copies`` times in the next
    level, and so on. Each level alone is harmless; together they expand ``copies ** (levels + 1)`` times."""
    data = _zip_of([(f"zeros{i}.bin", bytes(zeros)) for i in range(copies)])
    for level in range(levels):
        data = _zip_of([(f"level{level}_{i}.zip", data) for i in range(copies)])
    return data


def produced(case):
    """Bytes unpacked from archives and recorded: every member counts, whether its bytes were new or not."""
    from sqlalchemy import select

    from custodes.store.db import Provenance
    with case.sessions() as s:
        return sum(p.size for p in s.scalars(select(Provenance).where(Provenance.member_path != "")))


def test_nested_bomb_meets_one_budget_for_all_levels(case, tmp_path):
    bomb = tmp_path / "nested.zip"
    bomb.write_bytes(nested_bomb(copies=4, levels=2, zeros=1 << 20))  # 64 MiB in all
    limits = ArchiveLimits(max_total_bytes=5 << 20)
    rep = Ingestor(case, "tester", limits=limits).run([bomb])
    # one refusal, where the budget ran out; nothing more is unpacked from the source at any level
    [refused] = [r["reason"] for r in rep.refused]
    assert "all nesting levels together" in refused and "zip bomb" in refused
    assert produced(case) <= 5 << 20
    assert list(case.store.tmp_dir.iterdir()) == []
    assert verify_case(case).ok
    # the member count is shared the same way
    other = Case.init(tmp_path / "other", "tester")
    rep = Ingestor(other, "tester", limits=ArchiveLimits(max_members=10)).run([bomb])
    assert rep.archive_members == 10
    assert ["more than 10 members" in r["reason"] for r in rep.refused] == [True]
    assert verify_case(other).ok


def test_nested_bomb_stopped_by_the_default_limits(case, tmp_path):
    import time

    bomb = tmp_path / "42.zip"
    bomb.write_bytes(nested_bomb(copies=16, levels=3, zeros=4 << 20))  # 16**4 * 4 MiB = 256 GiB
    size = bomb.stat().st_size
    assert size < 64_000
    started = time.monotonic()
    rep = Ingestor(case, "tester").run([bomb])
    assert time.monotonic() - started < 10
    limit = ArchiveBudget(ArchiveLimits(), size).total
    assert limit < 30_000_000  # the source's size times the ratio, plus the small-member floor
    assert produced(case) <= limit
    assert ["all nesting levels together" in r["reason"] for r in rep.refused] == [True]
    assert sum(p.stat().st_size for p in case.store.root.glob("??/*")) < 10_000_000
    assert verify_case(case).ok


def test_7z_with_two_members_of_one_name_keeps_both(case, tmp_path):
    from sqlalchemy import select

    from custodes.store.db import Provenance

    archive = tmp_path / "same.7z"
    with py7zr.SevenZipFile(archive, "w") as z:
        z.writestr(b"first recording", "cam/clip.mp4")
        z.writestr(b"other", "other.txt")
        z.writestr(b"second recording", "cam/clip.mp4")
    with py7zr.SevenZipFile(archive) as z:
        assert [i.filename for i in z.list()].count("cam/clip.mp4") == 2
    for run in range(2):
        rep, refused = ingest(case, archive)
        assert refused == {}
        assert rep.archive_members == 3
        with case.sessions() as s:
            rows = {p.member_path: p for p in s.scalars(select(Provenance).where(Provenance.member_path != ""))}
        assert sorted(rows) == ["cam/clip.mp4", "cam/clip.mp4 [same name #2]", "other.txt"]
        assert {p.original_name for p in rows.values()} == {"clip.mp4", "other.txt"}
        for path, data in (("cam/clip.mp4", b"first recording"), ("cam/clip.mp4 [same name #2]", b"second recording")):
            with case.store.open(rows[path].sha256) as fh:
                assert fh.read() == data
        assert rep.already_ingested == (3 if run else 0)
        assert verify_case(case).ok


def test_7z_failing_part_way_keeps_the_members_decoded_before(case, tmp_path):
    archive = tmp_path / "damaged.7z"
    with py7zr.SevenZipFile(archive, "w", filters=[{"id": py7zr.FILTER_COPY}]) as z:
        z.writestr(b"A" * 1000, "first.txt")
        z.writestr(b"B" * 1000, "second.txt")
    data = bytearray(archive.read_bytes())
    i = data.index(b"B" * 1000)
    data[i + 500] ^= 0xFF  # the second member no longer matches its CRC
    archive.write_bytes(bytes(data))
    for _ in range(2):
        rep, refused = ingest(case, archive)
        assert rep.archive_members == 1
        assert "cannot be extracted" in refused[""]
        assert verify_case(case).ok

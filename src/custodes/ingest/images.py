"""Disk and card images: raw (``dd``) and EnCase E01, read through The Sleuth Kit (``pytsk3``) and libewf.

An image is a container like an archive: the image itself is the stored source object (kept whole, as
evidence), and every file inside it becomes a member streamed straight into the object store, never
extracted to the filesystem. Member paths are ``p<N>/<path in the file system>``: ``N`` counts the
allocated partitions of the partition table from 1; ``p0`` is a file system that spans the whole image
(no partition table). Each member carries ``details`` for its signed ingest event: the partition (index,
offset, type), the file system, the path, the inode or MFT entry, allocated or deleted, the file system's
times, and for a deleted file how well its content could be recovered and how that was judged.

Deleted files are listed by TSK with their metadata; their content is read through TSK and judged:

* ``intact``: every block the content needs is still unallocated and claimed by no other deleted file
  (FAT keeps no cluster chain for a deleted file: TSK assumes the clusters run on from the first, so the
  judgement is on the first cluster and the size; NTFS and ext2/3/4 keep the data runs, and the judgement
  is on those);
* ``partial``: some of those blocks now belong to another file, the inode or MFT entry was reallocated,
  or fewer bytes could be read than the file had: what was read is kept, but it is not (all) what was
  deleted;
* ``unknown``: the content cannot be judged (no data runs left, or blocks claimed by two deleted files).

Then video is carved from the blocks no allocated file holds (``carve``): a deleted recording whose directory
entry or inode is gone comes back as ``p<N>/[carved]/at-byte-<offset>.<ext>``, with the byte offset in the image,
its structure and a recovery judgement. A recovered or carved video is decoded (``carve.playback``): one that does
not play whole is marked partial, with the seconds that decode out of the container's duration.

Not in this slice: alternate data streams, file slack, multi-segment E01 sets, and reading the readable part of a
truncated image (it is refused with the reason; the image itself is kept).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from custodes.ingest import carve, names
from custodes.ingest.archives import ArchiveBudget, ArchiveError, MemberResult, _store_member
from custodes.store.objects import CHUNK, ObjectStore, StoreWriteError

EWF_MAGIC = b"EVF\x09\x0d\x0a\xff\x00"
IMAGE_KINDS = ("disk-image", "e01")
MAX_DIR_DEPTH = 64  # directories inside directories, in one file system
MAX_ENTRIES = 2_000_000  # directory entries looked at in one image, stored or not

_EXFAT_META = (b"$ALLOC_BITMAP", b"$UPCASE_TABLE", b"$VOLUME_GUID", b"$TEXFAT")  # TSK's names for exFAT's own
_FAT_LABELS = (b"FAT12   ", b"FAT16   ", b"FAT     ")


class ImageError(ArchiveError):
    """The image as a whole cannot be read (truncated, damaged, unsupported): refused, kept as stored."""


def _tsk() -> Any:
    import pytsk3

    return pytsk3


def _looks_like_image(head: bytes) -> bool:
    """Cheap signatures before TSK is asked: MBR/GPT, or a FAT, exFAT, NTFS or ext2/3/4 boot record."""
    if len(head) < 512:
        return False
    if head[510:512] == b"\x55\xaa" or head[512:520] == b"EFI PART":
        return True
    if head[3:11] in (b"NTFS    ", b"EXFAT   "):
        return True
    if head[54:62] in _FAT_LABELS or head[82:90] == b"FAT32   ":
        return True
    return len(head) >= 1082 and head[1080:1082] == b"\x53\xef"  # ext2/3/4 superblock magic


class _Img:
    """A TSK image over a stored object (plain file, decrypting reader or libewf handle)."""

    def __new__(cls, fh: Any, size: int) -> Any:
        pytsk3 = _tsk()

        class Img(pytsk3.Img_Info):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                self._fh, self._size = fh, size
                super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

            def close(self) -> None:
                return None

            def read(self, offset: int, length: int) -> bytes:
                if offset >= self._size:
                    return b""
                self._fh.seek(offset)
                data: bytes = self._fh.read(min(length, self._size - offset))
                return data

            def get_size(self) -> int:
                return self._size

        return Img()


def _size_of(fh: Any) -> int:
    fh.seek(0, 2)
    size: int = fh.tell()
    fh.seek(0)
    return size


def _open_ewf(fh: BinaryIO) -> Any:
    import pyewf

    handle = pyewf.handle()
    try:
        fh.seek(0)
        handle.open_file_objects([fh])
    except (OSError, OverflowError, TypeError) as exc:
        raise ImageError(f"the E01 image cannot be opened (damaged, truncated, or one segment of a set): "
                         f"{_short(exc)}") from exc
    return handle


def _short(exc: BaseException) -> str:
    """TSK and libewf errors name their C source lines: keep the last, readable part, on one line."""
    text = " ".join(str(exc).split())
    if ": " in text and "(" in text:
        text = text.rsplit(") ", 1)[-1] if ") " in text else text
    return text[:300] or type(exc).__name__


def _file_systems(img: Any) -> tuple[str | None, list[tuple[int, int | None, str, int | None, str | None]]]:
    """(partition table, [(index, offset, type, declared length, refusal)]) of an image; index 0 and no
    partition table for a file system spanning the whole image."""
    pytsk3 = _tsk()
    size = img.get_size()
    try:
        vol = pytsk3.Volume_Info(img)
    except OSError:
        return None, [(0, 0, "whole image", None, None)]
    table = {int(pytsk3.TSK_VS_TYPE_DOS): "MBR", int(pytsk3.TSK_VS_TYPE_GPT): "GPT"}.get(
        int(vol.info.vstype), str(vol.info.vstype))
    bs = int(vol.info.block_size)
    parts: list[tuple[int, int | None, str, int | None, str | None]] = []
    index = 0
    for part in vol:
        if not int(part.flags) & int(pytsk3.TSK_VS_PART_FLAG_ALLOC):
            continue
        index += 1
        offset, length = int(part.start) * bs, int(part.len) * bs
        desc = part.desc.decode("utf-8", "replace") if isinstance(part.desc, bytes) else str(part.desc)
        refusal = None
        if offset + length > size:
            refusal = (f"partition {index} ({desc}) runs to byte {offset + length:,} but the image ends at "
                       f"{size:,}: the image is truncated; the partition's files were not read (the image is kept)")
        parts.append((index, offset, desc, length, refusal))
    if not parts:  # a partition table naming nothing: perhaps a bare file system after all (FAT boot sector)
        return None, [(0, 0, "whole image", None, None)]
    return table, parts


def sniff_image(fh: BinaryIO) -> str | None:
    """'e01', 'disk-image' or None, by content, confirmed by libewf or TSK: a file that merely carries a
    signature (0x55AA at byte 510) stays a plain file unless a partition table with a readable file system,
    or a file system at its start, is really there."""
    fh.seek(0)
    head = fh.read(4096)
    fh.seek(0)
    if head.startswith(EWF_MAGIC):
        try:
            _open_ewf(fh).close()
        except ImageError:
            return "e01"  # it says it is an E01: refused as a damaged one, with the reason, when expanded
        return "e01"
    if not _looks_like_image(head):
        return None
    pytsk3 = _tsk()
    try:
        img = _Img(fh, _size_of(fh))
        table, parts = _file_systems(img)
        for _index, offset, _desc, _length, _refusal in parts:
            try:
                pytsk3.FS_Info(img, offset=offset or 0)
                return "disk-image"
            except OSError:
                continue
        if table == "GPT":  # a GPT header is checksummed: an image even when no file system in it opens
            return "disk-image"
    except (OSError, RuntimeError, ValueError):
        return None
    finally:
        fh.seek(0)
    return None


# -- the walk ------------------------------------------------------------------


@dataclass
class _Intervals:
    """Block ranges, merged on demand; ``overlap`` counts how many blocks of a range are in the set."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    _merged: list[tuple[int, int]] | None = None

    def add(self, start: int, length: int) -> None:
        if length > 0:
            self.spans.append((start, start + length))
            self._merged = None

    def _merge(self) -> list[tuple[int, int]]:
        if self._merged is None:
            out: list[tuple[int, int]] = []
            for s, e in sorted(self.spans):
                if out and s <= out[-1][1]:
                    out[-1] = (out[-1][0], max(out[-1][1], e))
                else:
                    out.append((s, e))
            self._merged = out
        return self._merged

    def overlap(self, start: int, length: int) -> int:
        merged, end, n = self._merge(), start + length, 0
        i = max(0, bisect.bisect_right(merged, (start, 1 << 62)) - 1)
        while i < len(merged) and merged[i][0] < end:
            s, e = merged[i]
            n += max(0, min(e, end) - max(s, start))
            i += 1
        return n


@dataclass
class _Deleted:
    path: bytes
    meta_addr: int
    name_seq: int | None
    name_deleted: bool


_FS_NAMES = {"TSK_FS_TYPE_FAT12": "FAT12", "TSK_FS_TYPE_FAT16": "FAT16", "TSK_FS_TYPE_FAT32": "FAT32",
             "TSK_FS_TYPE_EXFAT": "exFAT", "TSK_FS_TYPE_NTFS": "NTFS", "TSK_FS_TYPE_EXT2": "ext2",
             "TSK_FS_TYPE_EXT3": "ext3", "TSK_FS_TYPE_EXT4": "ext4", "TSK_FS_TYPE_ISO9660": "ISO9660",
             "TSK_FS_TYPE_HFS": "HFS+", "TSK_FS_TYPE_APFS": "APFS"}


def _fs_name(ftype: int) -> str:
    pytsk3 = _tsk()
    for const, label in _FS_NAMES.items():
        if int(getattr(pytsk3, const, -1)) == int(ftype):
            return label
    return f"TSK type {int(ftype)}"


def _iso(sec: int, nano: int) -> str | None:
    if not sec:
        return None
    try:
        t = datetime.fromtimestamp(sec, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return t.isoformat() if not nano else t.isoformat().replace("+00:00", f".{nano:09d}+00:00")


def _times(meta: Any) -> dict[str, str]:
    out = {}
    for key in ("crtime", "mtime", "atime", "ctime"):
        value = _iso(int(getattr(meta, key, 0) or 0), int(getattr(meta, key + "_nano", 0) or 0))
        if value is not None:
            out[key] = value
    return out


class _Reader:
    """A file's content through TSK, in chunks, as a file object for ``_store_member``. ``lenient``: a
    read error ends the content (what was read is kept, ``error`` says why) instead of raising."""

    def __init__(self, f: Any, size: int, lenient: bool) -> None:
        self.f, self.size, self.lenient = f, size, lenient
        self.pos = 0
        self.error: str | None = None

    def read(self, n: int = -1) -> bytes:
        want = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        if want <= 0 or self.error:
            return b""
        try:
            data: bytes = self.f.read_random(self.pos, min(want, CHUNK))
        except OSError as exc:
            if not self.lenient:
                raise
            self.error = _short(exc)
            return b""
        if not data:
            self.error = "the file system gave no more bytes"
            return b""
        self.pos += len(data)
        return data


class _SpanReader:
    """``length`` bytes from ``offset`` of the file system, as a file object for ``_store_member``."""

    def __init__(self, read: Any, offset: int, length: int) -> None:
        self._read, self.offset, self.length, self.pos = read, offset, length, 0

    def read(self, n: int = -1) -> bytes:
        want = self.length - self.pos if n < 0 else min(n, self.length - self.pos)
        if want <= 0:
            return b""
        data: bytes = self._read(self.offset + self.pos, min(want, CHUNK))
        self.pos += len(data)
        return data


class _FsWalk:
    def __init__(self, fs: Any, store: ObjectStore, budget: ArchiveBudget, prefix: bytes,
                 base: dict[str, Any], img: Any = None, fs_offset: int = 0) -> None:
        self.tsk = _tsk()
        self.fs, self.store, self.budget, self.prefix, self.base = fs, store, budget, prefix, base
        self.img, self.fs_offset = img, fs_offset
        self.fs_type = _fs_name(fs.info.ftype)
        self.block_size = int(fs.info.block_size)
        self.fs_bytes = int(fs.info.block_count) * self.block_size
        self.allocated = _Intervals()
        self.deleted: list[_Deleted] = []
        self.recovered = _Intervals()  # blocks of deleted files whose content was stored: not carved again
        self.visited: set[int] = set()
        self.entries = 0
        self.fat = self.fs_type.startswith("FAT")

    # a path inside the image, readable, and the member's name
    def _name(self, path: bytes) -> names.Name:
        return names.decode(self.prefix + path, ("cp1251", "cp866"))

    def _details(self, meta: Any, path: bytes, deleted: bool) -> dict[str, Any]:
        d = {**self.base, "file_system": self.fs_type,
             "path": "/" + names.decode(path, ("cp1251", "cp866")).text,
             "inode": int(meta.addr), "allocated": not deleted, "deleted": deleted, "times": _times(meta)}
        if self.fat:
            d["times_zone"] = "FAT stores local time without a zone: read as UTC"
        return d

    def _data_runs(self, f: Any) -> tuple[list[tuple[int, int]], bool, list[tuple[int, int]]]:
        """(data runs as (block, count), resident, every other run: metadata blocks) of a file."""
        t = self.tsk
        data_types = (int(t.TSK_FS_ATTR_TYPE_DEFAULT), int(t.TSK_FS_ATTR_TYPE_NTFS_DATA))
        skip = int(t.TSK_FS_ATTR_RUN_FLAG_SPARSE) | int(t.TSK_FS_ATTR_RUN_FLAG_FILLER)
        data: list[tuple[int, int]] = []
        other: list[tuple[int, int]] = []
        resident, seen_data = False, False
        try:
            for attr in f:
                is_data = int(attr.info.type) in data_types and not attr.info.name and not seen_data
                if is_data:
                    seen_data = True
                    resident = bool(int(attr.info.flags) & int(t.TSK_FS_ATTR_RES))
                for run in attr:
                    if int(run.flags) & skip:
                        continue
                    (data if is_data else other).append((int(run.addr), int(run.len)))
        except (OSError, RuntimeError):
            pass
        return data, resident, other

    def _store(self, f: Any, size: int, name: str, lenient: bool) -> tuple[Any, _Reader]:
        reader = _Reader(f, size, lenient)
        return _store_member(self.store, self.budget, reader, None, name), reader  # type: ignore[arg-type]

    def _count(self) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise ImageError(f"more than {MAX_ENTRIES:,} directory entries in this image: the rest is refused "
                             "as a possible loop or bomb")

    def walk(self) -> Iterator[MemberResult]:
        try:
            root = self.fs.open_dir(inode=int(self.fs.info.root_inum))
        except OSError as exc:
            raise ImageError(f"the {self.fs_type} root directory cannot be read: {_short(exc)}") from exc
        yield from self._dir(root, b"", 0, int(self.fs.info.root_inum))
        yield from self._recover()
        if self.img is not None:
            yield from self._carve()

    def _dir(self, d: Any, path: bytes, depth: int, addr: int) -> Iterator[MemberResult]:
        t = self.tsk
        self.visited.add(addr)
        dir_types = (int(t.TSK_FS_META_TYPE_DIR), int(t.TSK_FS_META_TYPE_VIRT_DIR))
        subdirs: list[tuple[Any, bytes, int]] = []
        try:
            entries = list(d)
        except OSError as exc:
            yield self._refused(path or b"/", f"directory cannot be read: {_short(exc)}")
            return
        for e in entries:
            self._count()
            nm = e.info.name
            raw: bytes = nm.name if isinstance(nm.name, bytes) else str(nm.name).encode()
            if raw in (b".", b"..") or not raw or b"/" in raw:
                continue
            sub = path + b"/" + raw if path else raw
            name_deleted = not int(nm.flags) & int(t.TSK_FS_NAME_FLAG_ALLOC)
            meta = e.info.meta
            if meta is None:
                if name_deleted and int(nm.meta_addr):
                    self.deleted.append(_Deleted(sub, int(nm.meta_addr), int(nm.meta_seq), True))
                continue
            mtype = int(meta.type)
            meta_deleted = not int(meta.flags) & int(t.TSK_FS_META_FLAG_ALLOC)
            data, _resident, other = self._data_runs(e)
            if not (name_deleted or meta_deleted):
                for run in data + other:
                    self.allocated.add(*run)
            if mtype in dir_types:
                if self.fs_type == "NTFS" and not path and raw.startswith(b"$") and mtype != dir_types[1]:
                    continue  # $Extend: the file system's own metadata
                if int(meta.addr) in self.visited:
                    if not name_deleted:
                        yield self._refused(sub, "directory loop: this directory is already being read "
                                                 f"(inode {int(meta.addr)}); not read again")
                    continue
                if depth + 1 >= MAX_DIR_DEPTH:
                    yield self._refused(sub, f"directories nested more than {MAX_DIR_DEPTH} deep: not read")
                    continue
                subdirs.append((e, sub, int(meta.addr)))
                continue
            if mtype == int(t.TSK_FS_META_TYPE_VIRT):
                continue  # TSK's views of the boot sector and FATs, not files
            if self.fs_type == "NTFS" and int(meta.addr) < 27 and raw.startswith(b"$"):
                continue  # $MFT, $LogFile, $Bitmap…: the file system's own metadata, kept in the image
            if self.fs_type == "exFAT" and not path and raw in _EXFAT_META:
                continue
            if mtype == int(t.TSK_FS_META_TYPE_LNK):
                if not name_deleted:
                    yield self._refused(sub, "symbolic link in the image: not followed")
                continue
            if mtype != int(t.TSK_FS_META_TYPE_REG):
                if not name_deleted:
                    yield self._refused(sub, "special file (device, pipe or socket) in the image: refused")
                continue
            if name_deleted or meta_deleted:
                self.deleted.append(_Deleted(sub, int(meta.addr), int(nm.meta_seq), name_deleted))
                continue
            yield self._allocated(e, meta, sub)
        for e, sub, addr in subdirs:
            try:
                child = e.as_directory()
            except OSError as exc:
                yield self._refused(sub, f"directory cannot be read: {_short(exc)}")
                continue
            yield from self._dir(child, sub, depth + 1, addr)

    def _refused(self, path: bytes, reason: str) -> MemberResult:
        self.budget.count_member()
        res = MemberResult.named(self._name(path), 0, 0)
        res.refused = reason
        return res

    def _too_big(self, size: int) -> str | None:
        if size > self.fs_bytes:
            return (f"declares {size:,} bytes, more than its {self.fs_type} file system holds "
                    f"({self.fs_bytes:,}): refused as hostile")
        return None

    def _allocated(self, f: Any, meta: Any, path: bytes) -> MemberResult:
        self.budget.count_member()
        size = int(meta.size)
        res = MemberResult.named(self._name(path), size, int(meta.mtime) * 10**9 + int(meta.mtime_nano or 0))
        res.details = self._details(meta, path, deleted=False)
        if (reason := self._too_big(size)) is not None:
            res.refused = reason
            return res
        try:
            res.stored, _ = self._store(f, size, res.name, lenient=False)
        except StoreWriteError:
            raise
        except OSError as exc:
            res.refused = f"file cannot be read from the image: {_short(exc)}"
        return res

    # -- deleted files -----------------------------------------------------------

    def _recover(self) -> Iterator[MemberResult]:
        t = self.tsk
        opened: list[tuple[_Deleted, Any, list[tuple[int, int]], bool]] = []
        for item in self.deleted:
            try:
                f = self.fs.open_meta(inode=item.meta_addr)
            except OSError:
                continue  # nothing left of it but a name
            meta = f.info.meta
            if meta is None or int(meta.type) != int(t.TSK_FS_META_TYPE_REG) or int(meta.size) <= 0:
                continue
            data, resident, _ = self._data_runs(f)
            opened.append((item, f, data, resident))
        # blocks claimed by two deleted files: at most one of them holds its own content there
        spans = sorted((s, s + n, i) for i, (_, _, data, _) in enumerate(opened) for s, n in data if n > 0)
        shared = _Intervals()
        reach, owner = -1, -1
        for s, e, i in spans:
            if s < reach and owner != i:
                shared.add(s, min(e, reach) - s)
            if e > reach:
                reach, owner = e, i
        for item, f, data, resident in opened:
            yield self._deleted(item, f, data, resident, shared)

    def _judge(self, item: _Deleted, meta: Any, data: list[tuple[int, int]], resident: bool,
               shared: _Intervals) -> tuple[str, str]:
        t = self.tsk
        size, bs = int(meta.size), self.block_size
        if int(meta.flags) & int(t.TSK_FS_META_FLAG_ALLOC):
            return "partial", (f"inode {int(meta.addr)} now belongs to another file: the content read is that "
                               "file's, not the deleted one's")
        if self.fs_type == "NTFS" and item.name_seq and int(meta.seq) not in (item.name_seq, item.name_seq + 1):
            return "partial", (f"MFT entry {int(meta.addr)} was reused since (sequence {item.name_seq} in the "
                               f"directory, {int(meta.seq)} in the entry)")
        if resident:
            return "intact", f"content resident in MFT entry {int(meta.addr)}, which is still unallocated"
        needed = -(-size // bs)
        have = sum(n for _, n in data)
        if not data:
            return "unknown", "no data runs are left in the file's metadata"
        taken = sum(self.allocated.overlap(s, n) for s, n in data)
        if self.fat:
            first = data[0][0]
            if have < needed or taken:
                return "partial", (f"first cluster (block {first}) and size {size:,}: of the {needed} contiguous "
                                   f"blocks the content needs, only {have - taken} are still unallocated "
                                   "(the others now belong to other files)")
            basis = (f"first cluster (block {first}) and size {size:,}: the {needed} contiguous blocks from it are "
                     "all unallocated (FAT keeps no chain for a deleted file: contiguity is assumed)")
        else:
            if taken:
                return "partial", (f"{taken} of the {have} blocks in its data runs now belong to other files")
            if have < needed:
                return "partial", f"its data runs cover {have} of the {needed} blocks its size needs"
            basis = f"its data runs ({len(data)} runs, {have} blocks) are all still unallocated"
        if any(shared.overlap(s, n) for s, n in data):
            return "unknown", "its blocks are also claimed by another deleted file: at most one holds its content"
        return "intact", basis

    def _deleted(self, item: _Deleted, f: Any, data: list[tuple[int, int]], resident: bool,
                 shared: _Intervals) -> MemberResult:
        self.budget.count_member()
        meta = f.info.meta
        size = int(meta.size)
        res = MemberResult.named(self._name(item.path), size,
                                 int(meta.mtime) * 10**9 + int(meta.mtime_nano or 0))
        details = self._details(meta, item.path, deleted=True)
        recovery, basis = self._judge(item, meta, data, resident, shared)
        if (reason := self._too_big(size)) is not None:
            res.refused = f"deleted file {reason}"
            res.details = details
            return res
        stored, reader = self._store(f, size, res.name, lenient=True)
        if reader.pos < size:
            recovery = "partial"
            basis = f"only {reader.pos:,} of its {size:,} bytes could be read ({reader.error}); " + basis
        if stored.size == 0:
            res.refused = f"deleted file: none of its {size:,} bytes could be read ({reader.error})"
            res.details = details
            return res
        res.stored = stored
        for s, n in data:
            self.recovered.add(s, n)
        recovery, basis = self._plays(stored, details, recovery, basis)
        details.update(recovery=recovery, recovery_basis=basis)
        res.details = details
        return res

    def _plays(self, stored: Any, details: dict[str, Any], recovery: str, basis: str) -> tuple[str, str]:
        """A recovered or carved video that does not play whole is partial, with what could be decoded."""
        with self.store.open(stored.sha256) as fh:  # still staged in its group: read where it is now
            if not carve.looks_like_video(fh.read(200)):
                return recovery, basis
            fh.seek(0)
            p = carve.playback(fh)
        details["playback"] = p
        if p["plays_whole"]:
            return recovery, f"{basis}; it plays whole: {carve.playback_summary(p)}"
        return "partial", f"it does not play whole: {carve.playback_summary(p)}; {basis}"

    # -- carving -------------------------------------------------------------------

    def _carve(self) -> Iterator[MemberResult]:
        """Video found by structure in the blocks no allocated file holds (``carve``)."""
        bs, total = self.block_size, int(self.fs.info.block_count)
        ranges, prev = [], 0
        for s, e in self.allocated._merge():
            if s > prev:
                ranges.append((prev * bs, min(s, total) * bs))
            prev = max(prev, e)
        if prev < total:
            ranges.append((prev * bs, total * bs))
        end = self.fs_bytes

        def read(offset: int, n: int) -> bytes:
            n = min(n, end - offset)
            if n <= 0:
                return b""
            data: bytes = self.img.read(self.fs_offset + offset, n)
            return data

        def skip(offset: int) -> bool:
            return self.recovered.overlap(offset // bs, 1) > 0

        for c in carve.scan(read, ranges, end, skip):
            if c.kind == "stopped":  # the scan's parsing budget is spent: say so, carve nothing more
                yield self._refused(f"[carved]/stopped-at-byte-{self.fs_offset + c.offset}".encode(),
                                    str(c.refused).replace(f"at byte {c.offset:,}",
                                                           f"at byte {self.fs_offset + c.offset:,} of the image"))
                continue
            yield self._carved(c, read)

    def _carved(self, c: carve.Carved, read: Any) -> MemberResult:
        self.budget.count_member()
        at = self.fs_offset + c.offset
        res = MemberResult.named(self._name(f"[carved]/at-byte-{at}.{c.ext}".encode()), c.length, 0)
        details: dict[str, Any] = {
            **self.base, "file_system": self.fs_type, "path": None, "inode": None, "allocated": False,
            "deleted": True, "carved": True, "offset": at, "offset_in_file_system": c.offset, "length": c.length,
            "structure": c.describe(), "times": {}}
        res.details = details
        if c.refused is not None:
            res.refused = c.refused
            return res
        bs = self.block_size
        first, last = c.offset // bs, -(-(c.offset + c.length) // bs)
        taken = self.allocated.overlap(first, last - first)
        where = f"carved from byte {at:,} of the image by structure ({c.describe()})"
        if c.truncated:
            recovery, basis = "partial", f"{where}; {c.truncated}"
        elif taken:
            recovery, basis = "partial", (
                f"{where}; {taken} of the {last - first} blocks it spans now belong to allocated files: it was "
                "fragmented or partly overwritten (carving assumes its bytes run on contiguously)")
        else:
            recovery, basis = "intact", f"{where}; all {last - first} blocks it spans are unallocated"
        reader = _SpanReader(read, c.offset, c.length)
        res.stored = _store_member(self.store, self.budget, reader, None, res.name)  # type: ignore[arg-type]
        recovery, basis = self._plays(res.stored, details, recovery, basis)
        details.update(recovery=recovery, recovery_basis=basis)
        return res


# -- entry point -----------------------------------------------------------------


def _ewf_check(handle: Any) -> tuple[dict[str, Any], str | None]:
    """Embedded MD5/SHA-1 of an E01 against its media data: (details, refusal reason or None)."""
    stored = {}
    for algo in ("MD5", "SHA1"):
        try:
            value = handle.get_hash_value(algo)
        except (OSError, KeyError):
            value = None
        if value:
            stored[algo] = value.lower()
    md5, sha1 = hashlib.md5(usedforsecurity=False), hashlib.sha1(usedforsecurity=False)
    size = int(handle.get_media_size())
    handle.seek(0)
    read = 0
    try:
        while read < size:
            chunk = handle.read(min(CHUNK, size - read))
            if not chunk:
                break
            md5.update(chunk)
            sha1.update(chunk)
            read += len(chunk)
    except OSError as exc:
        return ({"format": "e01", "hash_check": "unreadable"},
                f"E01 media data cannot be read whole (at byte {read:,}): {_short(exc)}")
    computed = {"MD5": md5.hexdigest(), "SHA1": sha1.hexdigest()}
    info: dict[str, Any] = {"format": "e01", "media_size": size, "embedded": stored,
                            "computed": {k: computed[k] for k in stored} or computed}
    if read < size:
        info["hash_check"] = "short"
        return info, f"E01 media data ends at byte {read:,} of {size:,}: the image is truncated"
    if not stored:
        info["hash_check"] = "none embedded"
        return info, None
    bad = [k for k, v in stored.items() if computed[k] != v]
    info["hash_check"] = "mismatch" if bad else "match"
    if bad:
        return info, ("E01 embedded " + " and ".join(bad) + " do not match its media data ("
                      + "; ".join(f"{k} embedded {stored[k]}, computed {computed[k]}" for k in bad)
                      + "): the image is kept, its files are read but are not what was acquired")
    return info, None


def image_members(kind: str, fh: BinaryIO, store: ObjectStore, budget: ArchiveBudget) -> Iterator[MemberResult]:
    """Every file in the image ``fh`` (stored or refused), then its deleted files, counted against ``budget``.

    Raises ImageError when the image as a whole must be refused; members yielded before stay recorded."""
    pytsk3 = _tsk()
    if kind == "e01":
        handle = _open_ewf(fh)
        base_image, refusal = _ewf_check(handle)
        if refusal is not None:
            res = MemberResult("[E01 hash check]", 0, 0, refused=refusal, leaf="[E01 hash check]")
            yield res
            if base_image.get("hash_check") in ("short", "unreadable"):
                raise ImageError(refusal)
        source: Any = handle
        size = int(handle.get_media_size())
    else:
        base_image, source, size = {"format": "raw"}, fh, _size_of(fh)
    img = _Img(source, size)
    table, parts = _file_systems(img)
    opened_any = False
    for index, offset, desc, _length, refusal in parts:
        prefix = f"p{index}/".encode()
        part = None if table is None else {"index": index, "offset": offset, "type": desc, "table": table}
        if refusal is not None:
            yield _refuse(prefix, refusal)
            continue
        try:
            fs = pytsk3.FS_Info(img, offset=offset or 0)
        except OSError as exc:
            if table is None:
                raise ImageError(f"no file system TSK can read in this image: {_short(exc)}") from exc
            yield _refuse(prefix, f"partition {index} ({desc}): no file system TSK can read ({_short(exc)})")
            continue
        fs_end = (offset or 0) + int(fs.info.block_count) * int(fs.info.block_size)
        if fs_end > size + int(fs.info.block_size):  # NTFS keeps a backup boot sector past its last block
            msg = (f"the {_fs_name(fs.info.ftype)} file system declares {fs_end - (offset or 0):,} bytes but the "
                   f"image ends at {size:,}: the image is truncated; its files were not read (the image is kept)")
            if table is None:
                raise ImageError(msg)
            yield _refuse(prefix, msg)
            continue
        opened_any = True
        yield from _FsWalk(fs, store, budget, prefix, {"image": base_image, "partition": part}, img,
                           offset or 0).walk()
    if not opened_any and table is not None and all(r is not None for *_, r in parts):
        raise ImageError("every partition of this image lies beyond its end: the image is truncated")


def _refuse(prefix: bytes, reason: str) -> MemberResult:
    name = prefix.decode().rstrip("/")
    return MemberResult(name, 0, 0, refused=reason, leaf=name)


__all__ = ["IMAGE_KINDS", "ImageError", "image_members", "sniff_image"]

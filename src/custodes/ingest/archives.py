"""Safe reading of zip, 7z and tar archives.

Members are never extracted to the filesystem: each is streamed straight into
the object store, so a hostile member name cannot write anywhere. Names are
still checked, and members with absolute paths, ``..`` components, links or
device nodes are refused with a reason that ends up in the case record.
Zip bombs are stopped by a compression-ratio limit, a total-size limit and a
member-count limit, all enforced on the bytes actually produced.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import IO, Any, BinaryIO

from custodes.store.objects import CHUNK, ObjectStore, ObjectWriter, SizeLimitExceeded, StoredObject

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
SEVENZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class ArchiveError(Exception):
    pass


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 100_000
    max_ratio: float = 200.0  # uncompressed / compressed, per member and for the whole archive
    ratio_floor_bytes: int = 8 * 1024 * 1024  # small members may compress well; only check beyond this
    max_total_bytes: int = 1 << 40  # 1 TiB produced from one archive
    max_depth: int = 4  # archives inside archives


@dataclass
class MemberResult:
    """One archive member: stored (``stored``) or refused (``refused`` holds why)."""

    name: str
    size: int
    mtime_ns: int
    stored: StoredObject | None = None
    refused: str | None = None


def sniff(fh: BinaryIO) -> str | None:
    """Archive type by content, not by file name: 'zip', '7z', 'tar' or None.

    ``fh`` is a stored object opened for reading (a plain file or a decrypting reader)."""
    fh.seek(0)
    head = fh.read(512)
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head.startswith(SEVENZIP_MAGIC):
        return "7z"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith(COMPRESSED_MAGIC):
        try:
            fh.seek(0)
            with tarfile.open(fileobj=fh, mode="r:*") as tf:
                tf.next()
            return "tar"
        except (tarfile.TarError, OSError, EOFError):
            return None
    return None


def unsafe_name_reason(name: str) -> str | None:
    if not name or "\x00" in name:
        return "empty or NUL in member name"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return f"absolute path in archive member {name!r} refused"
    if ".." in PurePosixPath(norm).parts:
        return f"path traversal ('..') in archive member {name!r} refused"
    return None


class _Budget:
    def __init__(self, limits: ArchiveLimits, archive_size: int) -> None:
        self.limits = limits
        self.archive_size = max(archive_size, 1)
        self.produced = 0
        self.members = 0

    def remaining(self) -> int:
        by_ratio = int(self.archive_size * self.limits.max_ratio) + self.limits.ratio_floor_bytes
        return max(0, min(self.limits.max_total_bytes, by_ratio) - self.produced)

    def count_member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(f"more than {self.limits.max_members} members: refused as a possible zip bomb")


def _copy_limited(src: IO[bytes], writer: ObjectWriter) -> None:
    while True:
        data = src.read(CHUNK)
        if not data:
            return
        writer.write(data)


def _member_limit(budget: _Budget, compressed: int | None) -> int:
    lim = budget.remaining()
    if compressed is not None:
        lim = min(lim, int(max(compressed, 1) * budget.limits.max_ratio) + budget.limits.ratio_floor_bytes)
    return lim


def _store_member(store: ObjectStore, budget: _Budget, src: IO[bytes], compressed: int | None,
                  name: str) -> StoredObject:
    writer = store.writer(max_bytes=_member_limit(budget, compressed))
    try:
        _copy_limited(src, writer)
        obj = writer.commit()
    except SizeLimitExceeded as exc:
        writer.abort()
        raise ArchiveError(f"member {name!r} expands beyond the safety limit ({exc}): "
                           "refused as a possible zip bomb") from exc
    except BaseException:
        writer.abort()
        raise
    budget.produced += obj.size
    return obj


def iter_members(kind: str, fh: BinaryIO, size: int, store: ObjectStore,
                 limits: ArchiveLimits) -> Iterator[MemberResult]:
    """Yield every member of the archive ``fh`` (an object in the store, opened), stored or refused.

    Raises ArchiveError when the archive as a whole must be refused (e.g. a bomb);
    members yielded before that stay stored and recorded.
    """
    budget = _Budget(limits, size)
    fh.seek(0)
    readers: dict[str, Callable[..., Iterator[MemberResult]]] = {
        "zip": _zip_members, "tar": _tar_members, "7z": _7z_members}
    yield from readers[kind](fh, store, budget)


def _zip_members(path: BinaryIO, store: ObjectStore, budget: _Budget) -> Iterator[MemberResult]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"damaged zip archive: {exc}") from exc
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            budget.count_member()
            try:
                mtime = int(datetime(*info.date_time, tzinfo=UTC).timestamp() * 1e9)
            except ValueError:
                mtime = 0
            res = MemberResult(info.filename, info.file_size, mtime)
            mode = info.external_attr >> 16
            if (reason := unsafe_name_reason(info.filename)) is not None:
                res.refused = reason
            elif stat.S_ISLNK(mode):
                res.refused = f"symbolic link in archive member {info.filename!r} refused"
            elif mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode):
                res.refused = f"special file in archive member {info.filename!r} refused"
            elif info.flag_bits & 0x1:
                res.refused = f"member {info.filename!r} is encrypted; a password is needed"
            elif (info.file_size > budget.limits.ratio_floor_bytes
                  and info.file_size > max(info.compress_size, 1) * budget.limits.max_ratio):
                raise ArchiveError(f"member {info.filename!r} declares {info.file_size} bytes from "
                                   f"{info.compress_size} compressed: refused as a zip bomb")
            else:
                try:
                    with zf.open(info) as src:
                        res.stored = _store_member(store, budget, src, info.compress_size, info.filename)
                except ArchiveError:
                    raise
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                    res.refused = f"member {info.filename!r} cannot be read: {exc}"
            yield res


def _tar_members(path: BinaryIO, store: ObjectStore, budget: _Budget) -> Iterator[MemberResult]:
    try:
        tf = tarfile.open(fileobj=path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"damaged tar archive: {exc}") from exc
    with tf:
        try:
            for m in tf:
                if m.isdir():
                    continue
                budget.count_member()
                res = MemberResult(m.name, m.size, int(m.mtime * 1e9))
                if (reason := unsafe_name_reason(m.name)) is not None:
                    res.refused = reason
                elif m.issym() or m.islnk():
                    res.refused = f"link in archive member {m.name!r} -> {m.linkname!r} refused"
                elif not m.isreg():
                    res.refused = f"special file in archive member {m.name!r} refused"
                else:
                    src = tf.extractfile(m)
                    if src is None:
                        res.refused = f"member {m.name!r} cannot be read"
                    else:
                        with src:
                            res.stored = _store_member(store, budget, src, None, m.name)
                yield res
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(f"tar archive is damaged or truncated: {exc}") from exc


class _MemberSink:
    """py7zr writer that streams one member into an ObjectWriter."""

    def __init__(self, writer: ObjectWriter) -> None:
        self.writer = writer
        self.stored: StoredObject | None = None

    def write(self, s: bytes | bytearray) -> int:
        return self.writer.write(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.writer.size

    def close(self) -> None:
        # py7zr calls this when the member is complete: commit now so that only
        # one temporary file is open at a time, whatever the member count.
        if self.stored is None:
            self.stored = self.writer.commit()


def _7z_members(path: BinaryIO, store: ObjectStore, budget: _Budget) -> Iterator[MemberResult]:
    import py7zr
    from py7zr.io import WriterFactory

    try:
        szf = py7zr.SevenZipFile(path, mode="r")
    except Exception as exc:  # py7zr raises a variety of types for damaged input
        if "password" in str(exc).lower():
            raise ArchiveError("7z archive is encrypted; a password is needed") from exc
        raise ArchiveError(f"damaged 7z archive: {exc}") from exc
    with szf:
        if szf.needs_password():
            raise ArchiveError("7z archive is encrypted; a password is needed")
        infos = szf.list()
        safe: dict[str, Any] = {}
        for info in infos:
            if info.is_directory:
                continue
            budget.count_member()
            mtime = int(info.creationtime.timestamp() * 1e9) if info.creationtime else 0
            res = MemberResult(info.filename, info.uncompressed or 0, mtime)
            if (reason := unsafe_name_reason(info.filename)) is not None:
                res.refused = reason
            elif info.is_symlink:
                res.refused = f"symbolic link in archive member {info.filename!r} refused"
            elif not info.is_file:
                res.refused = f"special file in archive member {info.filename!r} refused"
            if res.refused:
                yield res
            else:
                safe[info.filename] = res
        if not safe:
            return
        if sum(r.size for r in safe.values()) > budget.remaining():
            raise ArchiveError("7z archive declares more data than the safety limit: refused as a zip bomb")

        sinks: dict[str, _MemberSink] = {}

        class Factory(WriterFactory):
            def create(self, filename: str) -> Any:
                if filename not in safe:
                    raise ArchiveError(f"7z asked to write unexpected member {filename!r}")
                sink = _MemberSink(store.writer(max_bytes=budget.remaining()))
                sinks[filename] = sink
                return sink

        try:
            szf.extract(targets=list(safe), factory=Factory())
        except SizeLimitExceeded as exc:
            for s in sinks.values():
                if s.stored is None:
                    s.writer.abort()
            raise ArchiveError(f"7z member expands beyond the safety limit: refused as a zip bomb ({exc})") from exc
        except Exception as exc:
            for s in sinks.values():
                if s.stored is None:
                    s.writer.abort()
            raise ArchiveError(f"7z archive cannot be extracted: {exc}") from exc
        for name, res in safe.items():
            sink = sinks.get(name)
            if sink is None:
                res.refused = f"member {name!r} was not produced by the 7z decoder"
            else:
                res.stored = sink.stored or sink.writer.commit()
                budget.produced += res.stored.size
            yield res

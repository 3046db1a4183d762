"""Safe reading of zip, 7z and tar archives.

Members are never extracted to the filesystem: each is streamed straight into
the object store, so a hostile member name cannot write anywhere. Names are
still checked, and members with absolute paths, ``..`` components, links or
device nodes are refused with a reason that ends up in the case record.
Zip bombs are stopped by a compression-ratio limit, a total-size limit and a
member-count limit, all enforced on the bytes actually produced, and shared by
every nesting level of one source (an archive of archives gets no fresh budget
per level). Names are decoded as ``names`` describes; their bytes are kept when
the readable name is not simply their UTF-8.
"""

from __future__ import annotations

import bisect
import stat
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import IO, Any, BinaryIO

from custodes.ingest import names
from custodes.ingest.names import Name
from custodes.store.objects import CHUNK, ObjectStore, ObjectWriter, SizeLimitExceeded, StoredObject, StoreWriteError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
SEVENZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


class ArchiveError(Exception):
    pass


class SourceBudgetSpent(ArchiveError):
    """The archives of one source reached the limits of its ``ArchiveBudget``: nothing more is unpacked."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 100_000
    max_ratio: float = 200.0  # uncompressed / compressed, per member and for the whole archive
    ratio_floor_bytes: int = 8 * 1024 * 1024  # small members may compress well; only check beyond this
    max_total_bytes: int = 1 << 40  # 1 TiB produced from one source, all nesting levels together
    max_depth: int = 4  # archives inside archives


@dataclass
class MemberResult:
    """One archive member: stored (``stored``) or refused (``refused`` holds why).

    ``name`` is readable; ``raw_name`` holds the name's bytes where they are not its UTF-8. ``occurrence``
    counts members of the same name in one archive (1 for the first): each is kept, none overwrites another.
    """

    name: str
    size: int
    mtime_ns: int
    stored: StoredObject | None = None
    refused: str | None = None
    raw_name: bytes | None = None
    occurrence: int = 1
    leaf: str = ""  # the last component of the name, readable
    details: dict[str, Any] | None = None  # added to the member's signed ingest event (disk images: ``images``)

    @classmethod
    def named(cls, name: Name, size: int, mtime_ns: int) -> MemberResult:
        return cls(name.text, size, mtime_ns, raw_name=name.raw, leaf=name.leaf)


def sniff(fh: BinaryIO) -> str | None:
    """Archive type by content, not by file name: 'zip', '7z', 'tar', a disk image ('disk-image', 'e01') or None.

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
    from custodes.ingest.images import sniff_image  # disk and card images: 'disk-image' or 'e01'

    return sniff_image(fh)


def unsafe_name_reason(name: str | Name) -> str | None:
    shown, path = (name.text, name.structure) if isinstance(name, Name) else (name, name)
    if not path or "\x00" in path:
        return "empty or NUL in member name"
    norm = path.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return f"absolute path in archive member {shown!r} refused"
    if ".." in PurePosixPath(norm).parts:
        return f"path traversal ('..') in archive member {shown!r} refused"
    return None


class ArchiveBudget:
    """What one source may produce from its archives, all nesting levels together: a bomb of nested
    archives, each harmless on its own, meets the same limits as one big archive."""

    def __init__(self, limits: ArchiveLimits, source_size: int) -> None:
        self.limits = limits
        self.total = min(limits.max_total_bytes, int(max(source_size, 1) * limits.max_ratio)
                         + limits.ratio_floor_bytes)
        self.produced = 0
        self.members = 0

    def remaining(self) -> int:
        return max(0, self.total - self.produced)

    def exceeded(self) -> SourceBudgetSpent:
        return SourceBudgetSpent(f"the archives in this source expand to more than {self.total:,} bytes (all nesting "
                            "levels together): the rest is refused as a possible zip bomb")

    def count_member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise SourceBudgetSpent(f"more than {self.limits.max_members:,} members in the archives of this source "
                                    "(all nesting levels together): the rest is refused as a possible zip bomb")


def _copy_limited(src: IO[bytes], writer: ObjectWriter) -> None:
    while True:
        data = src.read(CHUNK)
        if not data:
            return
        writer.write(data)


def _store_member(store: ObjectStore, budget: ArchiveBudget, src: IO[bytes], compressed: int | None,
                  name: str) -> StoredObject:
    remaining = budget.remaining()
    if remaining == 0:
        raise budget.exceeded()
    limit = remaining
    if compressed is not None:
        limit = min(limit, int(max(compressed, 1) * budget.limits.max_ratio) + budget.limits.ratio_floor_bytes)
    writer = store.writer(max_bytes=limit)
    try:
        _copy_limited(src, writer)
        obj = writer.commit()
    except SizeLimitExceeded as exc:
        writer.abort()
        if limit == remaining:
            raise budget.exceeded() from exc
        raise ArchiveError(f"member {name!r} expands beyond the safety limit ({exc}): "
                           "refused as a possible zip bomb") from exc
    except BaseException:
        writer.abort()
        raise
    budget.produced += obj.size
    return obj


def iter_members(kind: str, fh: BinaryIO, store: ObjectStore, budget: ArchiveBudget) -> Iterator[MemberResult]:
    """Yield every member of the archive ``fh`` (an object in the store, opened), stored or refused, counted
    against ``budget`` (the one of the source this archive came from, shared by all its nesting levels).

    Raises ArchiveError when the archive as a whole must be refused (e.g. a bomb);
    members yielded before that stay stored and recorded.
    """
    fh.seek(0)
    readers: dict[str, Callable[..., Iterator[MemberResult]]] = {
        "zip": _zip_members, "tar": _tar_members, "7z": _7z_members}
    from custodes.ingest import images

    members = (images.image_members(kind, fh, store, budget) if kind in images.IMAGE_KINDS
               else readers[kind](fh, store, budget))
    seen: dict[str, int] = {}
    for m in members:
        m.occurrence = seen[m.name] = seen.get(m.name, 0) + 1
        # the kill -9 point ``ingest.member_stored`` is in the pipeline: members are named when their group is
        yield m


class _UTF8FlagCleared:
    """A zip, read with the UTF-8 flag (bit 11) of every name cleared.

    zipfile refuses the whole archive when one name flagged as UTF-8 is not (archivers that set the flag
    over cp866 or cp1251 bytes); without the flag it reads each name as cp437, which gives the bytes back
    exactly, and the names are decoded here. ``flagged``: indexes of the members that carried the flag.
    """

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.patches: dict[int, int] = {}  # file offset -> the byte read there instead
        self.flagged: set[int] = set()
        endrec = zipfile._EndRecData(fh)  # type: ignore[attr-defined]  # zipfile's own reading of the end record
        if not endrec:
            raise zipfile.BadZipFile("no end of central directory")
        size_cd = endrec[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
        start = endrec[zipfile._ECD_LOCATION] - size_cd  # type: ignore[attr-defined]
        if endrec[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
            start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator  # type: ignore[attr-defined]
        fh.seek(start)
        cd = fh.read(size_cd)
        pos = index = 0
        while pos + 46 <= len(cd) and cd[pos:pos + 4] == b"PK\x01\x02":
            if cd[pos + 9] & 0x08:  # the flag's byte in a central directory entry
                self.patches[start + pos + 9] = cd[pos + 9] & ~0x08
                self.flagged.add(index)
            name_len, extra_len, comment_len = struct.unpack_from("<HHH", cd, pos + 28)
            pos += 46 + name_len + extra_len + comment_len
            index += 1
        self._offsets = sorted(self.patches)

    def clear_local_headers(self, infos: list[zipfile.ZipInfo]) -> None:
        """zipfile checks each member's local header against its directory entry: clear the flag there too."""
        for index in self.flagged:
            at = infos[index].header_offset + 7  # the flag's byte in a local header
            self.fh.seek(at)
            byte = self.fh.read(1)
            if byte:
                self.patches[at] = byte[0] & ~0x08
        self._offsets = sorted(self.patches)

    def read(self, n: int = -1) -> bytes:
        at = self.fh.tell()
        data = self.fh.read(n)
        lo, hi = bisect.bisect_left(self._offsets, at), bisect.bisect_left(self._offsets, at + len(data))
        if lo == hi:
            return data
        patched = bytearray(data)
        for off in self._offsets[lo:hi]:
            patched[off - at] = self.patches[off]
        return bytes(patched)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()

    def seekable(self) -> bool:
        return True


def _open_zip(fh: BinaryIO) -> tuple[zipfile.ZipFile, set[int]]:
    """The zip, and the indexes of members whose UTF-8 flag had to be cleared to read it at all."""
    try:
        return zipfile.ZipFile(fh), set()
    except UnicodeDecodeError:
        pass
    fh.seek(0)
    view = _UTF8FlagCleared(fh)
    zf = zipfile.ZipFile(view)  # type: ignore[arg-type]  # file-like: read, seek, tell
    view.clear_local_headers(zf.infolist())
    return zf, view.flagged


def _zip_name(info: zipfile.ZipInfo, flag_cleared: bool) -> Name:
    """Without the UTF-8 flag a Russian Windows archiver writes names in cp866 (cp1251 for some tools):
    zipfile reads them as cp437, which gives the bytes back exactly."""
    utf8 = bool(info.flag_bits & 0x800)
    raw = info.orig_filename.encode("utf-8" if utf8 else "cp437")
    if utf8 or flag_cleared:
        return names.decode(raw, ("cp866", "cp1251"))
    return names.decode(raw, ("cp866", "cp1251"), fallback="cp437")


def _zip_members(path: BinaryIO, store: ObjectStore, budget: ArchiveBudget) -> Iterator[MemberResult]:
    try:
        zf, flag_cleared = _open_zip(path)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"damaged zip archive: {exc}") from exc
    with zf:
        for index, info in enumerate(zf.infolist()):
            if info.is_dir():
                continue
            budget.count_member()
            try:
                mtime = int(datetime(*info.date_time, tzinfo=UTC).timestamp() * 1e9)
            except ValueError:
                mtime = 0
            decoded = _zip_name(info, index in flag_cleared)
            res = MemberResult.named(decoded, info.file_size, mtime)
            name = res.name
            mode = info.external_attr >> 16
            if (reason := unsafe_name_reason(decoded)) is not None:
                res.refused = reason
            elif stat.S_ISLNK(mode):
                res.refused = f"symbolic link in archive member {name!r} refused"
            elif mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode):
                res.refused = f"special file in archive member {name!r} refused"
            elif info.flag_bits & 0x1:
                res.refused = f"member {name!r} is encrypted; a password is needed"
            elif (info.file_size > budget.limits.ratio_floor_bytes
                  and info.file_size > max(info.compress_size, 1) * budget.limits.max_ratio):
                raise ArchiveError(f"member {name!r} declares {info.file_size} bytes from "
                                   f"{info.compress_size} compressed: refused as a zip bomb")
            else:
                try:
                    with zf.open(info) as src:
                        res.stored = _store_member(store, budget, src, info.compress_size, name)
                except ArchiveError:
                    raise
                except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
                        UnicodeDecodeError) as exc:
                    res.refused = f"member {name!r} cannot be read: {exc}"
            yield res


def _tar_members(path: BinaryIO, store: ObjectStore, budget: ArchiveBudget) -> Iterator[MemberResult]:
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
                # tarfile hands bytes that are not UTF-8 over as surrogates
                decoded = names.from_surrogates(m.name)
                res = MemberResult.named(decoded, m.size, int(m.mtime * 1e9))
                name = res.name
                if (reason := unsafe_name_reason(decoded)) is not None:
                    res.refused = reason
                elif m.issym() or m.islnk():
                    target = names.from_surrogates(m.linkname).text
                    res.refused = f"link in archive member {name!r} -> {target!r} refused"
                elif not m.isreg():
                    res.refused = f"special file in archive member {name!r} refused"
                else:
                    src = tf.extractfile(m)
                    if src is None:
                        res.refused = f"member {name!r} cannot be read"
                    else:
                        with src:
                            res.stored = _store_member(store, budget, src, None, name)
                yield res
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(f"tar archive is damaged or truncated: {exc}") from exc


class _MemberSink:
    """py7zr writer that streams one member into an ObjectWriter; with no writer, into nothing (what py7zr
    decodes along with a wanted member of the same name)."""

    def __init__(self, writer: ObjectWriter | None, budget: ArchiveBudget) -> None:
        self.writer = writer
        self.budget = budget
        self.stored: StoredObject | None = None

    def write(self, s: bytes | bytearray) -> int:
        return len(s) if self.writer is None else self.writer.write(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return 0 if self.writer is None else self.writer.size

    def close(self) -> None:
        # py7zr calls this only for a member decoded whole and CRC-checked: commit now, so that only one
        # temporary file is open at a time whatever the member count, and the next member's limit is known.
        if self.writer is not None and self.stored is None:
            self.stored = self.writer.commit()
            self.budget.produced += self.stored.size

    def abort(self) -> None:
        if self.writer is not None and self.stored is None:
            self.writer.abort()


def _7z_output_names(infos: list[Any], targets: set[str]) -> list[str | None]:
    """The name py7zr hands the writer factory for each member (None: not extracted): its own name for the
    first of a name, ``name_0``, ``name_1``… for the next ones of the same name (py7zr's ``_extract``)."""
    from py7zr.helpers import get_sanitized_output_path

    seen: dict[str, int] = {}
    out: list[str | None] = []
    for info in infos:
        if info.filename not in targets:
            out.append(None)
            continue
        if info.filename not in seen:
            name, seen[info.filename] = info.filename, 0
        else:
            name = f"{info.filename}_{seen[info.filename]}"
            seen[info.filename] += 1
        out.append(get_sanitized_output_path(name, None).as_posix())
    return out


def _7z_members(path: BinaryIO, store: ObjectStore, budget: ArchiveBudget) -> Iterator[MemberResult]:
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
        safe: dict[int, MemberResult] = {}  # by position in the archive: several members may share a name
        for index, info in enumerate(infos):
            if info.is_directory:
                continue
            budget.count_member()
            mtime = int(info.creationtime.timestamp() * 1e9) if info.creationtime else 0
            decoded = names.without_lone_surrogates(info.filename)  # 7z names are UTF-16
            res = MemberResult.named(decoded, info.uncompressed or 0, mtime)
            if (reason := unsafe_name_reason(decoded)) is not None:
                res.refused = reason
            elif info.is_symlink:
                res.refused = f"symbolic link in archive member {res.name!r} refused"
            elif not info.is_file:
                res.refused = f"special file in archive member {res.name!r} refused"
            if res.refused:
                yield res
            else:
                safe[index] = res
        if not safe:
            return
        if sum(r.size for r in safe.values()) > budget.remaining():
            raise budget.exceeded()
        targets = {infos[i].filename for i in safe}
        try:
            by_output: dict[str, list[int]] = {}
            for index, name in enumerate(_7z_output_names(infos, targets)):
                if name is not None:
                    by_output.setdefault(name, []).append(index)
        except Exception as exc:  # a name py7zr will not extract (it would refuse the archive the same way)
            raise ArchiveError(f"7z archive cannot be extracted: {exc}") from exc
        sinks: dict[int, _MemberSink] = {}

        class Factory(WriterFactory):
            def create(self, filename: str) -> Any:
                if not by_output.get(filename):
                    raise ArchiveError(f"7z asked to write unexpected member {filename!r}")
                index = by_output[filename].pop(0)
                # a refused member that shares a wanted one's name is decoded too: into nothing
                writer = store.writer(max_bytes=budget.remaining()) if index in safe else None
                sinks[index] = _MemberSink(writer, budget)
                return sinks[index]

        failure: ArchiveError | None = None
        try:
            szf.extract(targets=sorted(targets), factory=Factory())
        except StoreWriteError:
            for unfinished in sinks.values():
                unfinished.abort()
            raise  # the case's disk, not the archive
        except SizeLimitExceeded as exc:
            failure = budget.exceeded() if budget.remaining() == 0 else ArchiveError(
                f"7z member expands beyond the safety limit: refused as a possible zip bomb ({exc})")
        except Exception as exc:
            failure = ArchiveError(f"7z archive cannot be extracted: {exc}")
        for unfinished in sinks.values():
            unfinished.abort()
        # members decoded whole before a failure stay stored: they are recorded, then the archive is refused
        for index, res in safe.items():
            sink = sinks.get(index)
            if sink is not None and sink.stored is not None:
                res.stored = sink.stored
            elif failure is not None:
                continue
            else:
                res.refused = f"member {res.name!r} was not produced by the 7z decoder"
            yield res
        if failure is not None:
            raise failure

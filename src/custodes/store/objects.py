"""Write-once, content-addressed object store.

Every original file is stored exactly once under ``objects/ab/cdef…`` where the
path is its SHA-256. Bytes are hashed *while* they are copied (one read pass),
written to a temporary file inside the store, fsynced, and only then renamed
into place atomically. A crash at any moment therefore leaves either no object
or a complete one, never a half-written object under a real name. Stored
objects are made read-only; nothing in Custodes ever opens them for writing.

Many small files (``ObjectStore.group``): one fsync and one directory fsync per
file cost far more than hashing them. Inside a group an object is written to
its temporary and closed, not fsynced and not yet named; ``sync_group`` makes
every temporary of the group durable at once (one ``syncfs`` on Linux, else an
fsync of each), only then renames them into place, and makes the renames
durable (``syncfs`` again, else an fsync of each directory). The rule above
holds: no object is ever named before its bytes are on disk, and a kill or a
power cut before ``sync_group`` leaves only nameless temporaries. The caller
commits rows naming these objects only after ``sync_group`` has returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from custodes.store.crypto import CaseKeys, CryptoError, DecryptingReader, EncryptingFile, plaintext_size

CHUNK = 4 * 1024 * 1024
HEX_DIGITS = set("0123456789abcdef")


class ObjectStoreError(Exception):
    """Raised for any failure of the object store; the message is shown to users."""


class SizeLimitExceeded(ObjectStoreError):
    pass


class StoreWriteError(ObjectStoreError):
    """The store could not be written (a full, read-only or failing disk): the run stops, nothing is refused.

    Deliberately not an ``OSError``, so that no handler of a damaged *source* takes it for one; the
    ``OSError`` it wraps (its cause) tells ``custodes.errors`` what to say."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"cannot write to the object store: {exc}")
        self.errno = exc.errno


class SourceReadError(OSError):
    """The source could not be read: that file is refused with the reason, the run goes on."""


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    size: int
    path: Path
    created: bool  # False when the object was already present (exact duplicate)


def _fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder: the names in it are durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(path: Path) -> bool:
    """Flush every dirty file of the file system holding ``path``; False where ``syncfs`` is not available.

    On Linux 5.8 and later ``syncfs`` reports a failed writeback as an error, as ``fsync`` does (PostgreSQL's
    ``recovery_init_sync_method=syncfs`` relies on the same)."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    import ctypes
    import ctypes.util

    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            _LIBC.syncfs.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            _LIBC = False
    if not _LIBC:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        if _LIBC.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
    return True


_LIBC: Any = None



@dataclass
class _Pending:
    """Objects written in this group: closed temporaries, not yet durable, not yet named."""

    tmp: dict[str, tuple[Path, int]] = field(default_factory=dict)  # sha256 -> (temporary, size)
    bytes: int = 0


def _chunk_delay() -> float:
    # Fault-injection point used by the kill-and-resume tests: slows every chunk
    # so a test can SIGKILL the process while an object is half written.
    value = os.environ.get("CUSTODES_FAULT_CHUNK_DELAY")
    return float(value) if value else 0.0


class ObjectWriter:
    """A temporary object being written; hashes everything written to it.

    Use ``write`` for each chunk, then ``commit`` (atomic rename) or ``abort``.
    """

    def __init__(self, store: ObjectStore, max_bytes: int | None = None) -> None:
        self._store = store
        self._max = max_bytes
        self._hash = hashlib.sha256()
        self.size = 0
        # named by the writing process, so a cleanup by another process never takes a live temporary
        self.tmp_path = store.tmp_dir / f"{temp_prefix()}{uuid.uuid4().hex}.part"
        try:
            raw = open(self.tmp_path, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise StoreWriteError(exc) from exc
        self._fh: Any = EncryptingFile(raw, store.keys) if store.keys else raw
        self._delay = _chunk_delay()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._fh is None:
            raise ObjectStoreError("write after commit/abort")
        n = len(data)
        if self._max is not None and self.size + n > self._max:
            raise SizeLimitExceeded(f"more than {self._max} bytes")
        self._hash.update(data)
        try:
            self._fh.write(data)
        except OSError as exc:
            raise StoreWriteError(exc) from exc
        self.size += n
        if self._delay:
            import time

            time.sleep(self._delay)
        return n

    def commit(self) -> StoredObject:
        if self._fh is None:
            raise ObjectStoreError("commit after commit/abort")
        digest = self._hash.hexdigest()
        try:
            if isinstance(self._fh, EncryptingFile):
                self._fh.finish(digest)
            self._fh.flush()
            if self._store._group is not None:
                self._fh.close()
                self._fh = None
                return self._store._stage(self.tmp_path, digest, self.size)
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            return self._store.install(self.tmp_path, digest, self.size)
        except StoreWriteError:
            raise
        except OSError as exc:
            raise StoreWriteError(exc) from exc

    def abort(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
                self._fh.close()
            self._fh = None
        self.tmp_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class EncryptedRef:
    """Where an encrypted object is and how to read it; picklable, for worker processes."""

    path: str
    keys: CaseKeys

    @property
    def name(self) -> str:
        return Path(self.path).name


class ObjectStore:
    """Objects by SHA-256. With ``keys`` (an encrypted case) files are ciphertext named by an HMAC."""

    def __init__(self, root: Path, keys: CaseKeys | None = None) -> None:
        self.root = root
        self.tmp_dir = root / ".tmp"
        self.keys = keys
        self._group: _Pending | None = None

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(exist_ok=True)

    @staticmethod
    def check_digest(sha256: str) -> None:
        if len(sha256) != 64 or not set(sha256) <= HEX_DIGITS:
            raise ObjectStoreError(f"not a SHA-256 digest: {sha256!r}")

    def path_for(self, sha256: str) -> Path:
        self.check_digest(sha256)
        name = self.keys.object_name(sha256) if self.keys else sha256
        return self.root / name[:2] / name[2:]

    def install(self, tmp_path: Path, digest: str, size: int) -> StoredObject:
        """Give a complete, fsynced temporary its name (atomic rename), unless the object exists."""
        final = self.path_for(digest)
        if final.exists():
            # Exact duplicate: the stored copy is authoritative and never replaced.
            tmp_path.unlink()
            return StoredObject(digest, size, final, created=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(tmp_path, final)
        _fsync_path(final.parent)
        return StoredObject(digest, size, final, created=True)

    # -- groups of objects made durable together (see the module docstring) ----------------------------

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Objects written inside are staged; ``sync_group`` names them. Temporaries still staged when the
        block ends (an error before ``sync_group``) are removed: none of them was ever named."""
        if self._group is not None:
            raise ObjectStoreError("object groups do not nest")
        self._group = _Pending()
        try:
            yield
        finally:
            pending, self._group = self._group, None
            for tmp, _ in pending.tmp.values():
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)

    def pending_bytes(self) -> int:
        return self._group.bytes if self._group is not None else 0

    def pending_count(self) -> int:
        return len(self._group.tmp) if self._group is not None else 0

    def _stage(self, tmp_path: Path, digest: str, size: int) -> StoredObject:
        assert self._group is not None
        final = self.path_for(digest)
        staged = self._group.tmp.get(digest)
        if staged is not None or final.exists():
            # Exact duplicate (stored before, or earlier in this group): the first copy is the one kept.
            tmp_path.unlink()
            return StoredObject(digest, size, staged[0] if staged else final, created=False)
        os.chmod(tmp_path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        self._group.tmp[digest] = (tmp_path, size)
        self._group.bytes += size
        return StoredObject(digest, size, tmp_path, created=True)

    def sync_group(self) -> list[str]:
        """Make the group's objects durable, then name them, then make the names durable; the digests named.

        Raises StoreWriteError (nothing of the group is named then, unless the failure came after the
        renames, when the named objects are complete: their bytes were durable before)."""
        if self._group is None or not self._group.tmp:
            return []
        todo = list(self._group.tmp.items())
        try:
            if len(todo) == 1 or not _syncfs(self.tmp_dir):
                for _, (tmp, _size) in todo:
                    _fsync_path(tmp)
            dirs: set[Path] = set()
            made_dirs = False
            for digest, (tmp, _size) in todo:
                final = self.path_for(digest)
                if final.exists():
                    tmp.unlink()
                else:
                    if not final.parent.is_dir():
                        final.parent.mkdir(parents=True, exist_ok=True)
                        made_dirs = True
                    os.replace(tmp, final)
                    dirs.add(final.parent)
                del self._group.tmp[digest]
                self._group.bytes -= _size
            if len(dirs) > 1 and _syncfs(self.root):
                return [d for d, _ in todo]
            for d in sorted(dirs):
                _fsync_path(d)
            if made_dirs:
                _fsync_path(self.root)
        except OSError as exc:
            raise StoreWriteError(exc) from exc
        return [d for d, _ in todo]

    def _current(self, sha256: str) -> Path:
        """Where the object's bytes are now: its temporary while it is staged in a group, else its name."""
        if self._group is not None and sha256 in self._group.tmp:
            return self._group.tmp[sha256][0]
        return self.path_for(sha256)

    def stored_bytes(self, name: str) -> int:
        """Bytes the store holds for the file called ``name`` (ciphertext, when encrypted)."""
        return (self.root / name[:2] / name[2:]).stat().st_size

    def describe(self, name: str) -> str:
        return str(self.root / name[:2] / name[2:])

    def protection_warning(self, name: str) -> tuple[str, str] | None:
        """Why the stored file could be changed in place, if it could."""
        if (self.root / name[:2] / name[2:]).stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            return "object.writable", "object file is writable; expected read-only"
        return None

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("??/*") if p.is_file())

    def media_ref(self, sha256: str) -> Any:
        """What the media readers open: a path, or (encrypted case) a decrypting reference."""
        path = str(self.path_for(sha256))
        return EncryptedRef(path, self.keys) if self.keys else path

    def size(self, sha256: str) -> int:
        """Size of the object's content (not of its ciphertext)."""
        st = self.path_for(sha256).stat().st_size
        return plaintext_size(st) if self.keys else st

    def claimed_digest(self, name: str) -> str | None:
        """The SHA-256 an on-disk file claims to hold: its name, or (encrypted) its sealed header.

        None when an encrypted file's header does not authenticate or does not match its name.
        """
        if not self.keys:
            return name
        try:
            with DecryptingReader(self.root / name[:2] / name[2:], self.keys) as r:
                sha = r.sha256
        except (CryptoError, OSError):
            return None
        return sha if self.keys.object_name(sha) == name else None

    def exists(self, sha256: str) -> bool:
        return self._current(sha256).is_file()

    def writer(self, max_bytes: int | None = None) -> ObjectWriter:
        return ObjectWriter(self, max_bytes=max_bytes)

    def put_stream(self, src: BinaryIO, max_bytes: int | None = None) -> StoredObject:
        """Copy ``src`` into the store, hashing on the way: one read of the source.

        Writing runs in a second thread, overlapped with reading and hashing of
        the next chunk (both release the GIL), so a copy costs about as much
        as hashing alone on a machine with two cores.
        """
        w = self.writer(max_bytes=max_bytes)
        readinto = getattr(src, "readinto", None)
        if readinto is None or w._delay:
            return self._put_simple(src, w)
        free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(3):
            free.put(bytearray(CHUNK))
        todo: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        failure: list[BaseException] = []

        def write_loop() -> None:
            assert w._fh is not None
            while (item := todo.get()) is not None:
                buf, n = item
                try:
                    if not failure:
                        w._fh.write(memoryview(buf)[:n])
                except BaseException as exc:  # disk full, I/O error: reported by the reader
                    failure.append(exc)
                free.put(buf)

        writer_thread = threading.Thread(target=write_loop, name="object-writer", daemon=True)
        writer_thread.start()
        try:
            while not failure:
                buf = free.get()
                try:
                    n = readinto(buf)
                except OSError as exc:
                    raise SourceReadError(exc.errno, exc.strerror or str(exc), exc.filename) from exc
                if not n:
                    free.put(buf)
                    break
                if w._max is not None and w.size + n > w._max:
                    raise SizeLimitExceeded(f"more than {w._max} bytes")
                w._hash.update(memoryview(buf)[:n])
                w.size += n
                todo.put((buf, n))
        except BaseException:
            todo.put(None)
            writer_thread.join()
            w.abort()
            raise
        todo.put(None)
        writer_thread.join()
        if failure:
            w.abort()
            if isinstance(failure[0], OSError):
                raise StoreWriteError(failure[0]) from failure[0]
            raise ObjectStoreError(f"cannot write to the object store: {failure[0]}")
        try:
            return w.commit()
        except BaseException:
            w.abort()
            raise

    def _put_simple(self, src: BinaryIO, w: ObjectWriter) -> StoredObject:
        try:
            while True:
                try:
                    data = src.read(CHUNK)
                except OSError as exc:
                    raise SourceReadError(exc.errno, exc.strerror or str(exc), exc.filename) from exc
                if not data:
                    break
                w.write(data)
            return w.commit()
        except BaseException:
            w.abort()
            raise

    def put_file(self, path: Path, max_bytes: int | None = None) -> StoredObject:
        try:
            fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
        except OSError as exc:
            raise SourceReadError(exc.errno, exc.strerror or str(exc), exc.filename) from exc
        with fh:
            with contextlib.suppress(OSError, AttributeError):
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            if os.fstat(fh.fileno()).st_size < CHUNK:
                # a small file: one read; a writer thread and its buffers would cost more than they overlap
                # (a file that grows while it is read is still read to its end, chunk by chunk)
                return self._put_simple(fh, self.writer(max_bytes=max_bytes))
            return self.put_stream(fh, max_bytes=max_bytes)

    def open(self, sha256: str) -> BinaryIO:
        path = self._current(sha256)
        if not path.is_file():
            raise ObjectStoreError(f"object {sha256} is missing from the store")
        if self.keys:
            return io.BufferedReader(DecryptingReader(path, self.keys), buffer_size=CHUNK)  # type: ignore[return-value]
        return open(path, "rb")  # noqa: SIM115 - caller closes

    def rehash(self, sha256: str) -> str:
        """SHA-256 of the stored content (encrypted: of the plaintext, every chunk authenticated)."""
        h = hashlib.sha256()
        opener = (lambda: DecryptingReader(self.path_for(sha256), self.keys)) if self.keys else \
            (lambda: open(self.path_for(sha256), "rb", buffering=0))
        with opener() as fh:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                h.update(view[:n])
        return h.hexdigest()

    def iter_digests(self) -> Iterator[str]:
        """Every object file in the store, named by its path (not verified)."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if sub.name == ".tmp" or not sub.is_dir():
                continue
            for f in sorted(sub.iterdir()):
                yield sub.name + f.name

    def clean_partial(self) -> list[Path]:
        """Remove temporaries left by killed processes; they never had a name.

        Temporaries (files, and the scratch folders of a redaction) are named by the host and process that
        write them (``temp_prefix``); those of a process still running here are left alone, and those of
        another host sharing the case folder only once a day old. Unnamed ones predate that naming. A ``.tmp``
        that is a link is refused: following it would delete whatever it points to."""
        removed: list[Path] = []
        self.check_tmp_dir()
        if not self.tmp_dir.is_dir():
            return removed
        for p in self.tmp_dir.iterdir():
            if temp_in_use(p):
                continue
            if p.is_dir() and not p.is_symlink():
                import shutil

                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        return removed

    def check_tmp_dir(self) -> None:
        if self.tmp_dir.is_symlink() or (self.tmp_dir.exists() and not self.tmp_dir.is_dir()):
            raise ObjectStoreError(f"{self.tmp_dir} is not a plain folder (a link or a file): remove it; Custodes "
                                   "keeps its temporaries only in a real folder inside the case")


def _host_tag() -> str:
    import socket

    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return hashlib.sha256(f"{socket.gethostname()}/{boot}".encode()).hexdigest()[:8]


HOST_TAG = _host_tag()


def temp_prefix() -> str:
    """``PID.HOST-``: which process on which host (and boot) writes a temporary."""
    return f"{os.getpid()}.{HOST_TAG}-"


def temp_in_use(p: Path, foreign_age_s: float = 86400) -> bool:
    """Whether the temporary ``p`` may still be written: its process runs here, or it is another host's and
    younger than ``foreign_age_s``."""
    owner = p.name.split("-", 1)[0] if "-" in p.name else ""
    pid, _, host = owner.partition(".")
    if not pid.isdigit():
        return False
    if host and host != HOST_TAG:
        import time

        try:
            return time.time() - p.lstat().st_mtime < foreign_age_s
        except OSError:
            return False
    return process_alive(int(pid))


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (this one included)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

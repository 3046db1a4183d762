"""Write-once, content-addressed object store.

Every original file is stored exactly once under ``objects/ab/cdef…`` where the
path is its SHA-256. Bytes are hashed *while* they are copied (one read pass),
written to a temporary file inside the store, fsynced, and only then renamed
into place atomically. A crash at any moment therefore leaves either no object
or a complete one, never a half-written object under a real name. Stored
objects are made read-only; nothing in Custodes ever opens them for writing.
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
from dataclasses import dataclass
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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        self.tmp_path = store.tmp_dir / f"{os.getpid()}-{uuid.uuid4().hex}.part"
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
        _fsync_dir(final.parent)
        return StoredObject(digest, size, final, created=True)

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
        return self.path_for(sha256).is_file()

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
            return self.put_stream(fh, max_bytes=max_bytes)

    def open(self, sha256: str) -> BinaryIO:
        path = self.path_for(sha256)
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

        Temporaries (files, and the scratch folders of a redaction) are named ``PID-…`` by the process that
        writes them; those of a process still running are left alone. Unnamed ones predate that naming."""
        removed: list[Path] = []
        if not self.tmp_dir.is_dir():
            return removed
        for p in self.tmp_dir.iterdir():
            pid = p.name.split("-", 1)[0]
            if pid.isdigit() and "-" in p.name and process_alive(int(pid)):
                continue
            if p.is_dir() and not p.is_symlink():
                import shutil

                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        return removed


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

"""Optional encryption of a case at rest: a seized laptop shows only ciphertext.

``custodes init CASE --encrypt`` asks for a passphrase. Argon2id turns it into a
key-encryption key that wraps a random 256-bit case key (so the passphrase can
change without re-encrypting footage); the wrapped key and the KDF parameters
sit in ``case.json``. Sub-keys derived from the case key (HKDF-SHA256) protect:

- **objects**: each file is a header plus a sequence of AES-256-GCM chunks
  (the STREAM construction: a per-file key, nonce = chunk counter + last-chunk
  flag), so any chunk can be read on its own (video players seek) and
  truncation, reordering or an edited byte fails authentication. Files are named
  by HMAC(case key, SHA-256) so even the hashes of the evidence stay hidden; the
  header carries the SHA-256 sealed under the file key.
- **the database**: SQLCipher (AES-256, page-level) keyed with a raw sub-key.
- **the ledger**: every line sealed on its own (AES-256-GCM), so appends,
  torn-tail repair and per-line error reports work as before.
- **signing keys**: private keys are stored as encrypted PKCS#8.

The passphrase comes from ``CUSTODES_PASSPHRASE`` or a prompt; a wrong one is
refused before anything is read or written.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from custodes.store.readers import BlockReader

MAGIC = b"CUSTENC1"
PLAIN_CHUNK = 256 * 1024
TAG = 16
SALT = 16
SEALED_SHA = 12 + 32 + TAG
HEADER = len(MAGIC) + SALT + SEALED_SHA
ENC_CHUNK = PLAIN_CHUNK + TAG
KDF_DEFAULTS = {"name": "argon2id", "time_cost": 3, "memory_cost": 65536, "parallelism": 2}


class CryptoError(Exception):
    """Wrong passphrase, or ciphertext that fails authentication; the message is shown to users."""


def _hkdf(key: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _kek(passphrase: str, salt: bytes, params: dict[str, Any]) -> bytes:
    from argon2.low_level import Type, hash_secret_raw

    if params.get("name") != "argon2id":
        raise CryptoError(f"unknown key derivation {params.get('name')!r}")
    return hash_secret_raw(passphrase.encode(), salt, time_cost=int(params["time_cost"]),
                           memory_cost=int(params["memory_cost"]), parallelism=int(params["parallelism"]),
                           hash_len=32, type=Type.ID)


def new_case_key(passphrase: str) -> tuple[bytes, dict[str, Any]]:
    """A fresh case key and the ``encryption`` block for case.json that unlocks it."""
    key = os.urandom(32)
    return key, rewrap_case_key(key, passphrase)


def rewrap_case_key(key: bytes, passphrase: str) -> dict[str, Any]:
    """The ``encryption`` block that unlocks ``key`` with ``passphrase`` (a new salt every time)."""
    if len(passphrase) < 8:
        raise CryptoError("passphrase too short: use at least 8 characters (a few words are better)")
    salt = os.urandom(16)
    nonce = os.urandom(12)
    wrapped = nonce + AESGCM(_kek(passphrase, salt, KDF_DEFAULTS)).encrypt(nonce, key, b"custodes case key")
    block = {"cipher": "aes-256-gcm-stream", "kdf": {**KDF_DEFAULTS, "salt": base64.b64encode(salt).decode()},
             "wrapped_key": base64.b64encode(wrapped).decode(), "chunk": PLAIN_CHUNK}
    return block


def unwrap_case_key(passphrase: str, block: dict[str, Any]) -> bytes:
    try:
        kdf = block["kdf"]
        salt = base64.b64decode(kdf["salt"])
        wrapped = base64.b64decode(block["wrapped_key"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CryptoError(f"the case's encryption settings are damaged: {exc}") from exc
    try:
        return AESGCM(_kek(passphrase, salt, kdf)).decrypt(wrapped[:12], wrapped[12:], b"custodes case key")
    except InvalidTag as exc:
        raise CryptoError("wrong passphrase for this case") from exc


@dataclass(frozen=True)
class CaseKeys:
    """Sub-keys of one case key. Picklable: worker processes get it instead of the passphrase."""

    master: bytes

    @functools.lru_cache(maxsize=16)  # noqa: B019 - a handful of purposes; keys live as long as the case
    def sub(self, purpose: str) -> bytes:
        """The sub-key for ``purpose``, derived once: object names and ledger lines ask for it per item."""
        return _hkdf(self.master, b"custodes/" + purpose.encode())

    @property
    def objects(self) -> bytes:
        return self.sub("objects")

    def object_name(self, sha256: str) -> str:
        return hmac.new(self.sub("object-names"), sha256.encode(), hashlib.sha256).hexdigest()

    def key_file_name(self, actor: str) -> str:
        """The name of an actor's key file in an encrypted case: the file names do not say who worked on it."""
        return hmac.new(self.sub("key-names"), actor.encode(), hashlib.sha256).hexdigest()[:32]

    def db_pragma_key(self) -> str:
        return f"\"x'{self.sub('sqlcipher').hex()}'\""

    @property
    def pem_password(self) -> bytes:
        return base64.b64encode(self.sub("private-keys"))


# -- ledger lines --------------------------------------------------------------

def seal_line(keys: CaseKeys, plain: bytes) -> bytes:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(keys.sub("ledger")).encrypt(nonce, plain, b"ledger"))


def open_line(keys: CaseKeys, sealed: bytes) -> bytes:
    try:
        raw = base64.b64decode(sealed, validate=True)
        return AESGCM(keys.sub("ledger")).decrypt(raw[:12], raw[12:], b"ledger")
    except (InvalidTag, ValueError) as exc:
        raise CryptoError("ledger line fails authentication: edited, or not from this case") from exc


# -- objects -------------------------------------------------------------------

def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">7xIB", index, 1 if last else 0)


class EncryptingFile:
    """Write side of an encrypted object: plaintext in, STREAM chunks out; the header is written last."""

    def __init__(self, raw: BinaryIO, keys: CaseKeys) -> None:
        self._raw = raw
        self._salt = os.urandom(SALT)
        self._aead = AESGCM(_hkdf(keys.objects, b"file", self._salt))
        self._buf = bytearray()
        self._index = 0
        raw.write(b"\0" * HEADER)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        mv = memoryview(data).cast("B")
        n = len(mv)
        while len(mv):
            if len(self._buf) == PLAIN_CHUNK:  # full, and more follows: so it is not the last chunk
                self._emit(self._buf, last=False)
                self._buf = bytearray()
            if not self._buf and len(mv) > PLAIN_CHUNK:
                self._emit(mv[:PLAIN_CHUNK], last=False)
                mv = mv[PLAIN_CHUNK:]
                continue
            take = min(PLAIN_CHUNK - len(self._buf), len(mv))
            self._buf += mv[:take]
            mv = mv[take:]
        return n

    def _emit(self, plain: bytes | bytearray | memoryview, last: bool) -> None:
        self._raw.write(self._aead.encrypt(_nonce(self._index, last), plain, None))
        self._index += 1

    def finish(self, sha256: str) -> None:
        self._emit(bytes(self._buf), last=True)
        self._buf = bytearray()
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, bytes.fromhex(sha256), b"sha256")
        self._raw.flush()
        os.pwrite(self._raw.fileno(), MAGIC + self._salt + sealed, 0)

    def fileno(self) -> int:
        return self._raw.fileno()

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        self._raw.close()


def plaintext_size(encrypted_size: int) -> int:
    body = encrypted_size - HEADER
    if body < TAG:
        raise CryptoError("encrypted object is truncated")
    chunks = -(-body // ENC_CHUNK)
    return body - chunks * TAG


class DecryptingReader(BlockReader):
    """Seekable plaintext view of an encrypted object; every chunk is authenticated before use."""

    block_size = PLAIN_CHUNK

    def __init__(self, path: str | os.PathLike[str], keys: CaseKeys) -> None:
        super().__init__()
        self._fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        try:
            head = self._fh.read(HEADER)
            if len(head) != HEADER or not head.startswith(MAGIC):
                raise CryptoError(f"{os.fspath(path)} is not an encrypted Custodes object")
            salt = head[len(MAGIC):len(MAGIC) + SALT]
            self._aead = AESGCM(_hkdf(keys.objects, b"file", salt))
            sealed = head[len(MAGIC) + SALT:]
            try:
                self.sha256 = self._aead.decrypt(sealed[:12], sealed[12:], b"sha256").hex()
            except InvalidTag as exc:
                raise CryptoError("object header fails authentication: altered, or not from this case") from exc
            self.size = plaintext_size(os.fstat(self._fh.fileno()).st_size)
            self._chunks = max(1, -(-self.size // PLAIN_CHUNK))
        except BaseException:
            self._fh.close()
            raise

    def _fetch(self, index: int) -> bytes:
        last = index == self._chunks - 1
        self._fh.seek(HEADER + index * ENC_CHUNK)
        enc = self._fh.read(ENC_CHUNK)
        try:
            return self._aead.decrypt(_nonce(index, last), enc, None)
        except InvalidTag as exc:
            raise CryptoError(f"encrypted object {self.sha256[:12]}… fails authentication at chunk {index}: "
                              "the stored bytes were altered or truncated") from exc

    def readinto(self, buf: Any) -> int:
        if self._pos >= self.size and self.size == 0:
            self._block(0)  # authenticate even an empty object
        return super().readinto(buf)

    def close(self) -> None:
        self._fh.close()
        super().close()

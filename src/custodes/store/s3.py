"""Originals on S3-compatible object storage with Object Lock (write-once), for deployments at scale.

``custodes init CASE --objects s3://bucket/prefix [--s3-endpoint URL] [--lock-mode governance|compliance]
[--lock-days N]``. Ingest still hashes while it copies into a local staging file (``objects/.tmp``); the
file is then uploaded under ``prefix/ab/cdef…`` with its SHA-256 as the S3 checksum and an Object Lock
retention, and the staging file is removed. Readers (analyzers, the player, exports, verify) read with
HTTP range requests through a seekable reader, so nothing is downloaded whole.

Credentials come from boto3's usual chain (environment, ~/.aws, instance role) and are never written to
the case. The bucket must have Object Lock enabled; the retention mode and period are the case's choice.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from custodes.store.objects import ObjectStore, ObjectStoreError, StoredObject
from custodes.store.readers import BlockReader

READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    lock_mode: str = "GOVERNANCE"  # GOVERNANCE | COMPLIANCE | "" (no retention: only for buckets without lock)
    lock_days: int = 3650

    @classmethod
    def parse(cls, url: str, endpoint_url: str | None = None, region: str | None = None,
              lock_mode: str = "governance", lock_days: int = 3650) -> S3Location:
        if not url.startswith("s3://"):
            raise ObjectStoreError(f"object storage must be s3://bucket/prefix, not {url!r}")
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise ObjectStoreError("no bucket in the s3:// URL")
        prefix = prefix.strip("/")
        mode = lock_mode.upper() if lock_mode.lower() != "none" else ""
        if mode not in ("GOVERNANCE", "COMPLIANCE", ""):
            raise ObjectStoreError("lock mode is governance, compliance or none")
        return cls(bucket, prefix + "/" if prefix else "", endpoint_url, region, mode, int(lock_days))

    def as_meta(self) -> dict[str, Any]:
        return {"backend": "s3", **asdict(self)}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> S3Location:
        return cls(**{k: v for k, v in meta.items() if k != "backend"})

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            config=Config(retries={"max_attempts": 5, "mode": "standard"}))

    def key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256[:2]}/{sha256[2:]}"

    def url(self, sha256: str) -> str:
        return f"s3://{self.bucket}/{self.key(sha256)}"


@dataclass(frozen=True)
class S3Ref:
    """Where a remote object is; picklable, for worker processes (which bring their own credentials)."""

    loc: S3Location
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.sha256


class S3RangeReader(BlockReader):
    """Seekable reader over one S3 object: 1 MiB ranged GETs, the last block cached."""

    block_size = READ_BLOCK

    def __init__(self, loc: S3Location, key: str, size: int, client: Any = None) -> None:
        super().__init__()
        self._loc, self._key, self.size = loc, key, size
        self._client = client or loc.client()

    def _fetch(self, index: int) -> bytes:
        start = index * READ_BLOCK
        end = min(start + READ_BLOCK, self.size) - 1
        body = self._client.get_object(Bucket=self._loc.bucket, Key=self._key, Range=f"bytes={start}-{end}")
        return bytes(body["Body"].read())


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3ObjectStore(ObjectStore):
    """The object store on S3: same interface, staging locally, reading by ranges."""

    def __init__(self, root: Path, loc: S3Location) -> None:
        super().__init__(root)
        self.loc = loc
        self._client_cache: Any = None

    @property
    def client(self) -> Any:
        if self._client_cache is None:
            self._client_cache = self.loc.client()
        return self._client_cache

    def check_bucket(self) -> None:
        """The bucket is reachable and, unless the case chose no lock, has Object Lock enabled."""
        try:
            self.client.head_bucket(Bucket=self.loc.bucket)
        except Exception as exc:
            raise ObjectStoreError(f"cannot reach bucket {self.loc.bucket}: {exc}") from exc
        if not self.loc.lock_mode:
            return
        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.loc.bucket)["ObjectLockConfiguration"]
            enabled = conf.get("ObjectLockEnabled") == "Enabled"
        except Exception:
            enabled = False
        if not enabled:
            raise ObjectStoreError(f"bucket {self.loc.bucket} has no Object Lock: evidence there could be "
                                   "overwritten or deleted. Create it with Object Lock, or choose --lock-mode none")

    def _head(self, sha256: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=self.loc.bucket, Key=self.loc.key(sha256),
                                                ChecksumMode="ENABLED"))
        except Exception as exc:
            if _missing(exc):
                return None
            raise ObjectStoreError(f"object storage error: {exc}") from exc

    def install(self, tmp_path: Path, digest: str, size: int) -> StoredObject:
        if self._head(digest) is not None:  # exact duplicate: the stored copy is authoritative
            tmp_path.unlink()
            return StoredObject(digest, size, tmp_path, created=False)
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        extra: dict[str, Any] = {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": checksum,
                                 "Metadata": {"custodes-sha256": digest}}
        if self.loc.lock_mode:
            extra["ObjectLockMode"] = self.loc.lock_mode
            extra["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=self.loc.lock_days)
        try:
            with open(tmp_path, "rb") as fh:
                self.client.put_object(Bucket=self.loc.bucket, Key=self.loc.key(digest), Body=fh, **extra)
        except Exception as exc:
            raise ObjectStoreError(f"upload to {self.loc.url(digest)} failed: {exc}") from exc
        head = self._head(digest)
        if head is None or head.get("ContentLength") != size or \
                (head.get("ChecksumSHA256") not in (None, checksum)):
            raise ObjectStoreError(f"{self.loc.url(digest)} does not hold what was uploaded")
        tmp_path.unlink()
        return StoredObject(digest, size, tmp_path, created=True)

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """No local staging: each upload is durable (and checked) when ``install`` returns, so every object
        is named at once and ``sync_group`` has nothing left to do."""
        yield

    def path_for(self, sha256: str) -> Path:
        raise ObjectStoreError("objects of this case live on S3; read them with open() or media_ref()")

    def exists(self, sha256: str) -> bool:
        self.check_digest(sha256)
        return self._head(sha256) is not None

    def size(self, sha256: str) -> int:
        head = self._head(sha256)
        if head is None:
            raise ObjectStoreError(f"object {sha256} is missing from {self.loc.url(sha256)}")
        return int(head["ContentLength"])

    def media_ref(self, sha256: str) -> Any:
        self.check_digest(sha256)
        return S3Ref(self.loc, sha256, self.size(sha256))

    def open(self, sha256: str) -> Any:
        self.check_digest(sha256)
        return io.BufferedReader(S3RangeReader(self.loc, self.loc.key(sha256), self.size(sha256), self.client),
                                 buffer_size=READ_BLOCK)

    def rehash(self, sha256: str) -> str:
        h = hashlib.sha256()
        try:
            body = self.client.get_object(Bucket=self.loc.bucket, Key=self.loc.key(sha256))["Body"]
            for chunk in iter(lambda: body.read(4 << 20), b""):
                h.update(chunk)
        except Exception as exc:
            raise ObjectStoreError(f"cannot read {self.loc.url(sha256)}: {exc}") from exc
        return h.hexdigest()

    def stored_bytes(self, name: str) -> int:
        return self.size(name)

    def describe(self, name: str) -> str:
        return self.loc.url(name)

    def protection_warning(self, name: str) -> tuple[str, str] | None:
        if not self.loc.lock_mode:
            return None
        head = self._head(name) or {}
        until = head.get("ObjectLockRetainUntilDate")
        if not head.get("ObjectLockMode") or until is None:
            return "object.unlocked", "object has no Object Lock retention: it could be overwritten or deleted"
        if until < datetime.now(UTC):
            return "object.unlocked", f"Object Lock retention expired on {until:%Y-%m-%d}"
        return None

    def iter_digests(self) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.loc.bucket, Prefix=self.loc.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(self.loc.prefix):]
                yield rest.replace("/", "", 1) if rest[2:3] == "/" else rest

    def total_bytes(self) -> int:
        return 0  # unknown without listing; verify shows progress by objects instead


def open_s3_ref(ref: S3Ref) -> io.BufferedReader:
    return io.BufferedReader(S3RangeReader(ref.loc, ref.loc.key(ref.sha256), ref.size), buffer_size=READ_BLOCK)


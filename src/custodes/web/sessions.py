"""Review-app sessions that write access to the database alone cannot forge.

The cookie is ``<seq>.<token>``: a random token and the seq of the signed ``login`` event that opened the
session. The database keeps only an HMAC of the token under a per-case secret kept with the case's keys
(derived from the case key in an encrypted case; otherwise a 0600 file in ``keys/``, mixed with the key
passphrase when the keys are protected). A row planted with a self-computed hash therefore matches no token.

Each session must also be backed by its login event: a ledger entry, with a valid hash and signature, whose
action is ``login``, whose actor is the session's user and whose ``session`` detail is the fingerprint of the
stored HMAC. A row re-pointed at another user fails that check. The signed login time, not the row's
``created_at``, bounds the session's absolute lifetime.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custodes.store.case import Case
from custodes.store.ledger import KeyBook, entry_digest

SECRET_FILE = "web-sessions.secret"
COOKIE_RE = re.compile(r"^(\d{1,18})\.([A-Za-z0-9_-]{32,128})$")


class SessionError(Exception):
    pass


@dataclass(frozen=True)
class Login:
    """What the signed login event says about a session."""

    actor: str
    at: datetime


def _ledger_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def secret_file(path: Path) -> bytes | None:
    """The 32 random bytes in ``path``, written first if it is not there (mode 0600, synced); None when the
    file holds anything else (the caller says what to do in its own words)."""
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic: a second server starting at once reads the first one's whole file
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    raw = path.read_bytes()
    return raw if len(raw) == 32 else None


def load_secret(case: Case) -> bytes:
    if case.keys is not None:
        return case.keys.sub("web-sessions")  # from the case key: as protected as the database and the keys
    path = case.root / "keys" / SECRET_FILE
    path.parent.mkdir(mode=0o700, exist_ok=True)
    raw = secret_file(path)
    if raw is None:
        raise SessionError(f"{path} is damaged (not 32 bytes): delete it and start the review app again "
                           "(everyone will have to log in again)")
    if case.meta.get("keys_protected"):
        # the file alone is not enough: whoever reads keys/ without the passphrase cannot compute the hashes
        raw = hmac.new(case.keyring.password or b"", raw, hashlib.sha256).digest()
    return raw


class SessionKeys:
    def __init__(self, case: Case) -> None:
        self.case = case
        self._secret: bytes | None = None
        self._lock = threading.Lock()
        self._logins: dict[tuple[int, str], Login] = {}  # checked once per session and process

    def _key(self) -> bytes:
        with self._lock:
            if self._secret is None:  # read on first use: a protected case asks for its passphrase then
                self._secret = load_secret(self.case)
            return self._secret

    def digest(self, token: str) -> str:
        """What the database stores for a session token."""
        return hmac.new(self._key(), token.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def fingerprint(digest: str) -> str:
        """How the login event names its session."""
        return digest[:32]

    @staticmethod
    def cookie(seq: int, token: str) -> str:
        return f"{seq}.{token}"

    @staticmethod
    def parse(cookie: str) -> tuple[int, str] | None:
        m = COOKIE_RE.match(cookie)
        return (int(m.group(1)), m.group(2)) if m else None

    def remember(self, entry: dict[str, Any], digest: str) -> None:
        """The login event this process just appended: no need to read it back from the ledger."""
        self._logins[(entry["seq"], digest)] = Login(entry["actor"], _ledger_time(entry["time"]))

    def login(self, seq: int, digest: str) -> Login | None:
        """The login event ``seq`` if it is a well-signed login of the session stored as ``digest``."""
        key = (seq, digest)
        if key in self._logins:
            return self._logins[key]
        book = KeyBook()
        for e in self.case.ledger.entries():
            if e.get("action") == "key.register":
                book.register(e)
            if e.get("seq") != seq:
                continue
            details = e.get("details") or {}
            if (e.get("action") != "login" or not isinstance(details, dict)
                    or details.get("session") != self.fingerprint(digest)
                    or entry_digest(e) != e.get("hash") or book.check_signature(e) is not None):
                return None
            found = Login(str(e["actor"]), _ledger_time(e["time"]))
            self._logins[key] = found
            return found
        return None

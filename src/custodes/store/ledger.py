"""Append-only, hash-chained, signed chain-of-custody ledger (JSON lines).

Each line is one event::

    {"seq": 7, "time": "2026-11-25T16:40:00.123456Z", "actor": "alice",
     "key": "<fingerprint of alice's Ed25519 public key>", "action": "ingest",
     "subject": "<sha256 of the evidence object or null>", "details": {...},
     "prev": "<hash of entry 6>", "hash": "<sha256 of this entry>", "sig": "<base64>"}

``hash`` is the SHA-256 of the canonical JSON of the entry without ``hash`` and
``sig``; ``sig`` is the actor's Ed25519 signature over ``hash``. An actor's
public key enters the ledger in a ``key.register`` event before (or as) the
first event it signs, so the ledger alone is enough to check every signature.
The digest of the last entry (``custodes ledger head``) can be given to a
lawyer or published: any later rewrite of history no longer contains it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custodes.store import faults
from custodes.store.crypto import CaseKeys, CryptoError, open_line, seal_line

GENESIS = "0" * 64
ACTOR_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


ENTRY_FIELDS = frozenset({"seq", "time", "actor", "key", "action", "subject", "details", "prev", "hash", "sig"})


class LedgerError(Exception):
    pass


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_digest(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k not in ("hash", "sig")}
    return hashlib.sha256(canonical(body)).hexdigest()


def public_key_bytes(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(pub: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key_bytes(pub)).hexdigest()[:32]


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KeyRing:
    """Private signing keys of the actors who work on this case (``keys/``).

    Keys are per actor and never leave the case directory; files are 0600
    (and encrypted PKCS#8 in an encrypted case).
    """

    def __init__(self, root: Path, password: bytes | Callable[[], bytes] | None = None,
                 file_name: Callable[[str], str] | None = None) -> None:
        self.root = root
        self._password = password  # a function: asked for only when a key is first used
        self.file_name = file_name  # an encrypted case names key files by an HMAC of the actor

    @property
    def password(self) -> bytes | None:
        if callable(self._password):
            self._password = self._password()
        return self._password

    def _encryption(self) -> serialization.KeySerializationEncryption:
        if self.password:
            return serialization.BestAvailableEncryption(self.password)
        return serialization.NoEncryption()

    def _path(self, actor: str) -> Path:
        if not ACTOR_RE.match(actor):
            raise LedgerError(f"invalid actor name {actor!r} (letters, digits, . _ @ - only)")
        plain = self.root / f"{actor}.ed25519"
        if self.file_name is None or plain.is_file():  # a key file from before names were hidden stays usable
            return plain
        return self.root / f"{self.file_name(actor)}.ed25519"

    def has(self, actor: str) -> bool:
        return self._path(actor).is_file()

    def load(self, actor: str) -> Ed25519PrivateKey | None:
        """The actor's key if its file is here; never creates one."""
        return self.load_or_create(actor) if self.has(actor) else None

    def load_or_create(self, actor: str) -> Ed25519PrivateKey:
        path = self._path(actor)
        if path.is_file():
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=self.password)
            except TypeError as exc:
                raise LedgerError(f"signing key {path.name} is protected by a passphrase and none was given: set "
                                  "CUSTODES_KEY_PASSPHRASE") from exc
            except ValueError as exc:
                raise LedgerError(f"cannot read signing key {path.name}: wrong key passphrase, or the file is "
                                  "damaged (restore it from a backup)") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise LedgerError(f"{path} is not an Ed25519 key")
            return key
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, self._encryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        return key


ENDORSEMENT_CONTEXT = b"custodes-key-endorsement-1\n"


def endorsement_message(actor: str, fpr: str) -> bytes:
    """What an endorser signs to vouch that ``fpr`` is ``actor``'s signing key."""
    return ENDORSEMENT_CONTEXT + canonical({"actor": actor, "fingerprint": fpr})


def endorse(endorser: str, key: Ed25519PrivateKey, actor: str, fpr: str) -> dict[str, str]:
    return {"actor": endorser, "key": fingerprint(key.public_key()),
            "sig": base64.b64encode(key.sign(endorsement_message(actor, fpr))).decode()}


class KeyBook:
    """Which key may sign as whom, read from a ledger's ``key.register`` events in order.

    The first key registered (seq 0, the case creator's) is the **case key**: the root of trust. Every later
    registration must be endorsed: a new actor by the case key; a new key for an actor who already has one
    (rotation) by that actor's previous key or by the case key. A ledger whose first registration predates
    this rule (no ``endorsement_required``) still accepts unendorsed new actors but never an unendorsed
    rotation. The same code checks a case's ledger and a package's slice of it.
    """

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}        # fingerprint -> actor
        self.pub: dict[str, Ed25519PublicKey] = {}
        self.current: dict[str, str] = {}      # actor -> fingerprint of its latest valid key
        self.admin: tuple[str, str] | None = None  # (actor, fingerprint) of the case key
        self.strict = False

    def register(self, e: dict[str, Any]) -> str | None:
        """Take one ``key.register`` entry; return why it is invalid, or None (then its key may sign)."""
        try:
            d = e["details"]
            pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(d["public_key"]))
        except (KeyError, ValueError, TypeError) as exc:
            return f"invalid key registration: {exc}"
        fpr, actor = fingerprint(pub), e["actor"]
        if fpr != d.get("fingerprint") or fpr != e["key"]:
            return "invalid key registration: fingerprint mismatch"
        if fpr in self.owner:
            if self.owner[fpr] != actor:
                return f"invalid key registration: key already registered to {self.owner[fpr]}"
            return None  # the same key registered again by its own actor: harmless
        if self.admin is None:
            self.admin, self.strict = (actor, fpr), bool(d.get("endorsement_required"))
        else:
            why = self._endorsement_problem(actor, fpr, d.get("endorsement"))
            if why:
                return why
        self.owner[fpr], self.pub[fpr], self.current[actor] = actor, pub, fpr
        return None

    def _endorsement_problem(self, actor: str, fpr: str, endo: Any) -> str | None:
        previous = self.current.get(actor)
        assert self.admin is not None
        allowed = {self.admin[1]} | ({previous} if previous else set())
        if not isinstance(endo, dict):
            if previous:
                return (f"a second key for {actor!r} (who signs with {previous}) without the endorsement of "
                        "the old key or the case key: anyone who can append could sign as them")
            if self.strict:
                return f"new signer {actor!r} not endorsed by the case key ({self.admin[0]})"
            return None
        ek = endo.get("key")
        if ek not in allowed:
            return (f"key for {actor!r} endorsed by {ek}, which may not vouch for it "
                    f"(only {'the old key or ' if previous else ''}the case key {self.admin[1]} may)")
        try:
            self.pub[ek].verify(base64.b64decode(endo.get("sig", "")), endorsement_message(actor, fpr))
        except (InvalidSignature, ValueError, TypeError):
            return f"endorsement of {actor!r}'s key does not verify: forged"
        return None

    def signer(self, e: dict[str, Any]) -> tuple[Ed25519PublicKey | None, str | None]:
        """The public key that must verify ``e``'s signature, or why there is none."""
        fpr = e.get("key", "")
        if fpr not in self.pub:
            return None, f"signed with a key that was never validly registered ({fpr})"
        if self.owner[fpr] != e.get("actor"):
            return None, f"actor {e.get('actor')!r} signed with {self.owner[fpr]!r}'s key"
        return self.pub[fpr], None

    def check_entry(self, e: dict[str, Any], where: str) -> list[Problem]:
        """Take one entry in ledger order: its key registration (if it is one) and its signature."""
        found = []
        if e.get("action") == "key.register":
            why = self.register(e)
            if why:
                found.append(Problem("ledger.key", where, why))
        why = self.check_signature(e)
        if why:
            found.append(Problem("ledger.signature", where, why))
        return found

    def check_signature(self, e: dict[str, Any]) -> str | None:
        pub, why = self.signer(e)
        if pub is None:
            return why
        try:
            pub.verify(base64.b64decode(e["sig"]), bytes.fromhex(e["hash"]))
        except (InvalidSignature, ValueError, TypeError, KeyError):
            return "signature does not verify: forged or corrupted"
        return None


@dataclass
class Problem:
    kind: str  # e.g. "ledger.chain", "ledger.signature", "object.altered"
    where: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where, "message": self.message}


@dataclass
class LedgerCheck:
    entries: int = 0
    head: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)
    hashes: set[str] = field(default_factory=set)
    by_seq: dict[int, dict[str, Any]] = field(default_factory=dict)
    case_key: str = ""  # fingerprint of the first registered key: the root of trust


class Ledger:
    def __init__(self, path: Path, keyring: KeyRing, keys: CaseKeys | None = None) -> None:
        self.path = path
        self.keyring = keyring
        self.keys = keys  # an encrypted case seals every line on its own
        self.lock_path = path.with_suffix(".lock")
        self._cache: tuple[int, int, str, set[str]] = (0, -1, GENESIS, set())
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._signers: dict[str, str] = {}  # actor -> latest registered fingerprint, as read by _tail
        self._case_key: tuple[str, str] | None = None  # (actor, fingerprint) of the first registration
        self._pending_repair: dict[str, Any] | None = None
        self._holder = threading.local()

    def _encode(self, entry: dict[str, Any]) -> bytes:
        raw = canonical(entry)
        return (seal_line(self.keys, raw) if self.keys else raw) + b"\n"

    def _decode(self, line: bytes) -> Any:
        return json.loads(open_line(self.keys, line.strip()) if self.keys else line)

    # -- writing -------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The ledger's exclusive lock (across processes and threads); re-entrant within one thread."""
        if getattr(self._holder, "depth", 0):
            self._holder.depth += 1
            try:
                yield
            finally:
                self._holder.depth -= 1
            return
        fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._holder.depth = 1
            yield
        finally:
            self._holder.depth = 0
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def hold(self) -> Any:
        """Keep the ledger locked over more than one append (a records seal and its database commit)."""
        return self._locked()

    def _tail(self) -> tuple[int, str, set[str]]:
        """(last seq, last hash, registered key fingerprints) after repairing a torn tail.

        Only bytes appended since this object last looked are parsed, so a long
        ingest does not re-read the whole ledger for every event.
        """
        offset, last_seq, last_hash, keys = self._cache
        if not self.path.exists():
            self._cache, self._signers, self._case_key = (0, -1, GENESIS, set()), {}, None
            return -1, GENESIS, set()
        with open(self.path, "rb+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size < offset:  # shrank under us: start over (verify will say why)
                offset, last_seq, last_hash, keys = 0, -1, GENESIS, set()
                self._signers, self._case_key = {}, None
            fh.seek(offset)
            data = fh.read()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                torn = data[cut:]
                if self._whole_entry(torn) is not None:
                    # A complete signed event that lost only its newline (the disk filled on the last
                    # byte): finish the line, never drop a signed event.
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"\n")
                    data += b"\n"
                    self._pending_repair = {"completed_line_bytes": len(torn),
                                            "reason": "a complete last entry lacked its newline; it was added"}
                else:
                    # A process was killed (or the disk filled) mid-append: the partial line was never a
                    # complete, signed event. Cut it and record that we did.
                    fh.truncate(offset + cut)
                    data = data[:cut]
                    self._pending_repair = {
                        "reason": "incomplete last line from an interrupted write was removed",
                        "torn_bytes": len(torn),
                        "torn_sha256": hashlib.sha256(torn).hexdigest(),
                    }
                fh.flush()
                os.fsync(fh.fileno())
        keys = set(keys)
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                e = self._decode(line)
                follows = isinstance(e, dict) and e.get("seq") == last_seq + 1 and e.get("prev") == last_hash \
                    and entry_digest(e) == e.get("hash")
            except (ValueError, TypeError, KeyError, CryptoError):
                follows = False
            if not follows:
                # never sign onto an entry that does not follow from the one before: the new event would
                # chain to a forgery and fail verification for ever
                self._cache = (0, -1, GENESIS, set())
                raise LedgerError(f"the ledger's entry after seq {last_seq} does not follow from the one before "
                                  "(edited, inserted or foreign): nothing was written; run `custodes verify` to see "
                                  "what changed")
            last_seq, last_hash = e["seq"], e["hash"]
            if e.get("action") == "key.register":
                keys.add(e["details"]["fingerprint"])
                self._signers[e["actor"]] = e["details"]["fingerprint"]
                if self._case_key is None:
                    self._case_key = (e["actor"], e["details"]["fingerprint"])
        self._cache = (offset + len(data), last_seq, last_hash, keys)
        return last_seq, last_hash, keys

    def append(self, actor: str, action: str, subject: str | None = None,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.append_many(actor, [(action, subject, details or {})])[-1]

    def append_many(self, actor: str,
                    events: list[tuple[str, str | None, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Append events in order under one lock and one fsync."""
        for action, _, details in events:
            try:  # JSON has no Infinity or NaN: such a line would be signed but unreadable elsewhere
                json.dumps(details, allow_nan=False)
            except ValueError as exc:
                raise LedgerError(f"cannot sign the {action!r} event: {exc}; only finite numbers can be "
                                  "recorded") from exc
        written: list[dict[str, Any]] = []
        with self._locked():
            self._pending_repair = None
            seq, prev, keys = self._tail()
            key, registration = self._signing_key(actor, keys)
            fpr = fingerprint(key.public_key())
            todo = list(events)
            if self._pending_repair:
                todo.insert(0, ("ledger.repair", None, dict(self._pending_repair)))
            if registration is not None:
                todo.insert(0, ("key.register", None, registration))
            lines = []
            for action, subject, details in todo:
                seq += 1
                entry: dict[str, Any] = {
                    "seq": seq, "time": utcnow(), "actor": actor, "key": fpr, "action": action,
                    "subject": subject, "details": details, "prev": prev,
                }
                entry["hash"] = entry_digest(entry)
                entry["sig"] = base64.b64encode(key.sign(bytes.fromhex(entry["hash"]))).decode()
                prev = entry["hash"]
                lines.append(self._encode(entry))
                written.append(entry)
            blob = b"".join(lines)
            # kill -9 tests: before the events reach the ledger (their rows may be committed), and after
            faults.point(f"ledger.before.{events[0][0]}" if events else "ledger.before")
            with open(self.path, "ab") as fh:
                faults.torn_write("ledger.append", fh, blob)
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            faults.point(f"ledger.after.{events[-1][0]}" if events else "ledger.after")
            off, _, _, known = self._cache
            self._cache = (off + len(blob), seq, prev, known | {fpr})
            if registration is not None:
                self._signers[actor] = fpr
                self._case_key = self._case_key or (actor, fpr)
        return written

    def _signing_key(self, actor: str, registered: set[str]) -> tuple[Ed25519PrivateKey, dict[str, Any] | None]:
        """The actor's private key, and the ``key.register`` details to append first when it is new here.

        A first signer becomes the case key; every later new key carries the case key's endorsement (the
        case creator's key file must be here). A new key for an actor the ledger already knows is refused
        unless the case key can vouch for it: an actor whose key file was lost gets a new key only through
        the case key, and the case key itself cannot be replaced silently.
        """
        key = self._private.get(actor) or self.keyring.load(actor)
        if key is not None and fingerprint(key.public_key()) in registered:
            self._private[actor] = key
            return key, None
        previous = self._signers.get(actor)
        endorser: tuple[str, Ed25519PrivateKey] | None = None
        if self._case_key is not None:
            admin_actor, admin_fpr = self._case_key
            admin_key = self.keyring.load(admin_actor) if admin_actor != actor else None
            if admin_key is None or fingerprint(admin_key.public_key()) != admin_fpr:
                who = f"{actor!r} already signs this ledger with key {previous} and" if previous else \
                    f"{actor!r} is a new signer and"
                raise LedgerError(
                    f"{who} a new key for them needs the case key's endorsement, but the case key "
                    f"({admin_actor}, {admin_fpr}) is not in {self.keyring.root}: restore "
                    f"keys/{admin_actor}.ed25519 (or keys/{actor}.ed25519) from a backup, or act as {admin_actor}")
            endorser = (admin_actor, admin_key)
        key = key or self.keyring.load_or_create(actor)
        pub = key.public_key()
        fpr = fingerprint(pub)
        details: dict[str, Any] = {"fingerprint": fpr, "algorithm": "ed25519",
                                   "public_key": base64.b64encode(public_key_bytes(pub)).decode()}
        if endorser is None:
            details["endorsement_required"] = True  # every later signer must be vouched for by this key
        else:
            details["endorsement"] = endorse(endorser[0], endorser[1], actor, fpr)
            if previous:
                details["replaces"] = previous
        self._private[actor] = key
        return key, details

    # -- reading -------------------------------------------------------------

    def _whole_entry(self, raw: bytes) -> dict[str, Any] | None:
        """The entry on a line without its newline, when it is one whole entry; None for a torn fragment."""
        try:
            e = self._decode(raw)
        except (ValueError, CryptoError):
            return None
        if not isinstance(e, dict) or not set(e) >= ENTRY_FIELDS or not isinstance(e["seq"], int):
            return None
        try:
            return e if entry_digest(e) == e["hash"] else None
        except (TypeError, ValueError):
            return None

    def entries(self, action: str | None = None) -> Iterator[dict[str, Any]]:
        """Every entry in order (or those of one ``action``). A torn last line (an interrupted write, not an
        event) is not read, so every reader works before the next write repairs it; a whole last entry that lost
        only its newline is read."""
        if not self.path.exists():
            return
        # in a plain ledger a line that does not hold the action's name cannot be one of its events: not decoded
        needle = json.dumps(action).encode() if action is not None and not self.keys else None
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.strip() or (needle is not None and needle not in line):
                    continue
                if not line.endswith(b"\n"):
                    whole = self._whole_entry(line)
                    if whole is not None and (action is None or whole.get("action") == action):
                        yield whole
                    return
                entry = self._decode(line)
                if action is None or entry.get("action") == action:
                    yield entry

    def entries_after(self, offset: int, action: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """The whole entries written after byte ``offset`` (a value this method returned before, or 0), and the
        offset to ask from next time: a reader that keeps a summary of the ledger (the camera corrections) reads
        only what was appended since, not the whole file on every request. A torn last line is left for later."""
        if not self.path.exists():
            return [], 0
        needle = json.dumps(action).encode() if action is not None and not self.keys else None
        out: list[dict[str, Any]] = []
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                offset += len(line)
                if not line.strip() or (needle is not None and needle not in line):
                    continue
                entry = self._decode(line)
                if action is None or entry.get("action") == action:
                    out.append(entry)
        return out, offset

    def head(self) -> tuple[int, str]:
        seq, h = -1, GENESIS
        for e in self.entries():
            seq, h = e["seq"], e["hash"]
        return seq, h

    def check(self) -> LedgerCheck:
        """Verify the chain, every hash and every signature. Names each bad line."""
        res = LedgerCheck()
        if not self.path.exists():
            res.problems.append(Problem("ledger.missing", str(self.path), "ledger file is missing"))
            return res
        book = KeyBook()
        prev = GENESIS
        expected_seq = 0
        with open(self.path, "rb") as fh:
            raw_lines = fh.read().split(b"\n")
        if raw_lines and raw_lines[-1] == b"":
            raw_lines.pop()
        elif raw_lines and self._whole_entry(raw_lines[-1]) is None:
            # Not an event: an interrupted write (a kill, a full disk). Nothing signed is lost by it, and a
            # signed entry cut short is still caught by the seal marks (ledger.truncated).
            res.warnings.append(Problem("ledger.torn", f"line {len(raw_lines)}",
                                        f"the last line is an incomplete write ({len(raw_lines[-1])} bytes) "
                                        "from an interrupted run; the next command that writes removes it "
                                        "and records that"))
            raw_lines.pop()
        for lineno, raw in enumerate(raw_lines, start=1):
            where = f"line {lineno}"
            try:
                e = self._decode(raw)
                if not isinstance(e, dict):
                    raise ValueError("not an object")
                missing = ENTRY_FIELDS - set(e)
                if missing:
                    raise ValueError(f"missing fields {sorted(missing)}")
            except (ValueError, CryptoError) as exc:
                res.problems.append(Problem("ledger.malformed", where, f"not a valid ledger entry: {exc}"))
                continue
            res.entries += 1
            where = f"line {lineno} (seq {e['seq']}, {e['action']})"
            if e["seq"] != expected_seq:
                res.problems.append(Problem("ledger.sequence", where,
                                            f"expected seq {expected_seq}, found {e['seq']}: "
                                            "entries deleted, inserted or reordered"))
            expected_seq = e["seq"] + 1 if isinstance(e["seq"], int) else expected_seq + 1
            if e["prev"] != prev:
                res.problems.append(Problem("ledger.chain", where,
                                            "prev does not match the hash of the entry before it: "
                                            "the chain is broken here"))
            digest = entry_digest(e)
            if digest != e["hash"]:
                res.problems.append(Problem("ledger.altered", where,
                                            "entry content does not match its hash: the entry was edited"))
            res.problems.extend(book.check_entry(e, where))
            prev = e["hash"]
            res.head = e["hash"]
            res.hashes.add(e["hash"])
            res.by_seq[e["seq"]] = e
            res.actions[e["action"]] = res.actions.get(e["action"], 0) + 1
        res.case_key = book.admin[1] if book.admin else ""
        return res

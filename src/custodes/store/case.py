"""A case is a directory: database, object store, ledger, keys, reports."""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from custodes import __version__
from custodes.store.crypto import CaseKeys, CryptoError, new_case_key, unwrap_case_key
from custodes.store.db import (
    DatabaseURLError,
    ensure_database,
    is_server,
    make_engine,
    normalize_url,
    public_url,
    sqlite_url,
)
from custodes.store.ledger import KeyRing, Ledger, utcnow
from custodes.store.objects import ObjectStore, temp_in_use, temp_prefix
from custodes.store.seals import SealingSession

CASE_FILE = "case.json"
FORMAT_VERSION = 1


class CaseError(Exception):
    pass


def default_actor() -> str:
    actor = os.environ.get("CUSTODES_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def _secret(env: str, prompt: str, what: str, confirm: bool, error: type[Exception]) -> str:
    """A passphrase from ``env``, else asked on the terminal (never echoed); ``error`` says why when neither."""
    value = os.environ.get(env)
    if value:
        return value
    import sys

    if not sys.stdin.isatty():
        raise error(f"{what}: set {env} or run from a terminal to be asked")
    value = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat the passphrase: ") != value:
        raise error("the passphrases differ")
    return value


def key_passphrase(confirm: bool = False) -> bytes:
    """The passphrase that protects the signing keys of an unencrypted case (``--protect-keys``), from
    ``CUSTODES_KEY_PASSPHRASE``, else asked on the terminal when a key is first needed."""
    from custodes.store.ledger import LedgerError

    value = _secret("CUSTODES_KEY_PASSPHRASE", "Signing key passphrase: ",
                    "this case's signing keys are protected by a passphrase", confirm, LedgerError)
    if len(value) < 8:
        raise LedgerError("a key passphrase needs at least 8 characters")
    return value.encode()


def passphrase(prompt: str = "Case passphrase: ", confirm: bool = False) -> str:
    """The passphrase from ``CUSTODES_PASSPHRASE``, else asked on the terminal (never echoed)."""
    return _secret("CUSTODES_PASSPHRASE", prompt, "this case is encrypted", confirm, CaseError)


LOW_SPACE_BYTES = 1 << 20  # below this the disk counts as full: readers must not need to grow any file


def free_bytes(path: Path) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 1 << 62
    return st.f_bavail * st.f_frsize


def case_file_digest(root: Path) -> str:
    """SHA-256 of case.json as it is: each event that writes it records this, and verify compares."""
    import hashlib

    try:
        return hashlib.sha256((root / CASE_FILE).read_bytes()).hexdigest()
    except OSError:
        return ""


def case_file_text(meta: dict[str, Any]) -> str:
    return json.dumps(meta, indent=2) + "\n"


def case_file_text_digest(meta: dict[str, Any]) -> str:
    """What ``case_file_digest`` will say once ``meta`` is written: an event can record it before the switch."""
    import hashlib

    return hashlib.sha256(case_file_text(meta).encode()).hexdigest()


def case_file_records(entries: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(digest, event) for every ledger event that recorded case.json's digest, in ledger order."""
    return [(e["details"]["case_file_sha256"], e) for e in entries
            if isinstance(e.get("details"), dict) and "case_file_sha256" in e["details"]]


def write_case_file(root: Path, meta: dict[str, Any]) -> None:
    """Replace case.json atomically (temp file, fsync, rename): a crash leaves the old or the new one."""
    tmp = root / (CASE_FILE + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(case_file_text(meta))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / CASE_FILE)


def refuse_used_database(url: str) -> None:
    """Raise CaseError when the (server) database at ``url`` already holds a case's tables."""
    engine = make_engine(url)
    try:
        from sqlalchemy import inspect

        if inspect(engine).has_table("alembic_version"):
            raise CaseError(f"database {public_url(url)} already holds a case; give each case its own database "
                            "(put {case_id} in the URL)")
    finally:
        engine.dispose()


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def known_revisions() -> set[str]:
    """Every schema revision this version's migrations know (a newer case's is not among them)."""
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def migrate(engine: Engine) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Case:
    """An open case. An encrypted case is unlocked here (``keys``, or the passphrase) or refused."""

    def __init__(self, root: Path, db_url: str | None = None, keys: CaseKeys | None = None,
                 secret: str | None = None, new_database: bool = False) -> None:
        self.root = root.resolve()
        meta_path = self.root / CASE_FILE
        if not meta_path.is_file():
            raise CaseError(f"{root} is not a Custodes case (no {CASE_FILE}); create one with `custodes init`")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise CaseError(f"{meta_path} is damaged: {exc}") from exc
        self.keys: CaseKeys | None = None
        if "encryption" in self.meta:
            if keys is None:
                try:
                    keys = CaseKeys(unwrap_case_key(secret or passphrase(), self.meta["encryption"]))
                except CryptoError as exc:
                    raise CaseError(str(exc)) from exc
            self.keys = keys
        self.db_url = db_url or self.meta.get("db_url") or sqlite_url(self.root)
        if not new_database:
            self._refuse_lost_database()
        self.low_space = free_bytes(self.root) < LOW_SPACE_BYTES
        self.engine = make_engine(self.db_url, self.keys.db_pragma_key() if self.keys else None,
                                  low_space=self.low_space)
        self.store: ObjectStore
        objects = self.meta.get("objects")
        if objects and objects.get("backend") == "s3":
            from custodes.store.s3 import S3Location, S3ObjectStore

            self.store = S3ObjectStore(self.root / "objects", S3Location.from_meta(objects))
        else:
            self.store = ObjectStore(self.root / "objects", self.keys)
        password: bytes | Callable[[], bytes] | None = None
        if self.keys:
            password = self.keys.pem_password
        elif self.meta.get("keys_protected"):
            password = key_passphrase
        self.keyring = KeyRing(self.root / "keys", password, self.keys.key_file_name if self.keys else None)
        self.ledger = Ledger(self.root / "ledger.jsonl", self.keyring, self.keys)
        # every commit that changes evidence-carrying rows seals them in the ledger first (store/seals.py)
        self.sessions: sessionmaker[SealingSession] = sessionmaker(
            self.engine, class_=SealingSession, expire_on_commit=False,
            info={"ledger": self.ledger, "actor": default_actor()})
        self.reports = self.root / "reports"

    def _refuse_lost_database(self) -> None:
        """A case's SQLite file that is gone or empty is never silently replaced by a fresh, empty one: the
        case would then list nothing and every command would still exit 0. Nor is one that a recovery
        (store/recover.py) began to rebuild and did not finish."""
        if (self.root / "recover.unfinished").exists():
            raise CaseError("a rebuild of the case database (`custodes recover`) was interrupted and the database is "
                            f"incomplete; nothing was changed since. Run `custodes recover {self.root}` again to "
                            "finish it")
        if self.db_url != sqlite_url(self.root):
            return
        db = self.root / "custodes.db"
        wal = self.root / "custodes.db-wal"
        if db.is_file() and (db.stat().st_size > 0 or (wal.is_file() and wal.stat().st_size > 0)):
            return
        state = "is missing" if not db.exists() else "is empty (0 bytes)"
        raise CaseError(f"the case database {db} {state}: it was lost or damaged, and nothing was changed. "
                        f"Restore custodes.db from a backup, or rebuild it from the ledger and the stored "
                        f"objects with `custodes recover {self.root}`")

    @property
    def id(self) -> str:
        return str(self.meta["case_id"])

    @classmethod
    def init(cls, root: Path, actor: str, title: str = "", db_url: str | None = None,
             secret: str | None = None, objects: Any = None, protect_keys: bool = False) -> Case:
        """Create a case; with ``secret`` (a passphrase) everything in it is encrypted at rest.

        ``db_url`` (default: ``CUSTODES_DB``, else SQLite inside the case) may name a PostgreSQL
        database; ``{case_id}`` in it is replaced, so one server URL gives every case its own database,
        which is created when missing. The password is never written to case.json. ``objects`` (an
        ``S3Location``) puts the originals on S3-compatible storage with Object Lock.
        """
        root = root.resolve()
        if (root / CASE_FILE).exists():
            raise CaseError(f"{root} is already a case")
        if root.exists() and any(root.iterdir()):
            raise CaseError(f"{root} exists and is not empty; choose a new directory for the case")
        case_id = str(uuid.uuid4())
        if secret is not None and db_url:
            raise CaseError("an encrypted case keeps its database inside the case (SQLCipher); "
                            "--encrypt cannot be combined with --db")
        if objects is not None:
            if secret is not None:
                raise CaseError("an encrypted case keeps its objects inside the case; --encrypt cannot be "
                                "combined with --objects s3://…")
            from custodes.store.objects import ObjectStoreError
            from custodes.store.s3 import S3ObjectStore

            try:
                S3ObjectStore(root / "objects", objects).check_bucket()
            except ObjectStoreError as exc:
                raise CaseError(str(exc)) from exc
        if db_url == "sqlite":  # explicitly the file inside the case, whatever CUSTODES_DB says
            db_url = None
        elif db_url is None and secret is None:
            db_url = os.environ.get("CUSTODES_DB") or None
        if db_url:
            try:
                db_url = normalize_url(db_url.replace("{case_id}", case_id.replace("-", "_")))
                if is_server(db_url):
                    ensure_database(db_url)
                    refuse_used_database(db_url)
            except (DatabaseURLError, OperationalError) as exc:
                raise CaseError(f"cannot use database {public_url(db_url)}: {exc}") from exc
        # an encrypted case protects the keys with the case key already; asked before anything is written
        key_secret = key_passphrase(confirm=True) if protect_keys and secret is None else None
        root.mkdir(parents=True, exist_ok=True)  # only now: a refused init leaves nothing behind
        meta = {
            "case_id": case_id,
            "title": title or root.name,
            "created": utcnow(),
            "format": FORMAT_VERSION,
            "custodes_version": __version__,
        }
        if db_url:
            meta["db_url"] = public_url(db_url)
        if objects is not None:
            meta["objects"] = objects.as_meta()
        if key_secret is not None:
            meta["keys_protected"] = True
        keys = None
        if secret is not None:
            try:
                master, meta["encryption"] = new_case_key(secret)
            except CryptoError as exc:
                raise CaseError(str(exc)) from exc
            keys = CaseKeys(master)
        for sub in ("objects", "objects/.tmp", "reports"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "keys").mkdir(mode=0o700, exist_ok=True)
        write_case_file(root, meta)
        case = cls(root, db_url=db_url, keys=keys, new_database=True)
        if key_secret is not None:
            case.keyring._password = key_secret
        migrate(case.engine)
        case.ledger.append(actor, "case.create", None, {"case_id": meta["case_id"], "title": meta["title"],
                                                         "custodes_version": __version__,
                                                         "case_file_sha256": case_file_digest(root)})
        return case

    def rekey(self, new_secret: str, actor: str) -> None:
        """Wrap the case key under a new passphrase; case.json is replaced atomically."""
        if self.keys is None:
            raise CaseError("this case is not encrypted")
        from custodes.store.crypto import rewrap_case_key

        try:
            block = rewrap_case_key(self.keys.master, new_secret)
        except CryptoError as exc:
            raise CaseError(str(exc)) from exc
        meta = {**self.meta, "encryption": block}
        write_case_file(self.root, meta)
        self.meta = meta
        self.ledger.append(actor, "case.rekey", None, {"kdf": block["kdf"]["name"],
                                                       "case_file_sha256": case_file_digest(self.root)})

    def scratch_dir(self) -> Path:
        """A new private folder for plaintext temporaries (a redacted copy before it is stored); the caller
        removes it when done.

        An encrypted case keeps them in memory-backed /dev/shm when there is one, so no plaintext footage ever
        reaches the disk; otherwise inside the store's .tmp. Each folder is named by the process that made it,
        and folders of processes that are gone (killed mid-redaction) are removed here first, so no plaintext
        temporary outlives the next use of the case.
        """
        shm = Path("/dev/shm")
        if self.keys and shm.is_dir() and os.access(shm, os.W_OK):
            import hashlib

            base = shm / f"custodes-{hashlib.sha256(self.keys.sub('scratch')).hexdigest()[:16]}"
        else:
            base = self.store.tmp_dir
            self.store.check_tmp_dir()
        if base.is_symlink():
            raise CaseError(f"{base} is a link: remove it (Custodes keeps temporaries only in a real folder)")
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in base.iterdir():
            if old.is_dir() and not old.is_symlink() and not temp_in_use(old) and old.name[:1].isdigit():
                shutil.rmtree(old, ignore_errors=True)
        import tempfile

        return Path(tempfile.mkdtemp(prefix=temp_prefix(), dir=base))

    def ensure_schema(self) -> None:
        """Bring the schema up to date; a database without one (emptied, or a server database dropped and
        re-created) is refused, never filled with fresh empty tables."""
        revision = self.schema_revision()
        if revision is None:
            raise CaseError(f"the case database {public_url(self.db_url)} holds no Custodes tables: it was lost, "
                            "emptied or replaced, and nothing was changed. Restore it from a backup, or rebuild it "
                            f"from the ledger and the stored objects with `custodes recover {self.root}`")
        if revision not in known_revisions():
            raise CaseError(f"this case's database is at schema {revision!r}, which Custodes {__version__} does "
                            "not know: it was made or upgraded by a newer version. Nothing was changed; use that "
                            "version (or newer) on this case")
        migrate(self.engine)

    def schema_revision(self) -> str | None:
        """The schema's alembic revision; None when the database has no Custodes tables (errors propagate)."""
        from sqlalchemy import inspect

        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    @contextmanager
    def exclusive(self, what: str, wait: bool = False) -> Iterator[None]:
        """One writer at a time per case for long jobs (ingest), across processes; ``wait`` queues behind the
        other one instead of refusing (short steps, such as issuing the C2PA certificates)."""
        fd = os.open(self.root / f".{what}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise CaseError(f"another `{what}` is running on this case; wait for it to finish") from exc
            yield
        finally:
            os.close(fd)

    def display_names(self, shas: Iterable[str] | None = None) -> dict[str, str]:
        """Each object's name as first received (its earliest provenance row), for people to read."""
        from custodes.store.db import Provenance

        q = select(Provenance.sha256, Provenance.original_name).order_by(Provenance.recorded_at)
        if shas is not None:
            q = q.where(Provenance.sha256.in_(list(shas)))
        names: dict[str, str] = {}
        with self.sessions() as s:
            for sha, name in s.execute(q):
                names.setdefault(sha, name)
        return names

    def count(self, model: Any) -> int:
        from sqlalchemy import func

        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

"""Case database: SQLAlchemy 2 models. The schema is owned by Alembic migrations
(``store/migrations``) from day one so a case can later move to PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Batch(Base):
    """One run of ``custodes ingest`` (or its resumption under the same note)."""

    __tablename__ = "batches"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    note: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(64))
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EvidenceObject(Base):
    """One stored file, named by its SHA-256. Many provenance rows may point here."""

    __tablename__ = "objects"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # "file" | "archive"
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ledger_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Provenance(Base):
    """Where a copy of an object came from: path, name, mtime, size, archive member."""

    __tablename__ = "provenance"
    __table_args__ = (
        UniqueConstraint("source_path", "member_path", "sha256", "mtime_ns", name="uq_provenance_origin"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    source_path: Mapped[str] = mapped_column(Text)  # absolute path on the source drive (or archive)
    member_path: Mapped[str] = mapped_column(Text, default="")  # "" for plain files; "a.zip!/x/y.mp4"
    original_name: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    parent_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ledger_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # hex of the name's bytes where the readable name is not simply their UTF-8 (ingest/names.py): of the
    # whole path for a file on disk, of the member's name in its archive for a member
    raw_name: Mapped[str | None] = mapped_column(Text, nullable=True)


class Rejection(Base):
    """A source file or archive member that was refused or could not be read, and why."""

    __tablename__ = "rejections"
    __table_args__ = (UniqueConstraint("source_path", "member_path", "reason", name="uq_rejection"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    source_path: Mapped[str] = mapped_column(Text)
    member_path: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ledger_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    raw_name: Mapped[str | None] = mapped_column(Text, nullable=True)  # as in Provenance


class MediaProbe(Base):
    """What PyAV could read from a stored object: container, streams, timing, tags."""

    __tablename__ = "media"
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # "ok" | "unreadable" | "not_media"
    reason: Mapped[str] = mapped_column(Text, default="")
    container: Mapped[str | None] = mapped_column(String(64), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    video_codec: Mapped[str | None] = mapped_column(String(64), nullable=True)
    audio_codec: Mapped[str | None] = mapped_column(String(64), nullable=True)
    creation_time: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    streams: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    probe_version: Mapped[str] = mapped_column(String(32))
    probed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def sqlite_url(case_dir: Path) -> str:
    return f"sqlite:///{case_dir / 'custodes.db'}"


class DatabaseURLError(ValueError):
    pass


def normalize_url(url: str) -> str:
    """``postgresql://…`` means the psycopg 3 driver; SQLite URLs pass through."""
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception as exc:
        raise DatabaseURLError(f"not a database URL: {url!r}") from exc
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise DatabaseURLError("PostgreSQL needs the driver: pip install 'custodes[postgres]'") from exc
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if u.drivername.startswith("sqlite"):
        return url
    raise DatabaseURLError(f"unsupported database {u.drivername!r}: use sqlite:///… or postgresql://…")


def public_url(url: str) -> str:
    """The URL without its password, as stored in case.json (libpq reads PGPASSWORD or ~/.pgpass)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=None).render_as_string(hide_password=False)


def is_server(url: str) -> bool:
    return not url.startswith("sqlite")


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database named in ``url`` if it does not exist; True when created."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    u = make_url(url)
    name = u.database or ""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise DatabaseURLError(f"database name {name!r}: letters, digits, _ and - only")
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                return False
            # UTF-8 with a Unicode-aware ctype: full-text search lower-cases Cyrillic as well as Latin.
            conn.execute(text(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' LC_COLLATE \'C.UTF-8\' '
                              f"LC_CTYPE 'C.UTF-8' TEMPLATE template0"))
            return True
    finally:
        admin.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")  # first: switching to WAL waits for other connections too
    # WAL + synchronous=FULL: a committed row survives kill -9 and power loss.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, sqlcipher_key: str | None = None, low_space: bool = False) -> Engine:
    """An engine for ``url``. With ``sqlcipher_key`` the SQLite file is a SQLCipher database (encrypted case).

    ``low_space`` (the case's disk is full): SQLite in exclusive locking mode, one connection per thread. WAL
    readers share an index in the -shm file, which a full disk cannot extend: every read would fail with
    "disk I/O error". In exclusive mode SQLite keeps that index in memory instead, so a case on a full disk
    can still be verified, listed and exported from (one process at a time)."""
    if sqlcipher_key is not None:
        if not url.startswith("sqlite"):
            raise ValueError("an encrypted case keeps its database in SQLCipher; a server database is not supported")
    else:
        url = normalize_url(url)
        if is_server(url):
            return create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)
    # hide_parameters: an error message (a crash file) must not carry a note's text or a pseudonym
    options: dict[str, Any] = {"future": True, "hide_parameters": True}
    if sqlcipher_key is not None:
        import sqlcipher3

        options["module"] = sqlcipher3
    if low_space:
        from sqlalchemy.pool import SingletonThreadPool

        options["poolclass"] = SingletonThreadPool
    engine = create_engine(url, **options)

    def on_connect(dbapi_conn: Any, record: Any) -> None:
        cur = dbapi_conn.cursor()
        if sqlcipher_key is not None:
            cur.execute(f"PRAGMA key = {sqlcipher_key}")  # must be the first statement on the connection
        if low_space:
            cur.execute("PRAGMA locking_mode=EXCLUSIVE")  # before the first read: no -shm index needed
        cur.close()
        _sqlite_pragmas(dbapi_conn, record)

    event.listen(engine, "connect", on_connect)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


class AnalysisRun(Base):
    """Which analysis ran on which object with which version: re-runs skip what is current."""

    __tablename__ = "analysis_runs"
    __table_args__ = (UniqueConstraint("sha256", "analyzer", "version", name="uq_analysis_run"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    analyzer: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # "ok" | "failed"
    error: Mapped[str] = mapped_column(Text, default="")
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)  # >1 when a worker died and the video was retried
    worker: Mapped[str] = mapped_column(String(128), default="")  # host:pid that produced the result


class Job(Base):
    """One run of a long job (triage …): who started it, on which engine, what became of it.

    Together with ``analysis_runs`` (which video, which analyzer version, which job) this says
    what ran on what; a job still marked ``running`` when the next one starts was killed and is
    marked ``interrupted`` (its finished videos are kept, the rest are redone).
    """

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    engine: Mapped[str] = mapped_column(String(16))  # "local" | "ray"
    address: Mapped[str] = mapped_column(String(200), default="")
    workers: Mapped[int] = mapped_column(Integer, default=1)
    actor: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # running | done | interrupted
    host: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Signal(Base):
    """A time-ranged value one analyzer produced for one video (seconds from its start)."""

    __tablename__ = "signals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    analyzer: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Segment(Base):
    """A time-coded stretch of one video for the review queue, with its score and reasons."""

    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float, index=True)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Recording(Base):
    """When and by which camera a video was recorded, as read from its overlay or metadata."""

    __tablename__ = "recordings"
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), primary_key=True)
    camera_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    start_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=False), nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=False), nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # "overlay" | "metadata" | "none"
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    version: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FrameHash(Base):
    """A perceptual hash of one sampled frame of a video (PDQ, 256 bits)."""

    __tablename__ = "frame_hashes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    t: Mapped[float] = mapped_column(Float)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    quality: Mapped[int] = mapped_column(Integer)


class HashBand(Base):
    """16-bit slices of frame hashes: the index that finds near-identical frames without a pairwise scan."""

    __tablename__ = "hash_bands"
    __table_args__ = (Index("ix_hash_bands_lookup", "band", "value"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    frame_id: Mapped[int] = mapped_column(ForeignKey("frame_hashes.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    band: Mapped[int] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(Integer)


class TranscriptSegment(Base):
    """One stretch of transcribed speech, with word timestamps."""

    __tablename__ = "transcripts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    avg_logprob: Mapped[float] = mapped_column(Float)
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    version: Mapped[str] = mapped_column(String(32))
    # English machine translation of non-English speech (Whisper's translate task); NULL where none
    translation: Mapped[str | None] = mapped_column(Text, nullable=True)


class Complaint(Base):
    """A complaint or allegation from a register: when, where, who, what."""

    __tablename__ = "complaints"
    __table_args__ = (UniqueConstraint("source_sha256", "row", name="uq_complaint_row"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"))  # the imported register, as evidence
    row: Mapped[int] = mapped_column(Integer)
    ref: Mapped[str] = mapped_column(String(64), default="")
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    facility: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(Text, default="")
    camera: Mapped[str] = mapped_column(String(64), default="")
    person: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")


class User(Base):
    """A person who works on this case in the review app. Roles: admin, investigator, reviewer, viewer."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    safe_viewing: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    played: Mapped[list[str]] = mapped_column(JSON, default=list)  # items whose playback is already audited


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Annotation(Base):
    """A time-ranged label on a video. Append-only: an edit is a new row that supersedes an older
    one, so two reviewers editing at once never lose each other's work."""

    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(32))
    people: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    supersedes: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Derivative(Base):
    """A new object made from an original (redacted copy, cut, proxy). The original is never changed."""

    __tablename__ = "derivatives"
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), primary_key=True)
    parent_sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SealMark(Base):
    """A ``records.seal`` ledger event whose rows were committed (written in the same transaction)."""

    __tablename__ = "seal_marks"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class VideoFingerprint(Base):
    """A video-level TMK descriptor (float16, numpy .npz bytes)."""

    __tablename__ = "video_fingerprints"
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    frames: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Review(Base):
    """A reviewer's verdict on one flagged stretch of a file (web workspace). Append-only, like annotations.

    A verdict is about the span it judged (``sha256``, ``start_s``–``end_s`` of the segment when it was given),
    not about a segment's row: triage run again replaces the segments (new ids), and a segment's state is the
    newest review over the same span (``custodes.web.review.same_span``), never one about another time range.
    ``segment_id`` is the segment it was given on, a hint only. States are in ``custodes.web.review.STATES``."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(32))
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")


class UserPrefs(Base):
    """A user's interface settings (safe viewing: blur, grey, mute; language). Not evidence, not sealed."""

    __tablename__ = "user_prefs"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DupeMatch(Base):
    """A near-duplicate pair found by one run of ``custodes dupes`` (a finding, sealed like segments): ``a`` (the
    shorter) lies in ``b`` at ``b_time = rate · a_time + offset_s``. A re-run replaces every row of the previous run
    in one sealed commit with a signed ``dupes.run`` event naming both runs."""

    __tablename__ = "dupe_matches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    a: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    b: Mapped[str] = mapped_column(ForeignKey("objects.sha256"), index=True)
    offset_s: Mapped[float] = mapped_column(Float)
    rate: Mapped[float] = mapped_column(Float, default=1.0)
    match: Mapped[float] = mapped_column(Float)  # share of a's frames matching at that alignment
    views: Mapped[str] = mapped_column(String(80))
    transforms: Mapped[list[str]] = mapped_column(JSON, default=list)  # in words, with the files' names
    frames: Mapped[list[dict[str, float]]] = mapped_column(JSON, default=list)  # matched frame times a_t, b_t
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

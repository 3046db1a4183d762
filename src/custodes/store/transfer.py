"""``custodes migrate``: move a case's database between SQLite and PostgreSQL without loss.

The target gets the same Alembic schema, then every row of every model table, in
foreign-key order, inside one transaction on PostgreSQL (a killed move leaves an
empty database and can simply be run again) or into a temporary SQLite file that
is renamed into place at the end. Before the case is switched over, each table is
compared row by row (a digest of its rows in primary-key order, values
normalised: times in UTC, JSON canonical), so "without loss" is checked, not
assumed. The old SQLite file is kept, renamed, and the move is a ledger event.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Table, func, select, text

from custodes.store import faults
from custodes.store.case import (
    Case,
    CaseError,
    case_file_records,
    case_file_text_digest,
    refuse_used_database,
    write_case_file,
)
from custodes.store.db import (
    Base,
    DatabaseURLError,
    ensure_database,
    is_server,
    make_engine,
    normalize_url,
    public_url,
    sqlite_url,
)

BATCH = 2000


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _order(table: Table) -> list[Any]:
    return list(table.primary_key.columns) or list(table.columns)


def table_digest(conn: Connection, table: Table) -> tuple[int, str]:
    """(rows, SHA-256 over the rows in primary-key order with normalised values)."""
    h = hashlib.sha256()
    n = 0
    for row in conn.execute(select(table).order_by(*_order(table))):
        h.update(json.dumps([_norm(v) for v in row], sort_keys=True, default=str, ensure_ascii=False).encode())
        h.update(b"\n")
        n += 1
    return n, h.hexdigest()


def _rows(conn: Connection, table: Table, to_server: bool) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in conn.execute(select(table).order_by(*_order(table))).mappings():
        d = dict(row)
        for k, v in d.items():
            if isinstance(v, datetime):
                # SQLite keeps UTC without a zone; PostgreSQL keeps the zone: make both say UTC
                d[k] = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
                if not to_server:
                    d[k] = d[k].replace(tzinfo=None)
        batch.append(d)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _upgrade(conn: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def _reset_sequences(conn: Connection) -> None:
    for table in Base.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and pk[0].autoincrement is not False and pk[0].type.python_type is int:
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                              f"COALESCE(MAX({pk[0].name}), 1), MAX({pk[0].name}) IS NOT NULL) FROM {table.name}"))


def _copy(src: Connection, dst: Connection, to_server: bool, progress: Callable[[str, int], None]) -> None:
    _upgrade(dst)
    for table in Base.metadata.sorted_tables:
        for batch in _rows(src, table, to_server):
            dst.execute(table.insert(), batch)
            progress(table.name, len(batch))
    if to_server:
        _reset_sequences(dst)


def _holds_exact_copy(src: Connection, dst_engine: Any) -> bool:
    try:
        with dst_engine.connect() as dst:
            return all(table_digest(src, t) == table_digest(dst, t) for t in Base.metadata.sorted_tables)
    except Exception:  # tables missing or of another shape: not our copy
        return False


def migrate_database(case: Case, target: str, actor: str,
                     progress: Callable[[str, int], None] = lambda t, n: None) -> dict[str, Any]:
    if case.keys is not None:
        raise CaseError("an encrypted case keeps its database inside the case (SQLCipher); it cannot move")
    case.ensure_schema()
    try:
        url = sqlite_url(case.root) if target == "sqlite" else \
            normalize_url(target.replace("{case_id}", case.id.replace("-", "_")))
    except DatabaseURLError as exc:
        raise CaseError(str(exc)) from exc
    if public_url(url) == public_url(normalize_url(case.db_url)):
        raise CaseError("the case already uses that database")
    to_server = is_server(url)
    total = 0
    with case.exclusive("ingest"), case.exclusive("triage"), case.exclusive("migrate"):
        with case.engine.connect() as src:
            tables = {t.name: src.execute(select(func.count()).select_from(t)).scalar_one()
                      for t in Base.metadata.sorted_tables}
            total = sum(tables.values())
            progress("total", total)
            if to_server:
                try:
                    ensure_database(url)
                except Exception as exc:
                    raise CaseError(f"cannot reach {public_url(url)}: {exc}") from exc
                dst_engine = make_engine(url)
                try:
                    refuse_used_database(url)
                except CaseError:
                    # an earlier run killed after its copy committed (the copy is one transaction: all or
                    # nothing) left exactly this case's rows there: take them, instead of a manual DROP DATABASE
                    if not _holds_exact_copy(src, dst_engine):
                        raise
                else:
                    with dst_engine.begin() as dst:  # one transaction: all or nothing
                        _copy(src, dst, True, progress)
                faults.point("migrate.after_copy")
            else:
                final = Path(url.removeprefix("sqlite:///"))
                if final.exists():
                    raise CaseError(f"{final} exists; move it away first")
                part = final.with_name(final.name + ".part")
                part.unlink(missing_ok=True)
                dst_engine = make_engine(f"sqlite:///{part}")
                with dst_engine.begin() as dst:
                    _copy(src, dst, False, progress)
                dst_engine.dispose()
                os.replace(part, final)
                dst_engine = make_engine(url)
            # the proof: every table, row by row, as read back from the target
            mismatched = []
            with dst_engine.connect() as dst:
                for table in Base.metadata.sorted_tables:
                    if table_digest(src, table) != table_digest(dst, table):
                        mismatched.append(table.name)
        if mismatched:
            dst_engine.dispose()
            raise CaseError(f"the copy differs from the original in {', '.join(mismatched)}; the case still "
                            "uses its old database")
        old_url = case.db_url
        meta = dict(case.meta)
        if url == sqlite_url(case.root):
            meta.pop("db_url", None)
        else:
            meta["db_url"] = public_url(url)
        digest = hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()
        moved_from = public_url(normalize_url(old_url)) if is_server(old_url) else "sqlite"
        moved_to = public_url(url) if to_server else "sqlite"
        # The signed event first, naming the case.json about to be written; then the switch. A kill between
        # the two leaves the case on its old database with an event that did not take effect yet: verify warns
        # (case.migrate_unfinished), and the rerun only switches, under the same event.
        new_digest = case_file_text_digest(meta)
        recorded = case_file_records(case.ledger.entries())
        if not (recorded and recorded[-1][1]["action"] == "case.migrate" and recorded[-1][0] == new_digest):
            case.ledger.append(actor, "case.migrate", None, {"from": moved_from, "to": moved_to, "rows": tables,
                                                             "rows_digest": digest, "case_file_sha256": new_digest})
        faults.point("migrate.before_switch")
        write_case_file(case.root, meta)
        case.engine.dispose()
        kept = None
        if not is_server(old_url):
            old = Path(normalize_url(old_url).removeprefix("sqlite:///"))
            if old.exists():
                kept = old.with_name(f"{old.name}.before-migrate-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
                for suffix in ("", "-wal", "-shm"):
                    p = Path(str(old) + suffix)
                    if p.exists():
                        os.replace(p, Path(str(kept) + suffix))
    moved = Case(case.root, db_url=url)
    from custodes.search.index import reindex

    reindex(moved)
    return {"from": moved_from, "to": moved_to, "rows": total, "tables": tables,
            "old_sqlite_kept_as": str(kept) if kept else None}

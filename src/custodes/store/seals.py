"""Every record that carries evidence or a finding is bound to the signed ledger.

The database is an index that the ledger vouches for. Rows are grouped by what they are about (a table and
one evidence object, or one user, or one refusal); a commit that changed any group first appends one signed
``records.seal`` event with the digest of each changed group as it is about to be committed, then commits
the rows together with a mark of that event (``seal_marks``). ``verify`` recomputes every group's digest and
compares it with the latest seal that took effect:

- a group whose rows differ from its seal: ``record.mismatch`` (an edit, a lowered score, a deleted row);
- rows in a group that no seal covers: ``record.unlogged`` (rows planted by hand);
- a seal whose commit failed is ended at once by a signed ``records.seal.void``; a seal without its mark and
  without a void is ``record.uncommitted``, a problem: the process was killed between the two steps, or
  someone deleted the mark (and the rows) from the database — the database alone cannot tell which, so a
  person who knows of the kill says so with ``custodes ledger void-seal`` (a signed event naming them);
- a mark that names a ledger entry the ledger no longer holds: ``ledger.truncated`` (the ledger was cut
  back to an earlier prefix), or holds with another hash: ``ledger.rewritten``.

Seals are written under the ledger's lock, from the digest to the commit, so two writers cannot seal each
other's half-finished state. Digests use the same value normalisation as a migration between SQLite and
PostgreSQL, so a migrated case verifies against the seals written before it moved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from custodes.store import faults
from custodes.store.db import (
    Annotation,
    Complaint,
    Derivative,
    DupeMatch,
    EvidenceObject,
    MediaProbe,
    Provenance,
    Recording,
    Rejection,
    Review,
    SealMark,
    Segment,
    Signal,
    TranscriptSegment,
    User,
)

# table -> (model, the column that groups its rows)
SEALED: dict[str, tuple[Any, str]] = {
    m.__tablename__: (m, col) for m, col in (
        (EvidenceObject, "sha256"), (Provenance, "sha256"), (Rejection, "id"), (MediaProbe, "sha256"),
        (Recording, "sha256"), (Segment, "sha256"), (Signal, "sha256"), (TranscriptSegment, "sha256"),
        (Annotation, "sha256"), (Derivative, "sha256"), (Complaint, "source_sha256"), (User, "name"),
        (Review, "sha256"), (DupeMatch, "a"),
    )
}
SEALED_MODELS = {model: (table, col) for table, (model, col) in SEALED.items()}
ACTION = "records.seal"
VOID = "records.seal.void"
RECOVER = "case.recover"


def _norm(value: Any) -> Any:
    from custodes.store.transfer import _norm as norm

    return norm(value)


# Columns added after seals were first written: left out of a row's digest while NULL, so that the rows of
# an older case still match the seals written before the column existed.
LATE_COLUMNS = {"raw_name", "translation"}


def _text(values: dict[str, Any]) -> str:
    values = {k: _norm(v) for k, v in values.items() if not (k in LATE_COLUMNS and v is None)}
    return json.dumps(values, sort_keys=True, default=str, ensure_ascii=False)


def row_text(model: Any, row: Any) -> str:
    return _text({c.key: getattr(row, c.key) for c in inspect(model).column_attrs})


def _group_texts(s: Session, table: str, keys: list[str] | None = None) -> dict[str, list[str]]:
    """The row texts of a table's groups (of ``keys``, or all), read as plain rows: building ORM objects for
    every row of a commit of hundreds of files cost more than the rest of its seal."""
    model, col = SEALED[table]
    attrs = [(c.key, c.columns[0]) for c in inspect(model).column_attrs]
    at = [k for k, _ in attrs].index(col)
    stmt = select(*[c for _, c in attrs])
    if keys is not None:
        stmt = stmt.where(getattr(model, col).in_(keys))
    texts: dict[str, list[str]] = {}
    for row in s.execute(stmt):
        texts.setdefault(str(row[at]), []).append(_text({k: v for (k, _), v in zip(attrs, row, strict=True)}))
    return texts


def _digest(rows: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest() if rows else ""


def group_digest(s: Session, table: str, key: str) -> str:
    """SHA-256 over the group's rows (sorted, normalised); "" when the group has no rows."""
    return _digest(_group_texts(s, table, [key]).get(key, []))


def group_digests(s: Session, groups: list[tuple[str, str]]) -> dict[str, str]:
    """``group_digest`` of many groups, one query per table and few hundred keys (a commit of many files)."""
    by_table: dict[str, list[str]] = {}
    for table, key in groups:
        by_table.setdefault(table, []).append(key)
    out: dict[str, str] = {}
    for table, keys in by_table.items():
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            texts = _group_texts(s, table, part)
            for key in part:
                out[group_name(table, key)] = _digest(texts.get(key, []))
    return dict(sorted(out.items()))


def group_name(table: str, key: str) -> str:
    return f"{table}:{key}"


def split_group(name: str) -> tuple[str, str]:
    table, _, key = name.partition(":")
    return table, key


def all_groups(s: Session) -> dict[str, str]:
    """Every group in the database with its digest (one pass per table)."""
    out: dict[str, str] = {}
    for table in SEALED:
        for key, rows in _group_texts(s, table).items():
            out[group_name(table, key)] = _digest(rows)
    return out


def touch(s: Session, model: Any, key: str) -> None:
    """Mark a group changed by a statement the ORM does not see (a bulk ``delete``)."""
    table, _ = SEALED_MODELS[model]
    s.info.setdefault("sealed_touched", set()).add((table, str(key)))


def track_flush(s: Session) -> None:
    """Before a flush: note the groups that the new, changed and deleted rows belong to."""
    touched = s.info.setdefault("sealed_touched", set())
    for obj in [*s.new, *s.dirty, *s.deleted]:
        hit = SEALED_MODELS.get(type(obj))
        if hit is None:
            continue
        table, col = hit
        value = getattr(obj, col, None)
        if value is not None:
            touched.add((table, str(value)))
        hist = inspect(obj).attrs[col].history
        for old in hist.deleted or ():
            if old is not None:
                touched.add((table, str(old)))


@dataclass
class SealState:
    """What the ledger says each group should hold, and which seals never took effect."""

    expected: dict[str, tuple[str, int]]  # group -> (digest, seq of the seal)
    uncommitted: list[tuple[int, list[int]]]  # unmarked seals nobody voided, with the action events they carried
    voided: list[tuple[int, list[int], str]]  # unmarked seals ended by a signed void: (seq, events, why)
    any_seal: bool
    # groups sealed before the last database recovery that no seal after it covers: (group, seal seq, recovery seq)
    lost: list[tuple[str, int, int]] = field(default_factory=list)


def read_seals(entries: Iterable[dict[str, Any]], marks: set[int]) -> SealState:
    ordered = list(entries)
    voids = {int((e.get("details") or {}).get("seal", -1)): str((e.get("details") or {}).get("reason", ""))
             for e in ordered if e.get("action") == VOID}
    expected: dict[str, tuple[str, int]] = {}
    uncommitted: list[tuple[int, list[int]]] = []
    voided: list[tuple[int, list[int], str]] = []
    any_seal = False
    pending: dict[int, tuple[set[str], list[int]]] = {}  # unmarked, unvoided seals: groups not yet re-sealed
    before_recovery: dict[str, tuple[str, int]] = {}
    recovery = -1
    for e in ordered:
        if e.get("action") == RECOVER:
            # the database was rebuilt (store/recover.py): its marks and rows start again from here; what the
            # seals before it vouched for is history, and what was not rebuilt is named, not a problem
            before_recovery.update(expected)
            expected, pending, recovery = {}, {}, e["seq"]
            uncommitted, voided = [], []
            continue
        if e.get("action") != ACTION:
            continue
        any_seal = True
        events = list((e.get("details") or {}).get("events") or [])
        groups = (e.get("details") or {}).get("groups", {})
        if e["seq"] not in marks:
            if e["seq"] in voids:
                voided.append((e["seq"], events, voids[e["seq"]]))
            else:
                pending[e["seq"]] = (set(groups), events)
            continue
        for g, digest in groups.items():
            expected[g] = (digest, e["seq"])
        for left, _ in pending.values():
            left.difference_update(groups)
    for seq, (left, events) in pending.items():
        if left or events:
            uncommitted.append((seq, events))
        else:
            # every group it sealed was sealed again by a commit that took effect (an interrupted ingest, resumed):
            # nothing can be rolled back to it, and it carried no action
            voided.append((seq, [], "interrupted; every group it named was sealed again later"))
    lost = [(g, seq, recovery) for g, (digest, seq) in sorted(before_recovery.items())
            if digest and g not in expected]
    return SealState(expected, uncommitted, voided, any_seal, lost)


def seal_before_commit(s: Session, ledger: Any, actor: str, events: list[int] | None = None) -> dict[str, Any] | None:
    """Append the seal for this transaction's changed groups and stage its mark. The caller holds the
    ledger's lock until the commit has finished (or failed)."""
    s.flush()
    touched = s.info.pop("sealed_touched", set())
    if not touched and not events:
        return None
    groups = group_digests(s, sorted(touched))
    details: dict[str, Any] = {"groups": groups}
    if events:
        details["events"] = events  # the action events that take effect with this commit, or not at all
    entry: dict[str, Any] = ledger.append(actor, ACTION, None, details)
    s.add(SealMark(seq=entry["seq"], hash=entry["hash"]))
    s.flush()
    s.info.pop("sealed_touched", None)  # the mark itself is no finding
    return entry


class SealingSession(Session):
    """A session whose commits seal the evidence-carrying rows they change (see the module docstring).

    ``log`` queues an action event (an annotation, a redaction) to be appended with the seal, before the
    commit and under the same lock: no kill can leave the rows without the event that says who made them.
    """

    def log(self, actor: str, action: str, subject: str | None,
            details: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Append this event when the session commits (``details`` may be a function, called after the flush,
        when new rows have their ids)."""
        self.info.setdefault("pending_events", []).append((actor, action, subject, details))

    def commit(self) -> None:
        ledger = self.info.get("ledger")
        if ledger is None:
            return super().commit()
        self.flush()
        events = self.info.pop("pending_events", [])
        if not self.info.get("sealed_touched") and not events:
            return super().commit()
        with ledger.hold():
            seqs = [ledger.append(actor, action, subject, details() if callable(details) else details)["seq"]
                    for actor, action, subject, details in events]
            seal = seal_before_commit(self, ledger, self.info.get("actor") or "custodes", seqs)
            faults.point("seal.before_commit")
            try:
                faults.fail("seal.commit")
                super().commit()
            except BaseException as exc:
                if seal is not None:  # the rows were not committed: say so, signed, before anyone asks
                    ledger.append(self.info.get("actor") or "custodes", VOID, None, {
                        "seal": seal["seq"], "reason": f"commit failed: {type(exc).__name__}: {exc}"[:500]})
                self.rollback()
                raise
        return None


def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    track_flush(session)


def _bulk_statement(state: Any) -> None:
    """A bulk ``delete``/``update`` on a sealed table: the groups its WHERE names, else the whole table."""
    if not (state.is_delete or state.is_update):
        return
    table = getattr(state.statement.table, "name", None)
    if table not in SEALED:
        return
    _, col = SEALED[table]
    touched = state.session.info.setdefault("sealed_touched", set())
    keys = [node.right.value for node in visitors.iterate(state.statement.whereclause)
            if isinstance(node, BinaryExpression) and node.operator is operators.eq
            and getattr(node.left, "key", None) == col and isinstance(node.right, BindParameter)] \
        if state.statement.whereclause is not None else []
    if keys:
        touched.update((table, str(k)) for k in keys)
    else:  # cannot tell which groups: reseal every group the table has now
        model = SEALED[table][0]
        touched.update((table, str(k)) for (k,) in state.session.execute(select(getattr(model, col)).distinct()))


event.listen(SealingSession, "before_flush", _before_flush)
event.listen(SealingSession, "do_orm_execute", _bulk_statement)

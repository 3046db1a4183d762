"""``custodes recover``: a new case database rebuilt from the signed ledger and the stored objects.

The database is an index the ledger vouches for (store/seals.py), so when it is lost or damaged (a deleted
``-wal`` after a kill, a truncated file, a dropped server database) most of it can be rebuilt from what the
ledger recorded, and the rest recomputed from the objects:

- rebuilt from the ledger: batches, objects, provenance, refusals, redacted copies, annotations (label, time
  range, author, what they supersede; the note's text and the people are not in the ledger, only the note's
  hash, so a rebuilt annotation says so), review states (the file and stretch each verdict was about, its state,
  who and when, what it overrode; the note's text is not in the ledger, only its hash, so a rebuilt review with a
  note says so), complaints (from the register preserved as an object);
- recomputed from the objects: media probes;
- not rebuilt: triage results, recordings and transcripts (run ``triage`` and ``timeline`` again; the review
  states attach to the new segments by their stretch), review and annotation note texts, and review-app accounts
  (their passwords are not in the ledger: add them again with ``custodes user add``).

The damaged file is moved aside, never deleted. A signed ``case.recover`` event records what was moved, what
was rebuilt and what was not, before the rebuilt rows are committed with their own seal; ``verify`` checks
the rows against seals after that event and names what the recovery could not bring back as warnings.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect

from custodes.store.case import Case, CaseError, migrate
from custodes.store.db import (
    Annotation,
    Batch,
    Derivative,
    EvidenceObject,
    Provenance,
    Rejection,
    Review,
    sqlite_url,
)
from custodes.store.seals import ACTION as SEAL
from custodes.store.seals import VOID

ACTION = "case.recover"
NOT_REBUILT = ["triage results (run `custodes triage`)", "recordings and clock overlays (run `custodes timeline`)",
               "transcripts and the search index (run `custodes transcribe`)",
               "the texts of annotation and review notes (the ledger holds only their SHA-256; rebuilt rows say so)",
               "review-app accounts (passwords are not in the ledger: `custodes user add` again)"]


@dataclass
class RecoverReport:
    moved_aside: list[str] = field(default_factory=list)
    rebuilt: dict[str, int] = field(default_factory=dict)
    missing_objects: list[str] = field(default_factory=list)
    duplicate_ingest_events: list[str] = field(default_factory=list)
    skipped_events: list[int] = field(default_factory=list)  # seqs of events that never took effect
    not_rebuilt: list[str] = field(default_factory=lambda: list(NOT_REBUILT))
    # each review state rebuilt: the file and stretch it judged, the state, who, when (the note only by its hash)
    review_states: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _when(e: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(e["time"]).replace("Z", "+00:00"))


def _mtime_ns(d: dict[str, Any]) -> int:
    if isinstance(d.get("mtime_ns"), int):
        return int(d["mtime_ns"])
    t = datetime.fromisoformat(str(d["mtime"]))
    return int(t.timestamp()) * 10**9 + t.microsecond * 1000


def _move_aside(case: Case) -> list[str]:
    """Rename the damaged SQLite files (never delete them); a server database must be empty already."""
    if case.db_url != sqlite_url(case.root):
        with case.engine.connect() as conn:
            if inspect(conn).get_table_names():
                raise CaseError("the case's server database still holds tables; recovery writes into an empty "
                                "database only: keep a dump of it, drop and re-create it, then run recover again")
        return []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    n = 1
    while any((case.root / f"custodes.db.damaged-{stamp}{'' if n == 1 else f'-{n}'}{s}").exists()
              for s in ("", "-wal", "-shm")):
        n += 1  # never rename over a damaged file kept by an earlier recovery
    stamp = stamp if n == 1 else f"{stamp}-{n}"
    moved = []
    case.engine.dispose()
    for suffix in ("", "-wal", "-shm"):
        src = case.root / f"custodes.db{suffix}"
        if src.exists():
            dst = case.root / f"custodes.db.damaged-{stamp}{suffix}"
            src.rename(dst)
            moved.append(dst.name)
    return moved


MARKER = "recover.unfinished"


def _database_opens(case: Case) -> bool:
    try:
        case._refuse_lost_database()
        return case.schema_revision() is not None
    except Exception:  # noqa: BLE001 - any failure to open it is what recovery is for
        return False


def recover_case(root: Path, actor: str, secret: str | None = None, force: bool = False) -> RecoverReport:
    case = Case(root, secret=secret, new_database=True)
    lc = case.ledger.check()
    if lc.problems:
        raise CaseError(f"the ledger itself fails verification ({lc.problems[0].kind} at {lc.problems[0].where}): "
                        "recovery rebuilds from the ledger and cannot trust this one; restore the case from a "
                        "backup")
    marker = case.root / MARKER
    if not force and not marker.exists() and _database_opens(case):
        raise CaseError("the case database opens normally; recovery would set it aside and rebuild what the ledger "
                        "holds, losing what it does not (triage results, note texts, accounts). If it is damaged "
                        "in a way only `custodes verify` shows, run `custodes recover --force`")
    entries = [lc.by_seq[k] for k in sorted(lc.by_seq)]
    # every writer's lock: nothing may write into the database while it is set aside and rebuilt
    with case.exclusive("ingest"), case.exclusive("triage"), case.exclusive("migrate"):
        # While this marker exists every command refuses the case (store/case.py): a recovery killed half-way
        # never leaves an empty database that lists nothing and exits 0; running recover again finishes it.
        with open(marker, "w") as fh:
            fh.write(f"recovery started {time.strftime('%Y-%m-%dT%H:%M:%S')} by {actor}\n")
            fh.flush()
            os.fsync(fh.fileno())
        rep = RecoverReport()
        digests = {}
        for suffix in ("", "-wal"):
            p = case.root / f"custodes.db{suffix}"
            if p.is_file():
                digests[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
        rep.moved_aside = _move_aside(case)
        case = Case(root, keys=case.keys, new_database=True)  # a fresh engine on a fresh file
        migrate(case.engine)
        with case.sessions() as s:
            _rebuild(case, s, entries, rep)
            if case.engine.dialect.name == "postgresql":
                from custodes.store.transfer import _reset_sequences

                _reset_sequences(s.connection())  # ids were inserted as the ledger named them
            s.log(actor, ACTION, None, {
                "moved_aside": rep.moved_aside, "moved_aside_sha256": digests, "rebuilt": rep.rebuilt,
                "missing_objects": rep.missing_objects, "duplicate_ingest_events": rep.duplicate_ingest_events,
                "not_rebuilt": rep.not_rebuilt, "skipped_events": rep.skipped_events, "ledger_head": lc.head})
            s.commit()
    from custodes.ingest.pipeline import Ingestor

    prober = Ingestor(case, actor)
    prober._probe_pending()
    rep.rebuilt["media probes"] = sum(prober.report.media.values())
    marker.unlink(missing_ok=True)
    return rep


def _rebuild(case: Case, s: Any, entries: list[dict[str, Any]], rep: RecoverReport) -> None:
    counts: dict[str, int] = {}

    def count(what: str) -> None:
        counts[what] = counts.get(what, 0) + 1

    # events whose seal's commit is known to have failed (a signed void) never took effect: not rebuilt
    voided_seals = {int(e["details"].get("seal", -1)) for e in entries
                    if e["action"] == VOID and isinstance(e.get("details"), dict)}
    never = {int(k) for e in entries if e["action"] == SEAL and e["seq"] in voided_seals
             for k in (e.get("details") or {}).get("events") or []}
    annotations: dict[int, tuple[int, Annotation]] = {}
    reviews: dict[int, tuple[int, Review]] = {}
    complaints: set[tuple[str, int]] = set()  # (register, row) rebuilt
    batches: dict[str, Batch] = {}
    origins: set[tuple[str, str, str, int]] = set()
    objects: set[str] = set()

    def add_object(sha: str, kind: str, when: datetime) -> bool:
        if sha in objects:
            return True
        if not case.store.exists(sha):
            rep.missing_objects.append(sha)
            return False
        s.add(EvidenceObject(sha256=sha, size=case.store.size(sha), kind=kind, stored_at=when))
        s.flush()  # rows that name it by foreign key may follow in any order
        objects.add(sha)
        count("objects")
        return True

    def batch(bid: str, e: dict[str, Any]) -> None:
        if bid not in batches:  # an event of a batch whose start is not in the ledger (older cases)
            batches[bid] = Batch(id=bid, note="", actor=e["actor"], sources=[], started_at=_when(e))
            s.add(batches[bid])

    refusals: set[tuple[str, str, str]] = set()
    for e in entries:
        if e["seq"] in never:
            rep.skipped_events.append(e["seq"])
            continue
        raw = e.get("details")
        d: dict[str, Any] = raw if isinstance(raw, dict) else {}
        act = e["action"]
        if act == "batch.start" and d.get("batch"):
            batches[d["batch"]] = Batch(id=d["batch"], note=d.get("note", ""), actor=e["actor"],
                                        sources=list(d.get("sources") or []), started_at=_when(e))
            s.add(batches[d["batch"]])
            count("batches")
        elif act == "batch.end" and d.get("batch") in batches:
            batches[d["batch"]].finished_at = _when(e)
        elif act == "ingest" and d.get("provenance") and e.get("subject"):
            origin = (d.get("source_path", ""), d.get("member_path", ""), e["subject"], _mtime_ns(d))
            if origin in origins:  # the same file recorded twice (a database that lost rows, then re-ingest)
                rep.duplicate_ingest_events.append(d["provenance"])
                continue
            if not add_object(e["subject"], d.get("kind", "file"), _when(e)):
                continue
            batch(d.get("batch", ""), e)
            origins.add(origin)
            s.add(Provenance(id=d["provenance"], sha256=e["subject"], batch_id=d.get("batch", ""),
                             source_path=origin[0], member_path=origin[1],
                             original_name=d.get("original_name", ""), size=int(d.get("size", 0)),
                             mtime_ns=origin[3], parent_sha256=d.get("parent"), recorded_at=_when(e),
                             ledger_seq=e["seq"], raw_name=d.get("raw_name")))
            count("provenance")
        elif act == "ingest.refused" and d.get("rejection"):
            refusal = (d.get("source_path", ""), d.get("member_path", ""), d.get("reason", ""))
            if refusal in refusals:  # refused twice (a database that lost rows, then re-ingest): unique in the
                rep.duplicate_ingest_events.append(d["rejection"])  # table, so the first is kept, as for ingest
                continue
            refusals.add(refusal)
            batch(d.get("batch", ""), e)
            s.add(Rejection(id=d["rejection"], batch_id=d.get("batch", ""), source_path=d.get("source_path", ""),
                            member_path=d.get("member_path", ""), reason=d.get("reason", ""),
                            recorded_at=_when(e), ledger_seq=e["seq"], raw_name=d.get("raw_name")))
            count("refusals")
        elif act == "redact" and d.get("derivative") and e.get("subject"):
            if add_object(d["derivative"], "derivative", _when(e)):
                params = {k: v for k, v in d.items() if k != "derivative"}
                s.add(Derivative(sha256=d["derivative"], parent_sha256=e["subject"], kind="redaction",
                                 params=params, created_by=e["actor"], created_at=_when(e)))
                count("redacted copies")
        elif act == "annotate" and e.get("subject") and d.get("annotation") is not None:
            aid = int(d["annotation"])
            if aid in annotations:
                # an id given twice (a row lost with its database, the id reused): the later event is the row
                # the database held; the earlier one is named as not rebuilt
                rep.skipped_events.append(annotations[aid][0])
            annotations[aid] = (e["seq"], Annotation(
                id=aid, sha256=e["subject"], start_s=float(d["start_s"]), end_s=float(d["end_s"]),
                label=str(d["label"]), people=[],
                note=f"[rebuilt from the ledger: the note's text and the people are not kept there; "
                     f"the note's SHA-256 was {d.get('note_sha256', '')}]",
                author=e["actor"], created_at=_when(e), supersedes=d.get("supersedes")))
        elif act == "review" and e.get("subject") and d.get("review") is not None:
            rid = int(d["review"])
            if rid in reviews:  # an id given twice, as for annotations: the later event is the row
                rep.skipped_events.append(reviews[rid][0])
            reviews[rid] = (e["seq"], _review_row(e, d))
        elif act == "complaints.import" and e.get("subject"):
            _rebuild_complaints(case, s, e, add_object, count, complaints)
    for _, row in annotations.values():
        if row.sha256 in objects:
            s.add(row)
            count("annotations (without note text and people)")
    for _, review in sorted(reviews.values(), key=lambda x: x[1].id):
        if review.sha256 in objects and review.start_s is not None and review.end_s is not None:
            s.add(review)
            count("review states (without note text)")
            rep.review_states.append({"review": review.id, "sha256": review.sha256, "start_s": review.start_s,
                                      "end_s": review.end_s, "state": review.state, "author": review.author,
                                      "at": review.created_at.isoformat(), "note_kept": review.note == ""})
    s.flush()
    rep.rebuilt = counts


EMPTY_NOTE = hashlib.sha256(b"").hexdigest()


def _review_row(e: dict[str, Any], d: dict[str, Any]) -> Review:
    """A review state as its signed event recorded it: the stretch of the file it judged, the state, who, when."""
    def num(k: str) -> float | None:
        try:
            return float(d[k])
        except (KeyError, TypeError, ValueError):
            return None

    note_sha = str(d.get("note_sha256", ""))
    seg = d.get("segment")
    return Review(id=int(d["review"]), sha256=e["subject"], segment_id=seg if isinstance(seg, int) else None,
                  start_s=num("start_s"), end_s=num("end_s"), state=str(d.get("state", "")), author=e["actor"],
                  created_at=_when(e),
                  note="" if note_sha == EMPTY_NOTE else
                  f"[rebuilt from the ledger: the note's text is not kept there; the note's SHA-256 was {note_sha}]")


def _rebuild_complaints(case: Case, s: Any, e: dict[str, Any], add_object: Any, count: Any,
                        done: set[tuple[str, int]]) -> None:
    from custodes.timeline.complaints import LEGACY, ComplaintsError, complaint_row, parse_rows

    sha = e["subject"]
    if not add_object(sha, "file", _when(e)):
        return
    with case.store.open(sha) as fh:
        data = fh.read()
    try:
        # read as it was imported: with the format given then; a register imported before formats were recorded
        # was read day first
        rows = parse_rows(data, (e.get("details") or {}).get("date_format", LEGACY))
    except ComplaintsError:
        return
    for r in rows:
        if (sha, r["row"]) not in done:  # the same register imported again adds no row twice
            done.add((sha, r["row"]))
            s.add(complaint_row(sha, r))
            count("complaints")

"""``custodes verify``: prove that nothing in a case changed, or name what did."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.crypto import CryptoError
from custodes.store.db import EvidenceObject, Provenance, Rejection
from custodes.store.ledger import Problem
from custodes.store.objects import ObjectStoreError


@dataclass
class VerifyReport:
    objects_checked: int = 0
    bytes_checked: int = 0
    ledger_entries: int = 0
    ledger_head: str = ""
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "objects_checked": self.objects_checked, "bytes_checked": self.bytes_checked,
            "ledger_entries": self.ledger_entries, "ledger_head": self.ledger_head,
            "problems": [p.as_dict() for p in self.problems],
            "warnings": [w.as_dict() for w in self.warnings],
        }


def verify_case(case: Case, expect_head: str | None = None,
                progress: Callable[[int], None] = lambda n: None) -> VerifyReport:
    rep = VerifyReport()
    lc = case.ledger.check()
    rep.ledger_entries, rep.ledger_head = lc.entries, lc.head
    rep.problems.extend(lc.problems)
    if expect_head and expect_head not in lc.hashes:
        rep.problems.append(Problem("ledger.head", expect_head,
                                    "the published head digest is not in this ledger: history was rewritten"))

    with case.sessions() as s:
        db_objects = {o.sha256: o for o in s.scalars(select(EvidenceObject))}
        provenance = list(s.scalars(select(Provenance)))
        rejections = list(s.scalars(select(Rejection)))

    on_disk = set()
    for name in case.store.iter_digests():
        where = case.store.describe(name)
        if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
            rep.problems.append(Problem("object.foreign", where, "file in the object store that is not "
                                                                 "named by a SHA-256: placed by hand"))
            continue
        sha = case.store.claimed_digest(name)
        if sha is None:  # encrypted case: the header does not authenticate, or belongs to another name
            rep.problems.append(Problem("object.altered", where, "encrypted object's header fails "
                                        "authentication or does not match its name: altered, renamed or foreign"))
            continue
        on_disk.add(sha)
        size = case.store.stored_bytes(name)
        try:
            actual = case.store.rehash(sha)
        except (CryptoError, ObjectStoreError) as exc:
            actual = ""
            rep.problems.append(Problem("object.altered", sha, str(exc)))
        rep.objects_checked += 1
        rep.bytes_checked += size
        progress(size)
        if actual and actual != sha:
            rep.problems.append(Problem("object.altered", sha,
                                        f"content hash is now {actual}: the stored bytes were changed"))
        elif actual and sha in db_objects and db_objects[sha].size != case.store.size(sha):
            rep.problems.append(Problem("object.altered", sha, "size differs from the recorded size"))
        if sha not in db_objects:
            rep.problems.append(Problem("object.unrecorded", sha,
                                        "object is not recorded in the case database (interrupted ingest: run "
                                        "ingest again to resume; otherwise placed by hand)"))
        warning = case.store.protection_warning(name)
        if warning:
            rep.warnings.append(Problem(warning[0], sha, warning[1]))
    for sha in sorted(set(db_objects) - on_disk):
        rep.problems.append(Problem("object.missing", sha, "recorded object is missing from the store"))

    ingest_events = {}
    refused_events = {}
    for e in lc.by_seq.values():
        d = e.get("details") or {}
        if e["action"] == "ingest" and "provenance" in d:
            ingest_events[d["provenance"]] = e
        elif e["action"] == "ingest.refused" and "rejection" in d:
            refused_events[d["rejection"]] = e
    prov_ids = set()
    for p in provenance:
        prov_ids.add(p.id)
        ev = ingest_events.get(p.id)
        if ev is None:
            rep.problems.append(Problem("record.unlogged", p.id, f"provenance of {p.sha256[:12]}… "
                                        f"({p.source_path} {p.member_path}) has no ledger event"))
        elif ev["subject"] != p.sha256 or ev["details"].get("source_path") != p.source_path or \
                ev["details"].get("member_path") != p.member_path:
            rep.problems.append(Problem("record.mismatch", p.id, f"provenance row differs from ledger seq "
                                        f"{ev['seq']}: the database was edited"))
    for pid, ev in ingest_events.items():
        if pid not in prov_ids:
            rep.problems.append(Problem("record.deleted", pid, f"ledger seq {ev['seq']} records ingest of "
                                        f"{ev['subject'][:12]}… but its database row is gone"))
    rej_ids = {r.id for r in rejections}
    for rid, ev in refused_events.items():
        if rid not in rej_ids:
            rep.problems.append(Problem("record.deleted", rid, f"ledger seq {ev['seq']} records a refusal "
                                        "whose database row is gone"))
    tmp = case.store.tmp_dir
    if tmp.is_dir() and any(tmp.iterdir()):
        rep.warnings.append(Problem("store.partial", str(tmp), "partial writes from an interrupted ingest "
                                    "(never named objects); the next ingest removes them"))
    if case.engine.dialect.name == "sqlite" and not os.access(case.root / "custodes.db", os.R_OK):
        rep.problems.append(Problem("db.missing", str(case.root / "custodes.db"), "database unreadable"))
    return rep

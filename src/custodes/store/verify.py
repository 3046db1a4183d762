"""``custodes verify``: prove that nothing in a case changed, or name what did."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from custodes.store import seals
from custodes.store.case import Case, case_file_digest, case_file_records
from custodes.store.crypto import CryptoError
from custodes.store.db import EvidenceObject, Provenance, Rejection, SealMark
from custodes.store.ledger import LedgerCheck, Problem
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


def unreadable_rows(case: Case) -> list[Problem]:
    """Rows holding a value their column cannot hold (a date that is no date, text in a number): only an edit
    past the application writes them, and every later read of the table would fail on them."""
    from sqlalchemy import func

    problems = []
    with case.sessions() as s:
        for table, (model, col) in seals.SEALED.items():
            try:
                for _row in s.scalars(select(model).execution_options(yield_per=2000)):
                    pass
                continue
            except (ValueError, TypeError, ArithmeticError) as exc:
                s.rollback()
                why = str(exc).splitlines()[0][:120]
            group_col = getattr(model, col)
            bad = []
            for (group,) in s.execute(select(group_col).group_by(group_col).order_by(func.min(group_col))):
                try:
                    list(s.scalars(select(model).where(group_col == group)))
                except (ValueError, TypeError, ArithmeticError):
                    s.rollback()
                    bad.append(group)
            for group in bad or ["?"]:
                problems.append(Problem("record.mismatch", f"{table}:{str(group)[:12]}",
                                        f"{table} rows of {str(group)[:12]} hold a value their column cannot hold "
                                        f"({why}): the database was edited past the application. Nothing else was "
                                        "checked; restore the database from a backup or rebuild it with "
                                        f"`custodes recover {case.root}`"))
    return problems


def verify_case(case: Case, expect_head: str | None = None,
                progress: Callable[[int], None] = lambda n: None) -> VerifyReport:
    rep = VerifyReport()
    lc = case.ledger.check()
    rep.ledger_entries, rep.ledger_head = lc.entries, lc.head
    rep.problems.extend(lc.problems)
    rep.warnings.extend(lc.warnings)
    if expect_head and expect_head not in lc.hashes:
        rep.problems.append(Problem("ledger.head", expect_head,
                                    "the published head digest is not in this ledger: history was rewritten"))

    unreadable = unreadable_rows(case)
    if unreadable:  # nothing below can read these tables; say which rows, and stop
        rep.problems.extend(unreadable)
        return rep
    with case.sessions() as s:
        db_objects = {o.sha256: o for o in s.scalars(select(EvidenceObject))}
        provenance = list(s.scalars(select(Provenance)))
        rejections = list(s.scalars(select(Rejection)))

    # copies of redactions killed between storing them and committing their rows (redact.intent names them)
    redact_intents = {e["details"].get("derivative"): e for e in lc.by_seq.values() if e["action"] == "redact.intent"}
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
        if sha not in db_objects and sha in redact_intents:
            # not object.unrecorded: the signed intent says what it is, and the same redact adopts it
            intent = redact_intents[sha]
            rep.warnings.append(Problem("redact.unfinished", sha, f"redacted copy of {intent['subject'][:12]}… "
                                        f"(ledger seq {intent['seq']}) was stored but its records were never "
                                        "committed (interrupted): run the same redact again to record it"))
        elif sha not in db_objects:
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
    recoveries = [e for e in lc.by_seq.values() if e["action"] == "case.recover"]
    recovered_duplicates = {pid for e in recoveries
                            for pid in (e.get("details") or {}).get("duplicate_ingest_events") or []}
    for e in recoveries:
        d = e.get("details") or {}
        rep.warnings.append(Problem("case.recovered", f"seq {e['seq']}", f"the case database was rebuilt from the "
                                    f"ledger by {e['actor']} at {e['time']} (the old one kept as "
                                    f"{', '.join(d.get('moved_aside') or []) or 'nothing'})"))
        if d.get("not_rebuilt"):  # what the ledger could not give back (note texts, analysis: run again)
            rep.warnings.append(Problem("record.not_rebuilt", f"seq {e['seq']}", "not rebuilt by that recovery: "
                                        + "; ".join(str(x) for x in d["not_rebuilt"])))

    def file_origin(ev: dict[str, Any]) -> tuple[Any, ...]:
        d = ev.get("details") or {}
        return ev.get("subject"), d.get("source_path"), d.get("member_path"), d.get("mtime_ns", d.get("mtime"))

    def refusal_origin(ev: dict[str, Any]) -> tuple[Any, ...]:
        d = ev.get("details") or {}
        return d.get("source_path"), d.get("member_path"), d.get("reason")

    rej_ids = {r.id for r in rejections}
    for events, ids, origin, what, gone in (
            (ingest_events, prov_ids, file_origin, "file",
             lambda ev: f"records ingest of {ev['subject'][:12]}… but its database row is gone"),
            (refused_events, rej_ids, refusal_origin, "refusal", lambda ev: "records a refusal whose database row "
                                                                            "is gone")):
        # a duplicate is excused only when an earlier event of the same origin has its row: a recovery event
        # cannot be used to make a genuine record disappear
        kept = {origin(ev): ev["seq"] for rid, ev in events.items() if rid in ids}
        for rid, ev in events.items():
            if rid in ids:
                continue
            if rid in recovered_duplicates and kept.get(origin(ev), ev["seq"]) < ev["seq"]:
                rep.warnings.append(Problem("record.duplicate_event", rid, f"ledger seq {ev['seq']} recorded the "
                                            f"same {what} a second time (after a database lost rows); the recovery "
                                            "kept the first record"))
            else:
                rep.problems.append(Problem("record.deleted", rid, f"ledger seq {ev['seq']} {gone(ev)}"))
    _check_records(case, lc, rep)
    from custodes.export.package import unfinished_exports

    for e in unfinished_exports(lc.by_seq[k] for k in sorted(lc.by_seq)):
        rep.warnings.append(Problem("export.unfinished", f"seq {e['seq']}", f"export to {e['details'].get('out')} "
                                    "was started but never confirmed (interrupted): run the same export again"))
    if redact_intents:
        from custodes.redact.derive import unfinished_redactions

        for e in unfinished_redactions(lc.by_seq[k] for k in sorted(lc.by_seq)):
            if e["details"].get("derivative") not in on_disk:
                rep.warnings.append(Problem("redact.unfinished", f"seq {e['seq']}", f"redaction of "
                                            f"{e['subject'][:12]}… was interrupted before its copy was stored: "
                                            "nothing of it was kept; run the same redact again"))
    _check_case_file(case, lc, rep)
    _check_credentials(case, lc, rep)
    tmp = case.store.tmp_dir
    if tmp.is_dir() and any(tmp.iterdir()):
        rep.warnings.append(Problem("store.partial", str(tmp), "partial writes from an interrupted ingest "
                                    "(never named objects); the next ingest removes them"))
    if case.engine.dialect.name == "sqlite" and not os.access(case.root / "custodes.db", os.R_OK):
        rep.problems.append(Problem("db.missing", str(case.root / "custodes.db"), "database unreadable"))
    return rep


def _check_records(case: Case, lc: LedgerCheck, rep: VerifyReport) -> None:
    """Each group of evidence-carrying rows against the latest seal of it that took effect (store/seals.py),
    and the database's marks of seals against the ledger: a ledger cut back or rewritten is named."""
    with case.sessions() as s:
        marks = {m.seq: m.hash for m in s.scalars(select(SealMark))}
        actual = seals.all_groups(s)
        max_prov_seq = max((p for (p,) in s.execute(select(Provenance.ledger_seq)) if p is not None), default=-1)
    last_seq = max(lc.by_seq, default=-1)
    for seq, digest in sorted(marks.items()):
        if seq > last_seq:
            rep.problems.append(Problem("ledger.truncated", f"seq {seq}", f"the database recorded seal seq {seq} "
                                        f"but the ledger ends at seq {last_seq}: the ledger was cut back and the "
                                        "events after it are gone"))
            break
        if lc.by_seq[seq]["hash"] != digest:
            rep.problems.append(Problem("ledger.rewritten", f"seq {seq}", "the ledger entry the database recorded "
                                        "as this seal has another hash: the ledger was rewritten"))
    if max_prov_seq > last_seq and not any(p.kind == "ledger.truncated" for p in rep.problems):
        rep.problems.append(Problem("ledger.truncated", f"seq {max_prov_seq}", f"a provenance row names ledger seq "
                                    f"{max_prov_seq} but the ledger ends at seq {last_seq}: the ledger was cut back"))
    state = seals.read_seals((lc.by_seq[k] for k in sorted(lc.by_seq)), set(marks))
    def carried(events: list[int]) -> str:
        return "".join(f"; seq {k} ({lc.by_seq[k]['action']}) with it" for k in events if k in lc.by_seq)

    for seq, events in state.uncommitted:
        rep.problems.append(Problem("record.uncommitted", f"seq {seq}", "a records seal whose rows the database "
                                    "does not hold: the process was killed before its commit, or the rows and their "
                                    f"mark were deleted{carried(events)}. If you know of the kill, record it with "
                                    f"`custodes ledger void-seal CASE {seq} --reason …`"))
    for seq, events, why in state.voided:
        rep.warnings.append(Problem("record.voided", f"seq {seq}", f"a records seal that never took effect "
                                    f"({why}){carried(events)}"))
    for group, seq, recovery in state.lost:
        if group not in actual:
            # evidence itself (objects, where they came from, what was refused) is always rebuilt from the ledger:
            # if it is missing after a recovery, it was taken away
            table = seals.split_group(group)[0]
            (rep.problems if table in ("objects", "provenance", "rejections") else rep.warnings).append(
                Problem("record.not_rebuilt", group, f"sealed at ledger seq {seq} and lost with the database; the "
                        f"recovery at seq {recovery} could not rebuild it (see `custodes ledger show` for what "
                        "to run again)"))
    for group in sorted(set(actual) | set(state.expected)):
        table, key = seals.split_group(group)
        what = f"{table} rows of {key[:12]}…" if len(key) == 64 else f"{table} rows of {key!r}"
        have = actual.get(group, "")
        want, seq = state.expected.get(group, ("", -1))
        if group not in state.expected:
            if state.any_seal:
                rep.problems.append(Problem("record.unlogged", group, f"{what} are covered by no ledger seal: "
                                            "written to the database by hand"))
            else:
                rep.warnings.append(Problem("record.unsealed", group, f"{what} predate record seals: this case "
                                            "was made by an older Custodes and only its objects and ledger are "
                                            "proven"))
        elif have == want:
            continue
        elif not have:
            rep.problems.append(Problem("record.deleted", group, f"{what} were deleted after ledger seq {seq} "
                                        "sealed them"))
        elif not want:
            rep.problems.append(Problem("record.unlogged", group, f"{what} were written after ledger seq {seq} "
                                        "sealed the group empty: written by hand"))
        else:
            rep.problems.append(Problem("record.mismatch", group, f"{what} differ from what ledger seq {seq} "
                                        "sealed: the database was edited"))


def _check_case_file(case: Case, lc: LedgerCheck, rep: VerifyReport) -> None:
    recorded = [(digest, e["seq"]) for digest, e in case_file_records(lc.by_seq[k] for k in sorted(lc.by_seq))]
    want = recorded[-1] if recorded else None
    have = case_file_digest(case.root)
    if want is None:
        rep.warnings.append(Problem("case.unsealed", "case.json", "no ledger event records case.json's digest "
                                    "(a case made by an older Custodes)"))
    elif have != want[0] and lc.by_seq[want[1]]["action"] == "case.migrate" and len(recorded) > 1 \
            and have == recorded[-2][0]:
        # the migration's event is written before case.json switches: a kill between leaves the case, whole,
        # on its old database
        rep.warnings.append(Problem("case.migrate_unfinished", f"seq {want[1]}", "a database migration was "
                                    "interrupted before the case switched to the new database; the case still uses "
                                    "its old one: run the same `custodes migrate` again to finish it"))
    elif have != want[0]:
        rep.problems.append(Problem("case.altered", "case.json", f"case.json differs from what ledger seq {want[1]} "
                                    "recorded: edited by hand"))


def _check_credentials(case: Case, lc: LedgerCheck, rep: VerifyReport) -> None:
    """The case's C2PA certificates (keys/c2pa/: what a recipient adds to their trust list) against the
    ledger's latest ``c2pa.ca`` event. A case whose certificates predate these events is warned about (its next
    redaction records them), not failed: only its signer chain and ca.pem are checked against each other."""
    from custodes.redact.credentials import credentials_problems, recorded_credentials, unfinished_issue

    event = recorded_credentials(lc.by_seq[k] for k in sorted(lc.by_seq))
    if unfinished_issue(case.keyring.root, event):
        rep.warnings.append(Problem("credentials.unfinished", "keys/c2pa/pending", f"issuing the C2PA certificates "
                                    f"that ledger seq {event['seq'] if event else '?'} records was interrupted "
                                    "before they were put in place: the next redaction issues new ones"))
        return
    for where, message in credentials_problems(case.keyring.root, event):
        rep.problems.append(Problem("credentials.altered", where, message))
    if event is None and (case.keyring.root / "c2pa" / "ca.pem").exists():
        rep.warnings.append(Problem("credentials.unrecorded", "keys/c2pa/ca.pem", "no ledger event records the "
                                    "case's C2PA CA certificates (made by an older Custodes): the next redaction "
                                    "records them"))

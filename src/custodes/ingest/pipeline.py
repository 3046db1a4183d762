"""``custodes ingest``: preserve every source file, record its provenance, probe it.

Order of work for each file, chosen so that ``kill -9`` at any moment loses
nothing and duplicates nothing on the next run:

1. stream the bytes into the object store (hash while copying, fsync, atomic
   rename) — a killed copy leaves only a nameless temporary, removed on resume;
2. one DB transaction adds the object (if new) and the provenance row, which is
   unique on (source path, archive member, hash, mtime) — a re-run adds nothing;
3. the signed ledger event is appended and its sequence number written back to
   the row — rows whose event is missing are reconciled against the ledger at
   the start of every run, so an event is never written twice;
4. media are probed last; objects without a probe are probed on the next run.

Names that are not UTF-8 (``names``) are recorded by a readable form, the same on every run, which is
what a re-run looks up; their bytes are kept (``raw_name``, hex) in the row and its signed event.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from custodes.ingest import names
from custodes.ingest.archives import (
    ArchiveBudget,
    ArchiveError,
    ArchiveLimits,
    SourceBudgetSpent,
    iter_members,
    sniff,
)
from custodes.media.probe import PROBE_VERSION, probe
from custodes.store.case import Case
from custodes.store.db import Batch, EvidenceObject, MediaProbe, Provenance, Rejection
from custodes.store.objects import ObjectStoreError, StoredObject, StoreWriteError


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class IngestReport:
    batch_id: str
    files_seen: int = 0
    bytes_read: int = 0
    objects_new: int = 0
    duplicates: int = 0  # provenance rows whose bytes were already stored
    already_ingested: int = 0  # same file, same place: nothing to do
    archives: int = 0
    archive_members: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    media: dict[str, int] = field(default_factory=dict)
    problem_media: list[dict[str, str]] = field(default_factory=list)
    reconciled_events: int = 0
    removed_partials: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


ProgressFn = Callable[[str, int], None]  # (phase/label, bytes or items advanced)


def _noop(_label: str, _n: int) -> None:
    return None


@dataclass
class _Origin:
    source_path: str
    member_path: str
    original_name: str
    size: int
    mtime_ns: int
    parent_sha256: str | None
    raw_name: str | None = None  # hex of the name's bytes, where they are not the UTF-8 of the readable name
    details: dict[str, Any] | None = None  # a member's own details for its ingest event (disk images)


class _StopSource(Exception):
    """The source's archive budget is spent, and recorded where it ran out: the enclosing archives stop too."""


def _with_raw(details: dict[str, Any], raw_name: str | None) -> dict[str, Any]:
    return details if raw_name is None else {**details, "raw_name": raw_name}


class Ingestor:
    def __init__(self, case: Case, actor: str, note: str = "", limits: ArchiveLimits | None = None,
                 progress: ProgressFn = _noop, probe_media: bool = True) -> None:
        self.case = case
        self.actor = actor
        self.note = note
        self.limits = limits or ArchiveLimits()
        self.progress = progress
        self.probe_media = probe_media
        self.report = IngestReport(batch_id=str(uuid.uuid4()))

    # -- enumeration -----------------------------------------------------------

    @staticmethod
    def enumerate_sources(sources: list[Path]) -> Iterator[tuple[Path, os.stat_result | None, str | None]]:
        """(path, lstat, refusal reason) for every file under the sources, in a stable order."""
        for src in sources:
            src = Path(os.path.abspath(src))
            try:
                st = os.lstat(src)
            except OSError as exc:
                yield src, None, f"cannot read source: {exc.strerror}"
                continue
            if stat.S_ISDIR(st.st_mode):
                unreadable: list[OSError] = []  # folders os.walk could not list: refused, never skipped silently
                for dirpath, dirnames, filenames in os.walk(src, followlinks=False, onerror=unreadable.append):
                    yield from Ingestor._unreadable_folders(unreadable)
                    dirnames.sort()
                    for d in list(dirnames):
                        if os.path.islink(os.path.join(dirpath, d)):
                            dirnames.remove(d)
                            yield Path(dirpath, d), None, "symbolic link to a directory not followed"
                    for name in sorted(filenames):
                        p = Path(dirpath, name)
                        try:
                            pst = os.lstat(p)
                        except OSError as exc:
                            yield p, None, f"cannot read source: {exc.strerror}"
                            continue
                        yield p, pst, None
                yield from Ingestor._unreadable_folders(unreadable)
            else:
                yield src, st, None

    @staticmethod
    def _unreadable_folders(errors: list[OSError]) -> Iterator[tuple[Path, None, str]]:
        for exc in errors:
            yield Path(exc.filename or "?"), None, (f"cannot read folder: {exc.strerror}; none of its files were "
                                                   "ingested — copy it with sufficient rights and ingest again")
        errors.clear()

    # -- the run ---------------------------------------------------------------

    def run(self, sources: list[Path]) -> IngestReport:
        case = self.case
        with case.exclusive("ingest"):
            case.store.ensure()
            self.report.removed_partials = len(case.store.clean_partial())
            self.report.reconciled_events = self._reconcile_ledger()
            readable_sources = [names.from_path(os.path.abspath(p)).text for p in sources]
            with case.sessions() as s:
                s.add(Batch(id=self.report.batch_id, note=self.note, actor=self.actor,
                            sources=readable_sources, started_at=now()))
                s.commit()
            case.ledger.append(self.actor, "batch.start", None, {
                "batch": self.report.batch_id, "note": self.note, "sources": readable_sources})
            for path, st, refusal in self.enumerate_sources(sources):
                self.report.files_seen += 1
                name = names.from_path(path)
                if refusal is not None or st is None:
                    self._refuse(name.text, "", refusal or "cannot read source", name.raw_hex)
                elif stat.S_ISLNK(st.st_mode):
                    target = names.from_path(os.readlink(path)).text
                    self._refuse(name.text, "", f"symbolic link not followed (points to {target!r})", name.raw_hex)
                elif not stat.S_ISREG(st.st_mode):
                    self._refuse(name.text, "", "not a regular file (device, pipe or socket) refused", name.raw_hex)
                else:
                    self._ingest_file(path, st)
            if self.probe_media:
                self._probe_pending()
            with case.sessions() as s:
                batch = s.get(Batch, self.report.batch_id)
                assert batch is not None
                batch.finished_at = now()
                s.commit()
            summary = {k: v for k, v in self.report.as_dict().items()
                       if k not in ("refused", "problem_media", "batch_id")}
            case.ledger.append(self.actor, "batch.end", None, {"batch": self.report.batch_id, **summary})
            from custodes.search.index import reindex

            reindex(case, kinds=("note",))  # batch notes and file names become searchable
        return self.report

    def _ingest_file(self, path: Path, st: os.stat_result) -> None:
        name = names.from_path(path)
        spath, raw = name.text, name.raw_hex
        if self._already(spath, "", st.st_size, st.st_mtime_ns):
            self.report.already_ingested += 1
            self.progress("bytes", st.st_size)
            return
        try:
            stored = self.case.store.put_file(path)
        except StoreWriteError:
            raise  # the case's disk (full, read-only, failing), not this file: stop, refuse nothing
        except OSError as exc:
            self._refuse(spath, "", f"cannot read source: {exc.strerror or exc}", raw)
            return
        except ObjectStoreError as exc:
            self._refuse(spath, "", f"cannot store: {exc}", raw)
            return
        self.report.bytes_read += stored.size
        self.progress("bytes", stored.size)
        if stored.size != st.st_size:
            # The file changed while it was read: keep what was read, say so.
            self._refuse(spath, "", f"file size changed during reading ({st.st_size} -> {stored.size}); "
                                    "the bytes read were stored", raw)
        origin = _Origin(spath, "", names.from_path(path.name).text, stored.size, st.st_mtime_ns, None, raw)
        # one budget for everything unpacked from this file, however deep the archives nest
        with contextlib.suppress(_StopSource):  # recorded where it ran out
            self._record_and_expand(stored, origin, 0, ArchiveBudget(self.limits, stored.size))

    def _record_and_expand(self, stored: StoredObject, origin: _Origin, depth: int, budget: ArchiveBudget) -> None:
        with self.case.store.open(stored.sha256) as fh:
            kind = sniff(fh)
            self._record(stored, origin, "archive" if kind else "file")
            if kind is None:
                return
            self._expand(stored, origin, depth, kind, fh, budget)

    def _expand(self, stored: StoredObject, origin: _Origin, depth: int, kind: str, fh: Any,
                budget: ArchiveBudget) -> None:
        self.report.archives += 1
        prefix = origin.member_path + "!/" if origin.member_path else ""
        if depth >= self.limits.max_depth:
            self._refuse(origin.source_path, origin.member_path,
                         f"archive nested more than {self.limits.max_depth} deep: not unpacked (kept as stored)",
                         origin.raw_name)
            return
        try:
            for m in iter_members(kind, fh, self.case.store, budget):
                # several members of one name are all kept, each under a path of its own
                member_path = prefix + m.name + (f" [same name #{m.occurrence}]" if m.occurrence > 1 else "")
                raw = None if m.raw_name is None else m.raw_name.hex()
                if m.refused:
                    self._refuse(origin.source_path, member_path, m.refused, raw)
                    continue
                assert m.stored is not None
                self.report.archive_members += 1
                self.progress("member", 0)
                child = _Origin(origin.source_path, member_path, m.leaf, m.stored.size, m.mtime_ns,
                                stored.sha256, raw, m.details)
                self._record_and_expand(m.stored, child, depth + 1, budget)
        except ArchiveError as exc:
            self._refuse(origin.source_path, origin.member_path or "", f"archive refused: {exc}", origin.raw_name)
            if isinstance(exc, SourceBudgetSpent):
                raise _StopSource from exc

    # -- records ---------------------------------------------------------------

    def _already(self, source_path: str, member_path: str, size: int, mtime_ns: int) -> bool:
        with self.case.sessions() as s:
            row = s.scalars(select(Provenance).where(
                Provenance.source_path == source_path, Provenance.member_path == member_path,
                Provenance.size == size, Provenance.mtime_ns == mtime_ns,
                Provenance.ledger_seq.is_not(None))).first()
            if row is None:
                return False
            obj = s.get(EvidenceObject, row.sha256)
            # A stored archive is only "done" when its members were recorded too: the
            # batch that stored it may have been killed half-way through unpacking.
            if obj is not None and obj.kind == "archive":
                return False
        return self.case.store.exists(row.sha256)

    def _record(self, stored: StoredObject, o: _Origin, kind: str) -> None:
        with self.case.sessions() as s:
            obj = s.get(EvidenceObject, stored.sha256)
            seen_before = obj is not None
            if obj is None:
                s.add(EvidenceObject(sha256=stored.sha256, size=stored.size, kind=kind, stored_at=now()))
                s.flush()
            prov = s.scalars(select(Provenance).where(
                Provenance.source_path == o.source_path, Provenance.member_path == o.member_path,
                Provenance.sha256 == stored.sha256, Provenance.mtime_ns == o.mtime_ns)).first()
            if prov is not None and prov.ledger_seq is not None:
                if kind != "archive":
                    self.report.already_ingested += 1
                s.commit()
                return
            if prov is None:
                other = s.scalars(select(Provenance.id).where(Provenance.sha256 == stored.sha256)).first()
                prov = Provenance(id=str(uuid.uuid4()), sha256=stored.sha256, batch_id=self.report.batch_id,
                                  source_path=o.source_path, member_path=o.member_path,
                                  original_name=o.original_name, size=o.size, mtime_ns=o.mtime_ns,
                                  parent_sha256=o.parent_sha256, raw_name=o.raw_name, recorded_at=now())
                s.add(prov)
                if seen_before or other is not None:
                    self.report.duplicates += 1
                else:
                    self.report.objects_new += 1
            s.commit()
            prov_id = prov.id
        entry = self.case.ledger.append(self.actor, "ingest", stored.sha256, _with_raw({
            "provenance": prov_id, "batch": self.report.batch_id, "source_path": o.source_path,
            "member_path": o.member_path, "original_name": o.original_name, "size": o.size,
            "mtime": datetime.fromtimestamp(o.mtime_ns / 1e9, UTC).isoformat(), "mtime_ns": o.mtime_ns,
            "kind": kind, "parent": o.parent_sha256, "exact_duplicate": seen_before, **(o.details or {})},
            o.raw_name))
        with self.case.sessions() as s:
            row = s.get(Provenance, prov_id)
            assert row is not None
            row.ledger_seq = entry["seq"]
            s.commit()

    def _refuse(self, source_path: str, member_path: str, reason: str, raw_name: str | None = None) -> None:
        self.report.refused.append({"source_path": source_path, "member_path": member_path, "reason": reason})
        with self.case.sessions() as s:
            row = s.scalars(select(Rejection).where(
                Rejection.source_path == source_path, Rejection.member_path == member_path,
                Rejection.reason == reason)).first()
            if row is not None and row.ledger_seq is not None:
                return
            if row is None:
                row = Rejection(id=str(uuid.uuid4()), batch_id=self.report.batch_id, source_path=source_path,
                                member_path=member_path, reason=reason, raw_name=raw_name, recorded_at=now())
                s.add(row)
                s.commit()
            rid = row.id
        entry = self.case.ledger.append(self.actor, "ingest.refused", None, _with_raw({
            "rejection": rid, "batch": self.report.batch_id, "source_path": source_path,
            "member_path": member_path, "reason": reason}, raw_name))
        with self.case.sessions() as s:
            r = s.get(Rejection, rid)
            assert r is not None
            r.ledger_seq = entry["seq"]
            s.commit()

    def _reconcile_ledger(self) -> int:
        """Rows committed before a kill but whose ledger event may be missing."""
        with self.case.sessions() as s:
            prov_pending = {p.id: p for p in s.scalars(select(Provenance).where(Provenance.ledger_seq.is_(None)))}
            rej_pending = {r.id: r for r in s.scalars(select(Rejection).where(Rejection.ledger_seq.is_(None)))}
            if not prov_pending and not rej_pending:
                return 0
            for e in self.case.ledger.entries():
                d = e.get("details") or {}
                if e["action"] == "ingest" and d.get("provenance") in prov_pending:
                    prov_pending.pop(d["provenance"]).ledger_seq = e["seq"]
                elif e["action"] == "ingest.refused" and d.get("rejection") in rej_pending:
                    rej_pending.pop(d["rejection"]).ledger_seq = e["seq"]
            s.commit()
            events: list[tuple[str, str | None, dict[str, Any]]] = []
            for p in prov_pending.values():
                obj = s.get(EvidenceObject, p.sha256)
                events.append(("ingest", p.sha256, _with_raw({
                    "provenance": p.id, "batch": p.batch_id, "source_path": p.source_path,
                    "member_path": p.member_path, "original_name": p.original_name, "size": p.size,
                    "mtime": datetime.fromtimestamp(p.mtime_ns / 1e9, UTC).isoformat(), "mtime_ns": p.mtime_ns,
                    "kind": obj.kind if obj else "file", "parent": p.parent_sha256,
                    "recovered": "event written on resume after an interrupted run"}, p.raw_name)))
            for r in rej_pending.values():
                events.append(("ingest.refused", None, _with_raw({
                    "rejection": r.id, "batch": r.batch_id, "source_path": r.source_path,
                    "member_path": r.member_path, "reason": r.reason,
                    "recovered": "event written on resume after an interrupted run"}, r.raw_name)))
            if events:
                written = self.case.ledger.append_many(self.actor, events)
                rows: list[Any] = [*prov_pending.values(), *rej_pending.values()]
                for row, entry in zip(rows, [w for w in written if w["action"] in ("ingest", "ingest.refused")],
                                      strict=True):
                    row.ledger_seq = entry["seq"]
                s.commit()
            return len(events)

    # -- media -----------------------------------------------------------------

    def _probe_pending(self) -> None:
        with self.case.sessions() as s:
            todo = s.execute(
                select(EvidenceObject.sha256, Provenance.original_name)
                .join(Provenance, Provenance.sha256 == EvidenceObject.sha256)
                .outerjoin(MediaProbe, MediaProbe.sha256 == EvidenceObject.sha256)
                .where(EvidenceObject.kind == "file", MediaProbe.sha256.is_(None))
                .order_by(EvidenceObject.sha256)).all()
        names: dict[str, str] = {}
        for sha, name in todo:
            names.setdefault(sha, name)
        for sha, name in names.items():
            self.progress("probe", 1)
            res = probe(self.case.store.media_ref(sha), name_hint=name)
            with self.case.sessions() as s:
                if s.get(MediaProbe, sha) is None:
                    s.add(MediaProbe(sha256=sha, status=res.status, reason=res.reason, container=res.container,
                                     duration_s=res.duration_s, width=res.width, height=res.height, fps=res.fps,
                                     video_codec=res.video_codec, audio_codec=res.audio_codec,
                                     creation_time=res.creation_time, tags=res.tags, streams=res.streams,
                                     probe_version=PROBE_VERSION, probed_at=now()))
                    s.commit()
            self.report.media[res.status] = self.report.media.get(res.status, 0) + 1
            if res.status in ("unreadable", "damaged"):
                self.report.problem_media.append({"sha256": sha, "name": name, "status": res.status,
                                                  "reason": res.reason})

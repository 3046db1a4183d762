"""``custodes ingest``: preserve every source file, record its provenance, probe it.

Order of work, chosen so that ``kill -9`` (or a power cut) at any moment loses
nothing and duplicates nothing on the next run. Files are recorded in groups
(up to ``GROUP_FILES`` files, ``GROUP_BYTES`` bytes or ``GROUP_SECONDS``
seconds; the first group of a run holds 16 files and each next one four times as
many: a kill loses at most a group's rows, which the re-run records), so that
the durable writes are paid once per group, not once per file:

1. each file's bytes are streamed into a temporary of the object store (hash
   while copying) and staged there, not yet named;
2. the group's objects are made durable together, only then renamed into
   place, and the renames made durable (``ObjectStore.sync_group``) — a kill
   before leaves nameless temporaries, removed on resume; a kill after leaves
   complete objects that no row names yet, recorded on resume;
3. one DB transaction (one ``records.seal``) adds the group's objects (if new)
   and provenance rows, each unique on (source path, archive member, hash,
   mtime) — a re-run adds nothing;
4. the group's signed ledger events are appended together (one fsync) and
   their sequence numbers written back to the rows (one more transaction) —
   rows whose event is missing are reconciled against the ledger at the start
   of every run, so an event is never written twice;
5. media are probed last; objects without a probe are probed on the next run.

Names that are not UTF-8 (``names``) are recorded by a readable form, the same on every run, which is
what a re-run looks up; their bytes are kept (``raw_name``, hex) in the row and its signed event.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, tuple_

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
from custodes.store import faults
from custodes.store.case import Case
from custodes.store.db import Batch, EvidenceObject, MediaProbe, Provenance, Rejection
from custodes.store.objects import ObjectStoreError, StoredObject, StoreWriteError

# A group is recorded when it holds this many files, bytes staged, or has been open this long.
GROUP_FILES = 256
GROUP_BYTES = 256 << 20
GROUP_SECONDS = 2.0
PROBE_COMMIT_EVERY = 64  # media probes committed (and sealed) together


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


@dataclass
class _Queued:
    stored: StoredObject
    origin: _Origin
    kind: str


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
        self._queue: list[_Queued] = []  # staged objects whose rows are not yet written
        self._group_limit = 16  # files in the next group: 16 first, then 64, 256 (GROUP_FILES)
        self._group_started = 0.0
        self._done: dict[tuple[str, int, int], list[str]] = {}  # see _done_files
        self._seqs: dict[str, int] = {}  # provenance id -> seq of its event, not yet written to the row

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
            with case.store.group():
                try:
                    self._ingest_sources(sources)
                    self._finish_groups()
                except Exception:
                    # a full disk stops the run: what was stored before it is still recorded (if it can be),
                    # then the error goes on; staged temporaries left unnamed are removed by the group's end
                    with contextlib.suppress(Exception):
                        self._finish_groups()
                    raise
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
            from custodes.search.index import index_new_names

            index_new_names(case)  # batch notes and file names become searchable
        return self.report

    def _ingest_sources(self, sources: list[Path]) -> None:
        batch: list[tuple[Path, os.stat_result | None, str | None]] = []
        for item in self.enumerate_sources(sources):
            batch.append(item)
            if len(batch) >= GROUP_FILES:
                self._ingest_listed(batch)
                batch = []
        self._ingest_listed(batch)

    def _ingest_listed(self, listed: list[tuple[Path, os.stat_result | None, str | None]]) -> None:
        self._done = self._done_files([names.from_path(p).text for p, st, r in listed
                                       if r is None and st is not None and stat.S_ISREG(st.st_mode)])
        for path, st, refusal in listed:
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

    def _done_files(self, paths: list[str]) -> dict[tuple[str, int, int], list[str]]:
        """(source path, size, mtime) -> digests, of the listed files recorded with their event by an earlier
        run: one query for a list of files, not one per file. Archives are never "done" here: the batch that
        stored one may have been killed half-way through unpacking it."""
        done: dict[tuple[str, int, int], list[str]] = {}
        if not paths:
            return done
        with self.case.sessions() as s:
            for i in range(0, len(paths), 500):
                for sp, size, mtime_ns, sha in s.execute(
                        select(Provenance.source_path, Provenance.size, Provenance.mtime_ns, Provenance.sha256)
                        .join(EvidenceObject, EvidenceObject.sha256 == Provenance.sha256)
                        .where(Provenance.source_path.in_(paths[i:i + 500]), Provenance.member_path == "",
                               Provenance.ledger_seq.is_not(None), EvidenceObject.kind != "archive")):
                    done.setdefault((sp, size, mtime_ns), []).append(sha)
        return done

    def _already(self, source_path: str, member_path: str, size: int, mtime_ns: int) -> bool:
        shas = self._done.get((source_path, size, mtime_ns)) if member_path == "" else None
        return any(self.case.store.exists(sha) for sha in shas or ())

    def _record(self, stored: StoredObject, o: _Origin, kind: str) -> None:
        """Queue the file's rows; the group is recorded when it is full (see the module docstring)."""
        if not self._queue:
            self._group_started = time.monotonic()
        self._queue.append(_Queued(stored, o, kind))
        if (len(self._queue) >= self._group_limit or self.case.store.pending_bytes() >= GROUP_BYTES
                or time.monotonic() - self._group_started >= GROUP_SECONDS):
            self._flush_group()

    def _flush_group(self) -> None:
        """Record the queued files: objects durable and named, then one transaction, then their events.

        The events are appended *after* the rows commit, and reconciled on the next run when a kill comes in
        between (``_reconcile_ledger``), rather than appended with the seal before the commit as
        ``SealingSession.log`` does for annotations: a kill between a logged event and its commit leaves a
        signed event for a row that never existed and a seal without its mark (``record.uncommitted``, which
        needs a person to void it), and the re-run, which cannot find that row, would record the file again
        under a new provenance id, with a second ingest event. Rows first: every row gets exactly one event,
        on this run or the next, and verify is OK after the resume without anyone's word."""
        queued, self._queue = self._queue, []
        self._group_limit = min(self._group_limit * 4, GROUP_FILES)
        if not queued:
            return
        store = self.case.store
        store.sync_group()
        # kill -9 tests: the group's objects are named and durable, none of their rows is written
        faults.point("ingest.group")
        if any(q.origin.member_path for q in queued):
            faults.point("ingest.member_stored")  # an archive member stored, not yet recorded
        todo: list[tuple[_Queued, str, bool]] = []  # (file, provenance id, its bytes were stored before)
        with self.case.sessions() as s:
            shas = sorted({q.stored.sha256 for q in queued})
            known = set(s.scalars(select(EvidenceObject.sha256).where(EvidenceObject.sha256.in_(shas))))
            copied = set(s.scalars(select(Provenance.sha256).where(Provenance.sha256.in_(shas)).distinct()))
            keys = sorted({(q.origin.source_path, q.origin.member_path) for q in queued})
            rows = {(p.source_path, p.member_path, p.sha256, p.mtime_ns): p for p in s.scalars(
                select(Provenance).where(tuple_(Provenance.source_path, Provenance.member_path).in_(keys)))}
            written: set[str] = set()
            for q in queued:
                sha, o = q.stored.sha256, q.origin
                seen_before = sha in known
                if not seen_before:
                    s.add(EvidenceObject(sha256=sha, size=q.stored.size, kind=q.kind, stored_at=now()))
                    known.add(sha)
                key = (o.source_path, o.member_path, sha, o.mtime_ns)
                prov = rows.get(key)
                if prov is not None and (prov.ledger_seq is not None or prov.id in written or prov.id in self._seqs):
                    if q.kind != "archive":
                        self.report.already_ingested += 1
                    continue
                if prov is None:
                    prov = rows[key] = Provenance(
                        id=str(uuid.uuid4()), sha256=sha, batch_id=self.report.batch_id,
                        source_path=o.source_path, member_path=o.member_path, original_name=o.original_name,
                        size=o.size, mtime_ns=o.mtime_ns, parent_sha256=o.parent_sha256, raw_name=o.raw_name,
                        recorded_at=now())
                    s.add(prov)
                    if seen_before or sha in copied:
                        self.report.duplicates += 1
                    else:
                        self.report.objects_new += 1
                    copied.add(sha)
                written.add(prov.id)
                todo.append((q, prov.id, seen_before))
            self._write_seqs(s)
            s.commit()
        if not todo:
            return
        events: list[tuple[str, str | None, dict[str, Any]]] = [("ingest", q.stored.sha256, _with_raw({
            "provenance": prov_id, "batch": self.report.batch_id, "source_path": q.origin.source_path,
            "member_path": q.origin.member_path, "original_name": q.origin.original_name, "size": q.origin.size,
            "mtime": datetime.fromtimestamp(q.origin.mtime_ns / 1e9, UTC).isoformat(),
            "mtime_ns": q.origin.mtime_ns, "kind": q.kind, "parent": q.origin.parent_sha256,
            "exact_duplicate": seen_before, **(q.origin.details or {})}, q.origin.raw_name))
            for q, prov_id, seen_before in todo]
        entries = [e for e in self.case.ledger.append_many(self.actor, events) if e["action"] == "ingest"]
        # their sequence numbers are written back with the next group's rows (one transaction, one seal, less)
        # or at the end of the run; a kill before leaves rows whose event exists, which the next run finds
        self._seqs.update({prov_id: e["seq"] for (_, prov_id, _), e in zip(todo, entries, strict=True)})

    def _write_seqs(self, s: Any) -> None:
        """Stage the ledger seqs of the previous group's rows in session ``s``, committed by the caller."""
        seqs, self._seqs = self._seqs, {}
        ids = sorted(seqs)
        for i in range(0, len(ids), 500):
            for row in s.scalars(select(Provenance).where(Provenance.id.in_(ids[i:i + 500]))):
                row.ledger_seq = seqs[row.id]

    def _finish_groups(self) -> None:
        self._flush_group()
        if self._seqs:
            with self.case.sessions() as s:
                self._write_seqs(s)
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
        with self.case.sessions() as s:
            since, started = 0, time.monotonic()
            for sha, name in names.items():
                self.progress("probe", 1)
                res = probe(self.case.store.media_ref(sha), name_hint=name)
                if s.get(MediaProbe, sha) is None:
                    s.add(MediaProbe(sha256=sha, status=res.status, reason=res.reason, container=res.container,
                                     duration_s=res.duration_s, width=res.width, height=res.height, fps=res.fps,
                                     video_codec=res.video_codec, audio_codec=res.audio_codec,
                                     creation_time=res.creation_time, tags=res.tags, streams=res.streams,
                                     probe_version=PROBE_VERSION, probed_at=now()))
                    since += 1
                # probes are committed (and sealed) together; a kill loses only uncommitted ones, probed again
                if since >= PROBE_COMMIT_EVERY or (since and time.monotonic() - started >= GROUP_SECONDS):
                    s.commit()
                    since, started = 0, time.monotonic()
                self.report.media[res.status] = self.report.media.get(res.status, 0) + 1
                if res.status in ("unreadable", "damaged"):
                    self.report.problem_media.append({"sha256": sha, "name": name, "status": res.status,
                                                      "reason": res.reason})
            s.commit()

"""The ``custodes`` command line."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape as _e
from rich.table import Table

from custodes import __version__, progress

app = typer.Typer(help="Custodes: preserve, inventory and triage footage from places of detention.",
                  no_args_is_help=True, add_completion=False)
ledger_app = typer.Typer(help="The chain-of-custody ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
user_app = typer.Typer(help="Review-app accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")
complaints_app = typer.Typer(help="The complaints register, checked against the recordings.", no_args_is_help=True)
app.add_typer(complaints_app, name="complaints")

console = Console(stderr=True)  # human output on stderr; --json documents alone on stdout


def _human_help() -> None:
    """Help in a person's words: ``N``, ``TEXT``, ``PATH``, ``at least 1`` where Typer would print Python's
    types (``<list[str]>``, ``<int range> [x>=1]``) and ``{case_dir}``."""
    try:
        from typer import core
    except ImportError:  # pragma: no cover
        return
    base = getattr(core, "_TyperParameter", None)
    if base is None or not hasattr(base, "display_type"):  # another Typer: its own help is left as it is
        return

    def label(annotation: Any) -> str:
        import typing

        if typing.get_origin(annotation) in (list, tuple):
            args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
            return label(args[0]) if args else "TEXT"
        if isinstance(annotation, type):
            if issubclass(annotation, bool):
                return ""
            if issubclass(annotation, int):
                return "N"
            if issubclass(annotation, float):
                return "NUMBER"
            if issubclass(annotation, os.PathLike):
                return "PATH"
        return "TEXT"

    def display_type(self: Any, ctx: Any) -> str | None:
        if getattr(self, "metavar", None) is not None:
            # an argument's metavar is its name in the help already
            return None if self.param_type_name == "argument" else str(self.metavar)
        if getattr(self, "is_flag", False):
            return None
        desc = self.type_descriptor
        if desc.is_choice and desc.choices:
            return "|".join(str(getattr(c, "value", c)) for c in desc.choices)
        return label(desc.annotation) or None

    def number_range(self: Any) -> str | None:
        lo, hi = getattr(self, "min", None), getattr(self, "max", None)
        if lo is None and hi is None:
            return None
        if lo is None:
            return f"at most {hi}"
        return f"at least {lo}" if hi is None else f"{lo} to {hi}"

    def usage_name(self: Any) -> str:
        name = str(self.display_name_raw)
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    for cls in (base, getattr(core, "TyperArgument", base), getattr(core, "TyperOption", base)):
        cls.display_type = display_type  # type: ignore[attr-defined]
        if hasattr(cls, "_get_number_range_help_str"):
            cls._get_number_range_help_str = number_range  # type: ignore[attr-defined]
    opt = getattr(core, "TyperOption", None)
    if opt is not None and "display_type_rich" in vars(opt):
        def option_type(self: Any, ctx: Any) -> str | None:
            return display_type(self, ctx)

        opt.display_type_rich = option_type  # type: ignore[attr-defined]
    arg = getattr(core, "TyperArgument", None)
    if arg is not None and hasattr(arg, "_usage_display_name"):
        arg._usage_display_name = usage_name  # type: ignore[attr-defined]
        arg.display_name_raw = property(  # type: ignore[attr-defined]
            lambda self: str(self.metavar) if self.metavar is not None else str(self.name).upper())


_human_help()

CaseArg = Annotated[Path, typer.Argument(help="Case directory", metavar="CASE")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who does this (default: $CUSTODES_ACTOR or login)")]


def _finite(doc: Any) -> Any:
    """``doc`` with every NaN and infinity as null: JSON has no such numbers, and strict parsers refuse them."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_finite(v) for v in doc]
    return doc


def _print_json(doc: Any) -> None:
    """The one way every ``--json`` prints: strict JSON (no NaN/Infinity), dates and paths as strings."""
    doc = _finite(json.loads(json.dumps(doc, default=str)))  # numpy floats, dates, paths: plain values first
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def _n(text: Any) -> str:
    """Text from the evidence (a file name, a reason naming one) for human output: control characters and
    bidi overrides escaped (a name may carry terminal escape sequences), then Rich markup."""
    from custodes.textsafe import printable

    return _e(printable(str(text)))


def _fail(msg: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {msg}")
    raise typer.Exit(code)


def _why(exc: BaseException) -> str:
    """The sentence for a failure: the environment's (a full disk …) when it is one, else the error's own."""
    from custodes.errors import explain

    return _e(explain(exc) or str(exc))


def _open(case_dir: Path) -> Any:
    from custodes.store.case import Case, CaseError

    try:
        case = Case(case_dir)
        case.ensure_schema()  # a case made by an older Custodes is brought up to date; a lost database refused
    except CaseError as exc:
        _fail(_e(str(exc)))
    return case


def _actor(actor: str | None) -> str:
    from custodes.store.case import default_actor

    return actor or default_actor()


@app.callback(invoke_without_command=True)
def _main(version: Annotated[bool, typer.Option("--version", help="Show the version")] = False) -> None:
    if version:
        print(__version__)
        raise typer.Exit()


@app.command()
def init(case_dir: CaseArg, title: Annotated[str, typer.Option(help="Case title")] = "",
         encrypt: Annotated[bool, typer.Option(
             "--encrypt", help="Encrypt everything in the case at rest with a passphrase "
                               "(asked twice, or CUSTODES_PASSPHRASE); lose it and the case is unreadable")] = False,
         db: Annotated[str | None, typer.Option(
             "--db", help="Team database, e.g. postgresql://user@host/custodes_{case_id} ({case_id} is filled in; "
                          "the database is created if missing; password from PGPASSWORD or ~/.pgpass). "
                          "Default: CUSTODES_DB, else SQLite inside the case")] = None,
         objects: Annotated[str | None, typer.Option(
             "--objects", help="Keep originals on S3-compatible storage: s3://bucket/prefix (credentials from "
                               "the usual AWS environment/config; the bucket needs Object Lock)")] = None,
         s3_endpoint: Annotated[str | None, typer.Option("--s3-endpoint", help="S3 endpoint (MinIO, Ceph …)")] = None,
         lock_mode: Annotated[str, typer.Option("--lock-mode", help="governance, compliance or none")] = "governance",
         lock_days: Annotated[int, typer.Option("--lock-days", min=1, help="Object Lock retention in days")] = 3650,
         protect_keys: Annotated[bool, typer.Option(
             "--protect-keys", help="Protect the signing keys of an unencrypted case with a passphrase (asked "
                                    "twice, or CUSTODES_KEY_PASSPHRASE; needed whenever the case signs)")] = False,
         actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Create a new, empty case directory."""
    from custodes.store.case import Case, CaseError, passphrase
    from custodes.store.objects import ObjectStoreError

    try:
        location = None
        if objects:
            from custodes.store.s3 import S3Location

            location = S3Location.parse(objects, s3_endpoint, os.environ.get("AWS_DEFAULT_REGION"), lock_mode,
                                        lock_days)
        secret = passphrase("New case passphrase: ", confirm=True) if encrypt else None
        case = Case.init(case_dir, _actor(actor), title=title, secret=secret, db_url=db, objects=location,
                         protect_keys=protect_keys)
    except ObjectStoreError as exc:
        _fail(str(exc))
    except CaseError as exc:
        _fail(str(exc))
    if as_json:
        _print_json({"case": str(case.root), "case_id": case.id, "ledger_head": case.ledger.head()[1],
                     "encrypted": case.keys is not None, "database": case.meta.get("db_url", "sqlite"),
                     "objects": case.meta.get("objects", {"backend": "local"})})
    else:
        console.print(f"Created case [bold]{case.meta['title']}[/] at {case.root} (id {case.id})")


@app.command()
def rekey(case_dir: CaseArg, actor: ActorOpt = None) -> None:
    """Change an encrypted case's passphrase (the footage is not re-encrypted: only the case key is re-wrapped).

    The current passphrase comes from CUSTODES_PASSPHRASE or a prompt, the new one from
    CUSTODES_NEW_PASSPHRASE or a prompt (asked twice).
    """
    from custodes.store.case import CaseError

    case = _open(case_dir)
    try:
        new = os.environ.get("CUSTODES_NEW_PASSPHRASE") or _ask_new_passphrase()
        case.rekey(new, _actor(actor))
    except CaseError as exc:
        _fail(str(exc))
    console.print("Passphrase changed; the old one no longer opens this case.")


@app.command("migrate")
def migrate_cmd(case_dir: CaseArg,
                to: Annotated[str, typer.Option("--to", help="postgresql://user@host/db ({case_id} is filled in), "
                                                            "or 'sqlite' for the file inside the case")],
                actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Move the case's database to PostgreSQL (or back to SQLite), checked table by table; nothing is lost."""
    from custodes.store.case import CaseError
    from custodes.store.transfer import migrate_database

    case = _open(case_dir)
    with progress.board(console, as_json) as b:
        task = b.task("copying rows", "rows")

        def on_rows(what: str, n: int) -> None:
            if what == "total":
                task.set_total(n)
            else:
                task.advance(n)

        try:
            res = migrate_database(case, to, _actor(actor), on_rows)
        except CaseError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(res)
    else:
        console.print(f"Moved {res['rows']} rows from {res['from']} to {res['to']}; every table checked.")
        if res["old_sqlite_kept_as"]:
            console.print(f"The old SQLite file is kept as {res['old_sqlite_kept_as']}.")


def _ask_new_passphrase() -> str:
    import getpass

    from custodes.store.case import CaseError

    if not sys.stdin.isatty():
        raise CaseError("set CUSTODES_NEW_PASSPHRASE or run from a terminal to be asked")
    value = getpass.getpass("New passphrase: ")
    if getpass.getpass("Repeat the new passphrase: ") != value:
        raise CaseError("the passphrases differ")
    return value


@contextmanager
def _per_video_progress(label: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A counting progress line for work done video by video; yields the advance callback."""
    with progress.counting(console, label, "videos", quiet) as advance:
        yield advance


@contextmanager
def _footage_progress(label: str, quiet: bool) -> Iterator[Callable[[str, float], None]]:
    """Progress in minutes of footage; yields the callback ("total", s) / ("advance", s)."""
    with progress.footage(console, label, quiet) as cb:
        yield cb


@app.command()
def ingest(case_dir: CaseArg,
           sources: Annotated[list[Path], typer.Argument(help="Files, folders or archives to preserve")],
           batch_note: Annotated[str, typer.Option("--batch-note", help="Where this came from, who gave it")] = "",
           actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Preserve files: hash while copying into the write-once store, record provenance, probe media.

    Safe to re-run or resume after a crash: the result is the same store, with no duplicates.
    """
    from custodes.ingest.summary import SourceMissing, check_sources, ingest_with_progress, print_summary
    from custodes.store.case import CaseError

    try:
        check_sources(sources)  # before the case is opened: a typo writes nothing anywhere
    except SourceMissing as exc:
        _fail(_e(str(exc)))
    case = _open(case_dir)
    try:
        report = ingest_with_progress(case, sources, _actor(actor), batch_note, console, quiet=as_json)
    except (CaseError, SourceMissing) as exc:
        _fail(_e(str(exc)))
    if as_json:
        _print_json(report.as_dict())
        return
    print_summary(console, report)


@app.command()
def verify(case_dir: CaseArg,
           expect_head: Annotated[str | None, typer.Option("--expect-head",
                                  help="A head digest given out earlier: it must still be in the ledger")] = None,
           as_json: JsonOpt = False) -> None:
    """Re-hash every object, check the ledger chain and signatures and the records. Exit 1 on any problem."""
    from custodes.store.verify import verify_case

    case = _open(case_dir)
    total = case.store.total_bytes()
    with progress.board(console, as_json) as b:
        task = b.task("verifying", progress.BYTES, total=total)
        rep = verify_case(case, expect_head=expect_head, progress=task.advance)
    if as_json:
        _print_json(rep.as_dict())
    else:
        for p in rep.problems:
            console.print(f"[bold red]{p.kind}[/] {_n(p.where)}: {_n(p.message)}")
        for w in rep.warnings:
            console.print(f"[yellow]{w.kind}[/] {_n(w.where)}: {_n(w.message)}")
        status = "[bold green]OK[/]" if rep.ok else f"[bold red]FAILED: {len(rep.problems)} problem(s)[/]"
        console.print(f"{status} — {rep.objects_checked} objects ({rep.bytes_checked:,} bytes) re-hashed, "
                      f"{rep.ledger_entries} ledger entries checked, head {rep.ledger_head}")
    if not rep.ok:
        raise typer.Exit(1)


@app.command()
def recover(case_dir: CaseArg, force: Annotated[bool, typer.Option(
                "--force", help="Rebuild even though the database opens (damage only `verify` shows)")] = False,
            actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild a lost or damaged case database from the signed ledger and the stored objects.

    The damaged file is moved aside (never deleted); what could not be rebuilt is listed, with what to run."""
    from custodes.store.case import CaseError
    from custodes.store.recover import recover_case

    try:
        with console.status("Rebuilding the case database from the ledger…"):
            rep = recover_case(case_dir, _actor(actor), force=force)
    except CaseError as exc:
        _fail(_e(str(exc)))
    if as_json:
        _print_json(rep.as_dict())
        return
    if rep.moved_aside:
        console.print(f"The damaged database was kept as {', '.join(rep.moved_aside)}.")
    console.print("Rebuilt: " + (", ".join(f"{n} {what}" for what, n in rep.rebuilt.items()) or "nothing"))
    if rep.missing_objects:
        console.print(f"[bold red]{len(rep.missing_objects)} object(s) named by the ledger are missing from the "
                      "store[/]: restore objects/ from a backup, then run `custodes verify`.")
    if rep.duplicate_ingest_events:
        console.print(f"{len(rep.duplicate_ingest_events)} file(s) were recorded twice; the first record was kept.")
    console.print("Not rebuilt: " + "; ".join(rep.not_rebuilt) + ". Then run `custodes verify`.")


@ledger_app.command("void-seal")
def ledger_void_seal(case_dir: CaseArg, seq: Annotated[int, typer.Argument(help="The records.seal's seq")],
                     reason: Annotated[str, typer.Option("--reason", help="What happened, e.g. 'server killed "
                                                         "at 14:02 (power cut)'")],
                     actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Record, signed, that a records seal never took effect (a process killed before its commit).

    `verify` names such a seal (record.uncommitted) because the database alone cannot tell a kill from rows
    deleted by hand; this is a person's signed statement, and verify lists it from then on.
    """
    from custodes.store.db import SealMark
    from custodes.store.seals import ACTION, VOID

    case = _open(case_dir)
    entry = next((e for e in case.ledger.entries() if e["seq"] == seq), None)
    if entry is None or entry["action"] != ACTION:
        _fail(f"ledger seq {seq} is not a records seal")
    with case.sessions() as s:
        if s.get(SealMark, seq) is not None:
            _fail(f"seal {seq} took effect (the database holds its rows); there is nothing to void")
    if not reason.strip():
        _fail("say what happened with --reason")
    done = case.ledger.append(_actor(actor), VOID, None, {"seal": seq, "reason": reason.strip()[:500]})
    if as_json:
        _print_json({"seal": seq, "void_seq": done["seq"]})
    else:
        console.print(f"Seal {seq} recorded as never committed (ledger seq {done['seq']}).")


@ledger_app.command("head")
def ledger_head(case_dir: CaseArg, as_json: JsonOpt = False) -> None:
    """Print the digest of the last ledger entry, to publish or send out of band."""
    case = _open(case_dir)
    check = case.ledger.check()
    if check.problems:  # a head is what others will hold the case to: never hand out one that does not verify
        p = check.problems[0]
        _fail(_e(f"the ledger fails verification ({p.kind} at {p.where}: {p.message}); run `custodes verify` "
                 "before publishing a head"))
    seq, digest = case.ledger.head()
    if as_json:
        _print_json({"seq": seq, "head": digest, "case_id": case.id, "case_key": check.case_key})
    else:
        print(digest)


@ledger_app.command("show")
def ledger_show(case_dir: CaseArg, action: Annotated[str | None, typer.Option(help="Only this action")] = None,
                limit: Annotated[int, typer.Option(help="Last N entries (0: all)")] = 50,
                as_json: JsonOpt = False) -> None:
    """List ledger entries (newest last)."""
    case = _open(case_dir)
    rows = [e for e in case.ledger.entries() if action is None or e["action"] == action]
    if limit:
        rows = rows[-limit:]
    if as_json:
        _print_json(rows)
        return
    t = Table("seq", "time", "actor", "action", "subject", "details")
    for e in rows:
        d = e["details"] or {}
        brief = d.get("original_name") or d.get("reason") or d.get("note") or ""
        t.add_row(str(e["seq"]), e["time"][:19], e["actor"], e["action"], (e["subject"] or "")[:16], _n(brief))
    Console().print(t)


@app.command()
def items(case_dir: CaseArg, as_json: JsonOpt = False) -> None:
    """List stored evidence: each object, what it is (video, redacted copy of …, document …), its media facts
    and every place it came from."""
    from custodes.store.inventory import list_items

    case = _open(case_dir)
    docs = list_items(case)
    if as_json:
        _print_json(docs)
        return
    t = Table("sha256", "name", "what", "copies", "status", "duration", "video")
    for d in docs:
        m = d["media"] or {}
        video = f"{m.get('width')}x{m.get('height')} {m.get('video_codec')}" if m.get("width") else ""
        dur = f"{m['duration_s']:.1f}s" if m.get("duration_s") else ""
        t.add_row(d["sha256"][:12], _n(d["name"] or "?"), _n(d["what"]), str(len(d["copies"])),
                  m.get("status", d["kind"]), dur, video)
    Console().print(t)


@app.command()
def triage(case_dir: CaseArg,
           workers: Annotated[int, typer.Option(
               "--workers", min=1, help="Parallel worker processes (default: one per CPU core; each needs ~350 MB)")
           ] = os.cpu_count() or 1,
           force: Annotated[bool, typer.Option("--force", help="Re-analyse videos already analysed")] = False,
           engine: Annotated[str, typer.Option(
               "--engine", help="local (process pool) or ray (a Ray cluster)")] = "local",
           address: Annotated[str | None, typer.Option(
               "--address", help="Ray cluster address HOST:PORT (default: RAY_ADDRESS or a running local one)")] = None,
           actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Analyse every video (motion, audio events, learned violence score) into a ranked review queue.

    Resumable: a killed run continues where it stopped; a re-run skips what is current. With
    --engine ray the videos are spread over a Ray cluster's workers (which must see the case's files).
    """
    from custodes.store.case import CaseError
    from custodes.triage.runner import run_triage

    case = _open(case_dir)
    with _footage_progress("triage", as_json) as progress:
        try:
            rep = run_triage(case, _actor(actor), workers=workers, force=force, progress=progress,
                             engine=engine, address=address)
        except CaseError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(rep.as_dict())
        return
    console.print(f"Triage: {rep.analysed} video(s) analysed, {rep.skipped_current} already current, "
                  f"{len(rep.failed)} failed, {len(rep.not_analysable)} not analysable; "
                  f"{rep.segments} segment(s) in the queue. Next: [bold]custodes queue {case.root}[/]")
    for f in rep.failed + rep.not_analysable:
        console.print(f"[yellow]not analysed[/] {_n(f['name'])} ({f['sha256'][:12]}…): {_n(f['reason'])}")


@app.command()
def jobs(case_dir: CaseArg, as_json: JsonOpt = False) -> None:
    """Jobs run on this case (triage …): engine, workers, status, counts; newest first."""
    from custodes.triage.status import list_jobs

    docs = list_jobs(_open(case_dir))
    if as_json:
        _print_json(docs)
        return
    table = Table("started", "job", "kind", "engine", "status", "kept", "counts")
    for d in docs:
        table.add_row(f"{d['started_at']:%Y-%m-%d %H:%M}", d["id"][:8], d["kind"],
                      f"{d['engine']} ×{d['workers']}" + (f" {d['address']}" if d["address"] else ""), d["status"],
                      str(d["results_kept"]), ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in d["counts"].items()))
    console.print(table)


@app.command()
def pose(case_dir: CaseArg,
         top: Annotated[int, typer.Option("--top", min=1, help="How many of the best segments to look at")] = 20,
         min_score: Annotated[float, typer.Option("--min-score", help="Only segments scoring at least this")] = 0.3,
         actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """A second look at the top of the queue: a person on the floor, blows and kicks (MediaPipe pose).

    Adds pose signals and reasons to the best segments; scores do not change. Needs `make pose`.
    """
    from custodes.store.case import CaseError
    from custodes.triage.runner import run_pose

    case = _open(case_dir)
    with _footage_progress("pose", as_json) as progress:
        try:
            rep = run_pose(case, _actor(actor), top=top, min_score=min_score, progress=progress)
        except CaseError as exc:
            _fail(str(exc))
    if as_json:
        _print_json(rep.as_dict())
        return
    console.print(f"Pose: {rep.segments} segment(s) in {rep.videos} video(s) looked at ({rep.seconds:.0f} s), "
                  f"{rep.skipped_current} video(s) already current; {rep.down} person-down and {rep.strikes} strike "
                  f"span(s) found. See [bold]custodes queue {case.root}[/]")
    for f in rep.failed:
        console.print(f"[yellow]pose failed[/] {f['sha256'][:12]}…: {_e(f['reason'])}")


@app.command("analyzers")
def analyzers_cmd(as_json: JsonOpt = False) -> None:
    """Each analyzer: version, what it produces, what it needs, and whether that is installed."""
    from custodes.triage.analyzers import analyzers

    docs = [a.as_dict() for a in analyzers()]
    if as_json:
        _print_json(docs)
        return
    t = Table("analyzer", "version", "produces", "needs", "run by", "ready")
    for d in docs:
        t.add_row(d["name"], d["version"], ", ".join(d["produces"]), ", ".join(d["needs"] + d["system"]),
                  f"custodes {d['command']}", "yes" if d["available"] else "[red]no[/]")
    Console().print(t)


def _clock(t: float) -> str:
    m, s = divmod(int(round(t)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@app.command()
def queue(case_dir: CaseArg, limit: Annotated[int, typer.Option(help="Top N segments (0: all)")] = 50,
          min_score: Annotated[float, typer.Option("--min-score", help="Only segments scoring at least this")] = 0.0,
          as_json: JsonOpt = False) -> None:
    """The ranked review queue: video, start, end, score and the reasons (which signals fired)."""
    from custodes.triage.runner import queue_rows
    from custodes.triage.status import untriaged

    case = _open(case_dir)
    doc = queue_rows(case, limit=limit, min_score=min_score)
    waiting = untriaged(case)
    if waiting:
        console.print(f"[yellow]{len(waiting)} video(s) not triaged yet[/]: run [bold]custodes triage "
                      f"{_e(str(case.root))}[/] to rank them in the queue.")
    if as_json:
        _print_json(doc)
        return
    t = Table("#", "score", "video", "from", "to", "why", title="Review queue (highest first)")
    for r in doc["segments"]:
        t.add_row(str(r["rank"]), f"{r['score']:.2f}", _n(f"{r['name']} ({r['sha256'][:8]})"), _clock(r["start_s"]),
                  _clock(r["end_s"]), _n("; ".join(r["reasons"]) or "-"))
    Console().print(t)
    for f in doc["not_analysed"]:
        console.print(f"[yellow]not analysed[/] {_n(f['name'])} ({f['sha256'][:12]}…): {_n(f['reason'])}")
    for f in doc["partly_analysed"]:
        console.print(f"[yellow]partly analysed[/] {_n(f['name'])} ({f['sha256'][:12]}…): {_n(f['reason'])}")


def _iso(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _iso(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_iso(x) for x in v]
    return v.isoformat() if hasattr(v, "isoformat") else v


@app.command()
def timeline(case_dir: CaseArg, camera: Annotated[str | None, typer.Option("--camera", help="Only this camera")] = None,
             as_json: JsonOpt = False) -> None:
    """Per-camera recordings from the burnt-in clock, the gaps where recordings are missing, and
    moments covered by several cameras. Reads overlays of new videos first (resumable)."""
    from custodes.timeline.build import build_timeline, read_recordings, write_svg

    case = _open(case_dir)
    with _per_video_progress("reading overlays", as_json) as advance:
        read_recordings(case, progress=advance)
    doc = build_timeline(case, camera=camera)
    # an encrypted case keeps nothing in plaintext that names footage or times: the plot is in the review app
    svg = None if case.keys else write_svg(doc, case.reports / "timeline.svg")
    if as_json:
        _print_json({**_iso(doc), "plot": str(svg) if svg else None})
        return
    for c in doc["cameras"]:
        t = Table("start", "end", "file", "from", "conf.", title=f"{c['camera']}: {len(c['recordings'])} recording(s)")
        for r in c["recordings"]:
            gone = f" (deleted on the source; recovered {r['recovery']})" if r.get("deleted") else ""
            t.add_row(f"{r['start']:%Y-%m-%d %H:%M:%S}", f"{r['end']:%H:%M:%S}", _n(r["name"]) + gone, _n(r["source"]),
                      f"{r['confidence']:.2f}")
        Console().print(t)
        for g in c["gaps"]:
            Console().print(f"[bold red]GAP[/] {c['camera']} {g['start']:%Y-%m-%d %H:%M:%S} – {g['end']:%H:%M:%S} "
                            f"({g['duration_s']:.0f} s with no recording)")
    for k in doc["cuts"]:
        Console().print(f"[magenta]CUT[/] {k['camera']} {k['at']:%Y-%m-%d %H:%M:%S} in {_n(k['name'])} "
                        f"({k['offset_s']:.1f} s in): the picture changes abruptly — an edit, a camera switch or a "
                        "jump in time")
    for k in doc.get("edits", []):  # edits inside files (analyze.edits)
        when = f"{k['at']:%Y-%m-%d %H:%M:%S}" if k["at"] else "(not placed)"
        Console().print(f"[magenta]EDIT[/] {k['camera'] or ''} {when} in {_n(k['name'])} ({k['offset_s']:.1f} s "
                        f"in): {_n(k['seen'])}")
    for o in doc["overlaps"]:
        Console().print(f"[cyan]simultaneous[/] {', '.join(o['cameras'])}: {o['start']:%H:%M:%S} – {o['end']:%H:%M:%S}")
    for u in doc["unplaced"]:
        console.print(f"[yellow]not placed[/] {_n(u['name'])} ({u['sha256'][:12]}…): {_n(u['reason'])}")
    console.print(f"Timeline plot: {svg}" if svg else
                  "Timeline plot: in the review app (an encrypted case writes no plaintext plot)")


@app.command()
def dupes(case_dir: CaseArg, actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Clusters of near-duplicates (copies, re-encodes, clips) with each clip's offset in its source.
    Exact duplicates are one object with several origins (see `items`). Hashes new videos first (resumable).
    The matches are stored (sealed in the ledger, replacing the previous run's): in the review app a cluster
    is one row of the queue, and a review of one copy covers the others."""
    from custodes.dupes.index import clusters, hash_videos

    case = _open(case_dir)
    with _per_video_progress("hashing frames", as_json) as advance:
        hash_videos(case, progress=advance)
    doc = clusters(case, actor=_actor(actor))
    if as_json:
        _print_json(doc)
        return
    if not doc["clusters"]:
        console.print("No near-duplicates found.")
    console.print(f"{doc['matches']} match(es) stored as run {doc['run']} (replacing the previous run's).")
    for i, c in enumerate(doc["clusters"], 1):
        t = Table("sha256", "names", "relation", "offset in source", "duration", "resolution", "what was done",
                  title=f"Cluster {i}: {len(c['members'])} versions of one recording")
        for m in c["members"]:
            off = m["offset_in_source_s"]
            t.add_row(m["sha256"][:12], _n(", ".join(m["names"])), m["relation"],
                      "" if off is None else f"{off:+.1f} s", f"{m['duration_s']:.1f} s", m["resolution"],
                      _n("; ".join(m.get("transforms") or [])))
        Console().print(t)


@app.command()
def transcribe(case_dir: CaseArg,
               language: Annotated[str | None, typer.Option("--language", help="Force one language (en, ru…)")] = None,
               as_json: JsonOpt = False) -> None:
    """Transcribe speech (Whisper base, offline, VAD first, word timestamps) and index it for search."""
    from custodes.analyze.speech import SpeechModelUnavailable
    from custodes.search.transcribe import transcribe_case

    case = _open(case_dir)
    with _per_video_progress("transcribing", as_json) as advance:
        try:
            doc = transcribe_case(case, language, progress=advance)
        except SpeechModelUnavailable as exc:
            _fail(str(exc))
    if as_json:
        _print_json(doc)
    else:
        console.print(f"{doc['transcribed']} video(s) transcribed ({doc['skipped_current']} already current), "
                      f"{doc['segments']} speech segment(s) (machine transcript), {doc['translated']} with an "
                      f"English machine translation. Search with `custodes search {case.root} WORDS`.")


@app.command()
def search(case_dir: CaseArg, query: Annotated[str, typer.Argument(help="Words to find (all must occur)")],
           kind: Annotated[str | None, typer.Option("--kind", help="transcript, overlay or note")] = None,
           limit: Annotated[int, typer.Option(help="At most N hits")] = 50, as_json: JsonOpt = False) -> None:
    """Full-text search over transcripts, overlay text and notes."""
    from custodes.search.index import SearchError
    from custodes.search.index import search as run_search

    case = _open(case_dir)
    try:
        hits = run_search(case, query, limit=limit, kind=kind)
    except SearchError as exc:
        _fail(str(exc))
    from custodes.search.transcribe import MACHINE_TRANSLATION, translations

    english = translations(case, [h["ref"] for h in hits if h["kind"] == "transcript"])
    for h in hits:
        if h["kind"] == "transcript":
            h["translation"] = english.get(h["ref"])
            h["translation_is"] = MACHINE_TRANSLATION if h["translation"] else None
    if as_json:
        _print_json({"query": query, "hits": hits})
        return
    t = Table("kind", "video", "at", "text", title=f"{len(hits)} hit(s) for {query!r}")
    for h in hits:
        at = _clock(h["start_s"]) if h["start_s"] is not None else ""
        shown = _n(h["snippet"]) + (_e(f"\n[{MACHINE_TRANSLATION}, English] ") + _n(h["translation"])
                                    if h.get("translation") else "")
        t.add_row(h["kind"], _n(h["name"] or "-"), at, shown)
    Console().print(t)


@complaints_app.command("import")
def complaints_import(case_dir: CaseArg, csv_file: Annotated[Path, typer.Argument(
                          help="Register as CSV (comma-, semicolon- or tab-separated)")],
                      date_format: Annotated[str | None, typer.Option(
                          "--date-format", help="How the file writes dates, where they could be read two ways "
                          "(03/04/2012): DD/MM/YYYY, MM/DD/YYYY … or a strptime pattern such as "
                          "'%m/%d/%Y %H:%M' (local clock time: no %z/%Z offset)")] = None,
                      actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Import complaints (start/end or date/from/to, facility, unit, person, text; optional camera, ref).

    Dates like 2026-03-14 02:01 and 14.03.2026 02:01 are read as they stand; dates with slashes only when the
    file shows their order (25/03/2026), else give --date-format. With date/from/to, a "to" before the "from"
    is on the next day (23:50 to 00:10). A header that repeats a column, or a row with more fields than the
    header, is refused: nothing is imported."""
    from custodes.timeline.complaints import ComplaintsError, import_csv

    case = _open(case_dir)
    try:
        doc = import_csv(case, csv_file, _actor(actor), date_format)
    except (ComplaintsError, OSError) as exc:
        _fail(_why(exc))
    if as_json:
        _print_json(doc)
    else:
        console.print(f"{doc['imported']} complaint(s) imported ({doc['already_imported']} already there); "
                      f"the register is preserved as {doc['register_sha256'][:12]}…. "
                      f"Next: custodes complaints list {case.root}")


@complaints_app.command("list")
def complaints_list(case_dir: CaseArg, as_json: JsonOpt = False) -> None:
    """Each complaint with the recordings that cover its window; flagged where footage is missing."""
    from custodes.timeline.build import read_recordings
    from custodes.timeline.complaints import complaints_report

    case = _open(case_dir)
    read_recordings(case)
    rows = complaints_report(case)
    if as_json:
        _print_json(rows)
        return
    t = Table("when", "where", "person", "complaint", "covered by", "flags", title=f"{len(rows)} complaint(s)")
    for r in rows:
        cover = "\n".join(_n(f"{c['camera']}: {c['name']}") for c in r["covered_by"]) or "-"
        flags = "\n".join(r["flags"] + [f"gap {g['camera']} {g['start'][11:19]}–{g['end'][11:19]}"
                                         for g in r["gaps"]])
        where = " / ".join(x for x in (r["facility"], r["unit"]) if x)
        t.add_row(f"{r['start'][:19].replace('T', ' ')}–{r['end'][11:19]}", _e(where),
                  _e(r["person"]), _e(r["text"]), cover, f"[bold red]{_e(flags)}[/]" if flags else "")
    Console().print(t)


@app.command("eval-triage")
def eval_triage(directory: Annotated[Path, typer.Argument(help="Folder with violent/ and nonviolent/")],
                workers: Annotated[int, typer.Option("--workers", min=1)] = 2,
                as_json: JsonOpt = False) -> None:
    """ROC AUC, average precision and recall at 10% reviewed on labelled clips. Writes nothing to any case."""
    from custodes.triage.evaluate import EvalError, collect, evaluate

    try:
        n = len(collect(directory))
    except (EvalError, OSError) as exc:
        _fail(_why(exc))
    with progress.counting(console, "evaluating", "clips", as_json, total=n) as advance:
        doc = evaluate(directory, workers=workers, progress=advance)
    if as_json:
        _print_json(doc)
        return
    console.print(f"{doc['scored']} of {doc['clips']} clips scored ({doc['violent']} violent, "
                  f"{doc['nonviolent']} non-violent)")
    console.print(f"ROC AUC {doc['roc_auc']:.3f}   average precision {doc['average_precision']:.3f}   "
                  f"recall at 10% reviewed {doc['recall_at_10pct_reviewed']:.3f}")
    for f in doc["failed"]:
        console.print(f"[yellow]failed[/] {f['file']}: {f['reason']}")


@user_app.command("add")
def user_add(case_dir: CaseArg, name: Annotated[str, typer.Argument(help="User name")],
             role: Annotated[str, typer.Option(help="admin, investigator, reviewer or viewer")] = "reviewer",
             password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                          help="Read the password from stdin")] = False,
             actor: ActorOpt = None) -> None:
    """Add a user to this case (argon2id password hash; signed into the ledger)."""
    from custodes.web.users import UserError, add_user

    case = _open(case_dir)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        add_user(case, name, role, password, _actor(actor))
    except UserError as exc:
        _fail(str(exc))
    console.print(f"User {name} ({role}) added.")


@user_app.command("disable")
def user_disable(case_dir: CaseArg, name: Annotated[str, typer.Argument(help="User name")],
                 actor: ActorOpt = None) -> None:
    """Disable a user and end their sessions."""
    from custodes.web.users import UserError, set_disabled

    case = _open(case_dir)
    try:
        set_disabled(case, name, True, _actor(actor))
    except UserError as exc:
        _fail(str(exc))
    console.print(f"User {name} disabled.")


@user_app.command("list")
def user_list(case_dir: CaseArg, as_json: JsonOpt = False) -> None:
    """Users of this case."""
    from custodes.web.users import list_users

    users = list_users(_open(case_dir))
    if as_json:
        _print_json(users)
        return
    t = Table("name", "role", "disabled")
    for u in users:
        t.add_row(_e(u["name"]), u["role"], "yes" if u["disabled"] else "")
    Console().print(t)


@app.command()
def serve(case_dirs: Annotated[list[Path], typer.Argument(
              help="One case folder; or several, or a folder holding cases, for a team server", metavar="CASE")],
          host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port")] = 8080,
          server_dir: Annotated[Path | None, typer.Option(
              "--server", help="Team server folder (server users, sessions), outside every case; default "
              "$CUSTODES_SERVER, else $XDG_STATE_HOME/custodes/server. Given or with several cases: a team "
              "server", metavar="DIR")] = None,
          trusted_proxy: Annotated[str | None, typer.Option(
              "--trusted-proxy", help="Address(es) of your HTTPS proxy, comma-separated: only then is "
              "X-Forwarded-For read (for the address in the audit and the login throttle)")] = None,
          secure_cookies: Annotated[bool, typer.Option(
              "--secure-cookies", help="Mark cookies Secure (browsers then send them only over HTTPS): use "
              "behind a TLS proxy")] = False,
          session_hours: Annotated[float, typer.Option(
              "--session-hours", min=0.1, max=168, help="Absolute session lifetime; sessions also end after "
              "8 h idle")] = 12.0) -> None:
    """Serve the review app (log in at /login; API docs at /api/docs).

    One case: its own accounts (custodes user add). Several cases, a folder of cases, or --server:
    a team server, each case at /c/NAME/ for its members only, users at server level.

    A case's account is the membership, with its role. An existing account becomes a server user
    at its first login, with its password. Admins add users and members at /admin; each change
    is signed into that case's ledger.
    """
    from datetime import timedelta

    import uvicorn

    from custodes.web.app import create_app
    from custodes.web.background import server_config
    from custodes.web.team import TeamError, TeamStore, create_team_app, default_dir, find_cases, slugs_for

    try:
        found = find_cases(case_dirs)
    except TeamError as exc:
        _fail(_e(str(exc)))
    lifetime = timedelta(hours=session_hours)
    if len(found) == 1 and server_dir is None and (case_dirs[0] / "case.json").is_file():
        case = _open(found[0])
        _serve_checks([case], host, port)
        app: Any = create_app(case, session_lifetime=lifetime, secure_cookies=secure_cookies)
        where = ""
    else:
        cases = {slug: _open(d) for slug, d in slugs_for(found).items()}
        folder = server_dir or default_dir()
        if any(folder.resolve() == c.root.resolve() or c.root.resolve() in folder.resolve().parents
               for c in cases.values()):
            _fail(f"the server folder {_e(str(folder))} is inside a case: keep the server's state outside every "
                  "case (choose another with --server)")
        try:
            store = TeamStore(folder)
        except TeamError as exc:
            _fail(_e(str(exc)))
        _serve_checks(list(cases.values()), host, port, store.users())
        app = create_team_app(cases, store, session_lifetime=lifetime, secure_cookies=secure_cookies)
        where = f"; team server of {len(cases)} case(s): " + ", ".join(f"/c/{s}/" for s in cases) + \
            f"; server folder {folder}"
    if host not in ("127.0.0.1", "localhost", "::1") and not secure_cookies:
        console.print("[yellow]Serving beyond this machine without TLS: put it behind an HTTPS proxy "
                      "(and use --secure-cookies, --trusted-proxy).[/]")
    console.print(f"Review app: http://{host}:{port}/login  (Ctrl-C to stop){_e(where)}")
    uvicorn.Server(server_config(app, host, port, trusted_proxy)).run()


def _serve_checks(cases: list[Any], host: str, port: int, server_users: list[str] | None = None) -> None:
    """What would make a served app useless, said before any URL is printed: no one who can log in, or a port
    another program holds."""
    import socket

    from custodes.web.users import list_users

    if not server_users and not any(not u["disabled"] for c in cases for u in list_users(c)):
        what = "this case has no active users" if server_users is None else \
            "neither the server nor any of its cases has an active user"
        _fail(f"no one can log in: {what}. Add one with `custodes user add {cases[0].root} "
              "NAME --role admin` (it asks for a password), then run serve again")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        _fail(f"cannot serve on {_e(host)}: {_e(exc.strerror or str(exc))}")
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closed port is free
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno in (98, 48, 10048):  # EADDRINUSE (Linux, macOS, Windows)
                _fail(f"port {port} on {_e(host)} is in use by another program; stop it or choose another "
                      "port with --port")
            _fail(f"cannot serve on {_e(host)}:{port}: {_e(exc.strerror or str(exc))}")


@app.command()
def redact(case_dir: CaseArg, item: Annotated[str, typer.Argument(
               help="The item: its file name (or the end of its path) or its SHA-256 (8+ digits)")],
           faces: Annotated[str, typer.Option("--faces", help="blur, pixelate or solid")] = "blur",
           start: Annotated[float, typer.Option("--from", help="Start (s)")] = 0.0,
           end: Annotated[float | None, typer.Option("--to", help="End (s)")] = None,
           audio: Annotated[str, typer.Option("--audio", help="keep, remove or beep (speech → tone)")] = "keep",
           actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Make a face-redacted copy as a new object linked to its original (the original is never changed)."""
    from custodes.redact.derive import redact_item
    from custodes.redact.faces import RedactionError
    from custodes.store.inventory import ItemNotFound, resolve

    case = _open(case_dir)
    try:
        sha = resolve(case, item)
        with progress.step(console, f"Redacting faces ({faces}) in {sha[:12]}…", as_json):
            doc = redact_item(case, sha, _actor(actor), faces, start, end, audio)
    except (RedactionError, ItemNotFound, OSError) as exc:
        _fail(_why(exc))
    if as_json:
        _print_json(doc)
        return
    console.print(f"Redacted copy {doc['derivative'][:12]}… of {doc['original'][:12]}…: faces in "
                  f"{doc['frames_with_faces']} of {doc['frames']} frames. Check these frames by eye (lowest "
                  "detection confidence): " + ", ".join(f"{x['t']} s" for x in doc["lowest_confidence_frames"][:5]))


@app.command()
def export(case_dir: CaseArg, out: Annotated[Path, typer.Option("--out", help="New folder for the package")],
           items: Annotated[list[str] | None, typer.Option("--items", help="An item's file name (or the end of "
                                                           "its path) or SHA-256 (8+ digits); repeatable. Default: "
                                                           "every video", metavar="ITEM")] = None,
           names: Annotated[list[str] | None, typer.Option("--name", help="File name, taken as written "
                                                           "first, else with * and ? as wildcards (\"CAM-03*\"); a "
                                                           "name two different files share is refused, naming "
                                                           "both: choose by --items SHA-256; repeatable",
                                                           metavar="NAME")] = None,
           cameras: Annotated[list[str] | None, typer.Option("--camera", help="Camera id; repeatable",
                                                              metavar="CAMERA")] = None,
           since: Annotated[str | None, typer.Option("--since", help="Camera-clock time, \"2026-03-14 02:00:00\": "
                                                     "recordings that end after it", metavar="TIME")] = None,
           until: Annotated[str | None, typer.Option("--until", help="Camera-clock time: recordings that start "
                                                     "before it", metavar="TIME")] = None,
           language: Annotated[str, typer.Option("--language", help="Report language: en or ru",
                                                        metavar="en|ru")] = "en",
           timezone: Annotated[str | None, typer.Option("--timezone", help="Time zone for the report's times of "
                                                        "custody, like Europe/Moscow (default: the case's, else "
                                                        "UTC)", metavar="ZONE")] = None,
           derivatives: Annotated[bool, typer.Option("--derivatives/--no-derivatives", help="Redacted copies of "
                                                     "the chosen originals travel with them")] = True,
           actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Write a case package (originals, manifest, signed ledger slice, report) a court can verify offline."""
    from custodes.export.package import ExportError, export_package, parse_clock_option
    from custodes.store.inventory import ItemNotFound, resolve

    case = _open(case_dir)
    try:
        chosen = [resolve(case, it) for it in items] if items else None
        what = f"{len(chosen)} item(s)" if chosen else "the chosen videos"
        with progress.step(console, f"Exporting {what} to {out}…", as_json):
            doc = export_package(case, out, _actor(actor), chosen, names=names, cameras=cameras,
                                 since=parse_clock_option("--since", since), until=parse_clock_option("--until", until),
                                 language=language, derivatives=derivatives, timezone=timezone)
    except (ExportError, ItemNotFound, OSError) as exc:
        _fail(_why(exc))
    if as_json:
        _print_json(doc)
    else:
        console.print(f"Package with {doc['items']} item(s) written to {doc['out']}; "
                      f"check it anywhere with `custodes verify-package {doc['out']}`.")
        if doc["pdf"]:
            console.print(f"[yellow]{doc['pdf']}[/]")


@app.command("verify-package")
def verify_package_cmd(directory: Annotated[Path, typer.Argument(help="Package folder")],
                       expect_key: Annotated[str | None, typer.Option(
                           "--expect-key", help="The case key's or the exporter's fingerprint, as the sender gave "
                           "it to you by another channel: the package must be signed under it")] = None,
                       expect_head: Annotated[str | None, typer.Option(
                           "--expect-head", help="A ledger head published or sent earlier: it must be in the "
                           "package's ledger")] = None,
                       as_json: JsonOpt = False) -> None:
    """Check a package offline, without the case: every hash, the manifest signature, the ledger. Exit 1 on problems.

    Prints the case key and exporter fingerprints and the ledger head: compare them with what the sender told
    you by phone or in person (or pass them as --expect-key / --expect-head), since a package rebuilt from
    nothing under new keys is sound on its own terms.
    """
    from custodes.export.package import verify_package

    if not directory.is_dir():
        _fail(f"{directory} is not a folder")
    rep = verify_package(directory, expect_head=expect_head, expect_key=expect_key)
    if as_json:
        _print_json(rep.as_dict())
    else:
        for p in rep.problems:
            console.print(f"[bold red]{p.kind}[/] {_n(p.where)}: {_n(p.message)}")
        for w in rep.warnings:
            console.print(f"[yellow]{w.kind}[/] {_n(w.where)}: {_n(w.message)}")
        status = "[bold green]OK[/]" if rep.ok else f"[bold red]FAILED: {len(rep.problems)} problem(s)[/]"
        console.print(f"{status} — {rep.files_checked} files checked", highlight=False)
        console.print(f"case {_e(rep.case_id)}\n  case key      {rep.case_key or '-'}\n"
                      f"  exported by   {_e(rep.exporter)} with key {rep.exporter_key or '-'}\n"
                      f"  ledger head   {rep.ledger_head or '-'}\n"
                      "Compare these with what the sender gave you by another channel.", highlight=False)
    if not rep.ok:
        raise typer.Exit(1)


@app.command()
def demo(directory: Annotated[Path, typer.Argument(help="Where to build the demo case")] = Path("demo-case"),
         no_serve: Annotated[bool, typer.Option("--no-serve", help="Build and analyse only")] = False,
         force: Annotated[bool, typer.Option("--force", help="Replace an existing demo case")] = False,
         clip_seconds: Annotated[int, typer.Option("--clip-seconds", min=20, max=600,
                                                   help="Length of each synthetic clip")] = 60,
         port: Annotated[int, typer.Option(help="Port for the review app")] = 8080) -> None:
    """Generate a synthetic body-camera archive, ingest it into a new case and report what was found."""
    from custodes.demo.build import build_demo

    try:
        build_demo(directory, console=console, force=force, seconds=clip_seconds)
    except (RuntimeError, OSError) as exc:
        _fail(_why(exc))
    from custodes.demo.build import DEMO_PASSWORD, DEMO_USER

    console.print(f"Review app credentials: user [bold]{DEMO_USER}[/], password [bold]{DEMO_PASSWORD}[/] "
                  "(demo only — add real users with `custodes user add`).")
    if not no_serve:
        serve([directory], host="127.0.0.1", port=port)


def main() -> None:
    """The ``custodes`` command: every failure is one sentence, never a traceback.

    A full or failing disk, an unreachable or damaged database, a signing-key problem: what failed and what to
    do. Anything else is a bug, whose traceback goes to a crash file named in the sentence.
    """
    from custodes.errors import crash_report, explain
    from custodes.store.case import CaseError
    from custodes.store.ledger import LedgerError

    try:
        app()
    except (LedgerError, CaseError) as exc:
        console.print(f"[bold red]error:[/] {_e(str(exc))}")
        raise SystemExit(1) from None
    except Exception as exc:
        msg = explain(exc)
        with contextlib.suppress(OSError):  # stderr itself may be gone (a closed pipe): the status still says it
            console.print(f"[bold red]error:[/] {_e(msg or crash_report(exc))}")
        raise SystemExit(1 if msg else 70) from None


if __name__ == "__main__":  # pragma: no cover
    main()

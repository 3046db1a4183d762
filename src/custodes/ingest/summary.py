"""Ingest as a person runs it (the CLI, the demo): sources checked first, progress shown, the batch summarised."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custodes import progress as prog
from custodes.ingest.pipeline import Ingestor, IngestReport
from custodes.textsafe import printable


class SourceMissing(Exception):
    """A named source does not exist: nothing is ingested and nothing is written."""


def check_sources(sources: list[Path]) -> None:
    """Refuse the whole batch when a named source does not exist (a typo is not a refusal to record).

    A dangling link or an unreadable file does exist: the ingest records it as refused, with the reason."""
    missing = [s for s in sources if not os.path.lexists(s)]
    if missing:
        names = ", ".join(printable(str(s)) for s in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise SourceMissing(f"{'this source does' if len(missing) == 1 else 'these sources do'} not exist: "
                            f"{names}; nothing was ingested")


def source_bytes(sources: list[Path]) -> int:
    total = 0
    for p, st, _ in Ingestor.enumerate_sources(sources):
        if st is not None and not os.path.islink(p):
            total += st.st_size
    return total


def ingest_with_progress(case: Any, sources: list[Path], actor: str, note: str, console: Console,
                         quiet: bool = False) -> IngestReport:
    """Check the sources, then ingest them with progress (bytes hashed and stored, files probed)."""
    check_sources(sources)
    total = source_bytes(sources)
    with prog.board(console, quiet) as b:
        t_bytes = b.task("hashing + storing", prog.BYTES, total=total)
        t_probe = b.task("probing media", "files", visible=False)

        def progress(label: str, n: int) -> None:
            if label == "bytes":
                t_bytes.advance(n)
            elif label == "probe":
                t_probe.advance(n)

        return Ingestor(case, actor, note=note, progress=progress).run(sources)


def _n(text: Any) -> str:
    return escape(printable(str(text)))


def print_summary(console: Console, report: IngestReport) -> None:
    t = Table(title=f"Ingest batch {report.batch_id}", show_header=False)
    for label, value in [
        ("files seen", report.files_seen), ("bytes read", f"{report.bytes_read:,}"),
        ("new objects", report.objects_new), ("exact duplicates (same bytes elsewhere)", report.duplicates),
        ("already ingested (skipped)", report.already_ingested), ("archives unpacked", report.archives),
        ("archive members", report.archive_members), ("refused", len(report.refused)),
        ("media probed", ", ".join(f"{k}: {v}" for k, v in sorted(report.media.items())) or "-"),
    ]:
        t.add_row(label, str(value))
    if report.reconciled_events:
        t.add_row("ledger events recovered from an interrupted run", str(report.reconciled_events))
    if report.removed_partials:
        t.add_row("partial writes removed (interrupted run)", str(report.removed_partials))
    console.print(t)
    for r in report.refused:
        member = f" [{r['member_path']}]" if r["member_path"] else ""
        console.print(f"[yellow]refused[/] {_n(r['source_path'] + member)}: {_n(r['reason'])}")
    for m in report.problem_media:
        console.print(f"[yellow]{m['status']}[/] {_n(m['name'])} ({m['sha256'][:12]}…): {_n(m['reason'])}")

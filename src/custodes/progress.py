"""Progress for long steps, shown the same way by the CLI and the demo.

On a terminal: Rich bars and spinners. Anywhere else (a pipe, a log file, a cron job, CI) a bar that redraws
itself is lost, so each task prints plain lines instead: one when it starts, one at most every
``CUSTODES_PROGRESS_EVERY`` seconds (default 10) while it runs, and one when it ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.text import Text

BYTES, FOOTAGE = "bytes", "footage"  # units with their own display; any other unit is a plain count ("videos")


def _every() -> float:
    try:
        return max(0.0, float(os.environ.get("CUSTODES_PROGRESS_EVERY", "10")))
    except ValueError:
        return 10.0


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def amount(unit: str, done: float, total: float | None) -> str:
    """``done`` (of ``total``) in words: ``12.0 MB of 40.0 MB``, ``1.5 of 4.0 min of footage``, ``3/7 videos``."""
    if unit == BYTES:
        return _size(done) + (f" of {_size(total)}" if total else "")
    if unit == FOOTAGE:
        return f"{done / 60:.1f}" + (f" of {total / 60:.1f}" if total else "") + " min of footage"
    count = f"{int(done)}/{int(total)}" if total else f"{int(done)}"
    return f"{count} {unit}".rstrip()


class _AmountColumn(ProgressColumn):
    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()
        self._speed = TransferSpeedColumn()

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        if unit == BYTES:
            return Text.assemble(self._bytes.render(task), " ", self._speed.render(task))
        return Text(amount(unit, task.completed, task.total))


class Tracker:
    """One task's progress: ``set_total(n)`` once known, ``advance(n)`` as work is done."""

    def __init__(self, board: Board, label: str, unit: str, total: float | None, visible: bool) -> None:
        self.board, self.label, self.unit = board, label, unit
        self.total, self.done = total, 0.0
        self.started = self.last = time.monotonic()
        self.shown = False
        self.task_id: Any = None
        if board.prog is not None:
            self.task_id = board.prog.add_task(label, total=total, unit=unit, visible=visible)
        elif visible:
            self._line("…")

    def _line(self, text: str) -> None:
        if self.board.quiet:
            return
        self.shown = True
        self.last = time.monotonic()
        self.board.console.print(f"{self.label}: {text}", markup=False, highlight=False, soft_wrap=True)

    def set_total(self, total: float) -> None:
        self.total = total
        if self.board.prog is not None:
            self.board.prog.update(self.task_id, total=max(total, 1e-9))

    def advance(self, n: float) -> None:
        self.done += n
        if self.board.prog is not None:
            self.board.prog.update(self.task_id, visible=True)
            self.board.prog.advance(self.task_id, n)
        elif not self.shown:
            self._line("…")
        elif time.monotonic() - self.last >= _every():
            self._line(self._progress_text())

    def _progress_text(self) -> str:
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total and self.unit != FOOTAGE else ""
        return f"{amount(self.unit, self.done, self.total)}{pct}, {time.monotonic() - self.started:.0f} s"

    def finish(self) -> None:
        if self.board.prog is None and self.shown:
            self._line(f"done, {amount(self.unit, self.done, None)} in {time.monotonic() - self.started:.1f} s")


class Board:
    """Several trackers shown together (one Rich display on a terminal)."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console, self.quiet = console, quiet
        self.prog: Progress | None = None
        self.trackers: list[Tracker] = []
        if not quiet and console.is_terminal:
            self.prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), _AmountColumn(),
                                 TimeElapsedColumn(), console=console)

    def task(self, label: str, unit: str = "", total: float | None = None, visible: bool = True) -> Tracker:
        t = Tracker(self, label, unit, total, visible)
        self.trackers.append(t)
        return t


@contextmanager
def board(console: Console, quiet: bool = False) -> Iterator[Board]:
    """A set of progress tasks; bars on a terminal, plain lines elsewhere, nothing when ``quiet``."""
    b = Board(console, quiet)
    if b.prog is not None:
        with b.prog:
            yield b
        return
    try:
        yield b
    finally:
        for t in b.trackers:
            t.finish()


@contextmanager
def counting(console: Console, label: str, unit: str = "videos", quiet: bool = False,
             total: float | None = None) -> Iterator[Callable[[int], None]]:
    """Work done piece by piece; yields the advance callback."""
    with board(console, quiet) as b:
        t = b.task(label, unit, total=total)
        yield t.advance


@contextmanager
def footage(console: Console, label: str, quiet: bool = False) -> Iterator[Callable[[str, float], None]]:
    """Work measured in seconds of footage; yields the callback ``("total", s)`` / ``("advance", s)``."""
    with board(console, quiet) as b:
        t = b.task(label, FOOTAGE)

        def progress(kind: str, n: float) -> None:
            if kind == "total":
                t.set_total(n)
            else:
                t.advance(n)

        yield progress


@contextmanager
def step(console: Console, text: str, quiet: bool = False) -> Iterator[None]:
    """One long step without a measure: a spinner on a terminal; elsewhere a line when it starts and when it ends."""
    if quiet:
        yield
        return
    if console.is_terminal:
        with console.status(escape(text)):
            yield
        return
    t0 = time.monotonic()
    console.print(f"{text.rstrip('…. ')} …", markup=False, highlight=False, soft_wrap=True)
    yield
    console.print(f"{text.rstrip('…. ')}: done in {time.monotonic() - t0:.1f} s", markup=False, highlight=False,
                  soft_wrap=True)

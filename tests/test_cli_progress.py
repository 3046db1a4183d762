"""Progress off a terminal: plain lines that stay in a log (start, every N seconds, done), never redrawn bars."""

import io

import pytest
from rich.console import Console

from custodes import progress

pytestmark = pytest.mark.no_database


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


def test_plain_lines_with_amounts(monkeypatch):
    monkeypatch.setenv("CUSTODES_PROGRESS_EVERY", "0")  # a line for every advance
    con, out = _console()
    assert not con.is_terminal
    with progress.board(con) as b:
        t = b.task("hashing + storing", progress.BYTES, total=4_000_000)
        hidden = b.task("probing media", "files", visible=False)
        t.advance(1_000_000)
        t.advance(1_000_000)
    lines = out.getvalue().splitlines()
    assert lines[0] == "hashing + storing: …"
    assert lines[1].startswith("hashing + storing: 1.0 MB of 4.0 MB (25%)")
    assert lines[2].startswith("hashing + storing: 2.0 MB of 4.0 MB (50%)")
    assert lines[-1].startswith("hashing + storing: done, 2.0 MB in")
    assert not any("probing media" in line for line in lines)  # never used: never shown
    assert hidden.done == 0
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_throttled_by_default_and_footage_in_minutes(monkeypatch):
    monkeypatch.delenv("CUSTODES_PROGRESS_EVERY", raising=False)
    con, out = _console()
    with progress.footage(con, "triage") as cb:
        cb("total", 600)
        for _ in range(100):
            cb("advance", 3)
    lines = out.getvalue().splitlines()
    assert lines == ["triage: …", lines[-1]] and lines[-1].startswith("triage: done, 5.0 min of footage in")


def test_quiet_prints_nothing_and_steps_say_start_and_end():
    con, out = _console()
    with progress.counting(con, "hashing frames", quiet=True) as advance:
        advance(3)
    with progress.step(con, "Exporting [2] item(s)…", quiet=True):
        pass
    assert out.getvalue() == ""
    with progress.step(con, "Exporting [2] item(s)…"):
        pass
    first, last = out.getvalue().splitlines()
    assert first == "Exporting [2] item(s) …" and last.startswith("Exporting [2] item(s): done in")
    with pytest.raises(RuntimeError), progress.step(con, "Failing…"):
        raise RuntimeError("x")
    assert "Failing: done" not in out.getvalue()  # a step that failed never says done

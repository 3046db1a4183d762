"""Every command's --help reads as words, not as Python types."""

import re

import pytest
import typer
from typer.testing import CliRunner

from custodes.cli import app

pytestmark = pytest.mark.no_database

PROGRAMMER = re.compile(r"<[a-z][\w\[\], |]*>|\b(?:list|int|float|str|bool)\[|x[<>]=|INTEGER RANGE")


def _paths(cmd: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            out += _paths(sub, (*prefix, name))
    return out


def test_help_has_no_programmer_type_tags():
    runner = CliRunner()
    paths = _paths(typer.main.get_command(app))
    assert len(paths) > 20
    for path in paths:
        res = runner.invoke(app, [*path, "--help"], terminal_width=100, prog_name="custodes")
        assert res.exit_code == 0, (path, res.output)
        usage = next(line for line in res.output.splitlines() if "Usage:" in line)
        bad = PROGRAMMER.findall(res.output) + re.findall(r"\{\w+\}", usage)  # typer's {case_dir}
        assert not bad, f"custodes {' '.join(path)} --help shows {bad}:\n{res.output}"


def test_help_names_types_and_ranges_in_words():
    out = CliRunner().invoke(app, ["triage", "--help"], terminal_width=100, prog_name="custodes").output
    assert "Usage: custodes triage [OPTIONS] CASE" in out
    assert re.search(r"--workers\s+N \[at least 1\]", out)
    out = CliRunner().invoke(app, ["ingest", "--help"], terminal_width=100, prog_name="custodes").output
    assert "CASE SOURCES..." in out and re.search(r"SOURCES\.\.\.\s+PATH", out)
    out = CliRunner().invoke(app, ["serve", "--help"], terminal_width=120, prog_name="custodes").output
    assert re.search(r"--session-hours\s+NUMBER \[0\.1 to 168\]", out)

"""Write docs/cli.md, the CLI reference, from the commands' own ``--help``.

    .venv/bin/python scripts/cli_reference.py           # rewrite docs/cli.md
    .venv/bin/python scripts/cli_reference.py --check   # exit 1 if docs/cli.md is not what the CLI says

tests/test_cli_reference.py runs the check, so a change of any command's help fails CI until the reference is
regenerated.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "cli.md"
WIDTH = 100


def _commands(group: object, path: list[str]) -> list[list[str]]:
    found = [path]
    commands = getattr(group, "commands", None) or {}
    for name, cmd in commands.items():  # in the order the CLI lists them
        if not getattr(cmd, "hidden", False):
            found += _commands(cmd, [*path, name])
    return found


def reference() -> str:
    os.environ.update(COLUMNS=str(WIDTH), TERM="dumb", NO_COLOR="1", _TYPER_FORCE_DISABLE_TERMINAL="1")
    import typer
    from typer.testing import CliRunner

    from custodes.cli import app

    root = typer.main.get_command(app)
    runner = CliRunner()
    parts = ["# CLI reference", "",
             "Generated from the commands' own `--help` by `scripts/cli_reference.py`; do not edit by hand.", ""]
    for path in _commands(root, []):
        result = runner.invoke(app, [*path, "--help"], prog_name="custodes", terminal_width=WIDTH,
                               env={"COLUMNS": str(WIDTH)})
        if result.exit_code != 0:
            raise SystemExit(f"custodes {' '.join(path)} --help failed: {result.output}")
        text = "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())
        title = "custodes " + " ".join(path) if path else "custodes"
        parts += [f"## {title}", "", "```text", text, "```", ""]
    return "\n".join(parts)


def main() -> int:
    text = reference()
    if "--check" in sys.argv[1:]:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(REPO)} is not what the CLI's help says: run "
                  f".venv/bin/python scripts/cli_reference.py and commit it", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every --json output is strict JSON: one document, no NaN or Infinity (which strict parsers refuse)."""

import json
import math

import pytest
from typer.testing import CliRunner

from custodes import cli
from custodes.cli import app


def strict(text: str):
    def refuse(const: str):
        raise ValueError(f"{const} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.no_database
def test_non_finite_numbers_print_as_null(capsys):
    import numpy as np

    cli._print_json({"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float64("nan"), "d": (2, math.nan)})
    assert strict(capsys.readouterr().out) == {"a": None, "b": [None, None, 1.5], "c": None, "d": [2, None]}


@pytest.mark.slow
def test_every_listing_command_prints_strict_json(case, small_clip, tmp_path):
    runner = CliRunner()

    def run(*args: str):
        res = runner.invoke(app, [*map(str, args), "--json"], prog_name="custodes")
        assert res.exit_code == 0, (args, res.output)
        return strict(res.stdout)

    reg = tmp_path / "register.csv"
    reg.write_text("start;end;text\n2026-01-02 03:04:06;2026-01-02 03:04:08;x\n")
    root = case.root
    run("ingest", root, small_clip)
    run("triage", root, "--workers", "1")
    run("complaints", "import", root, reg)
    docs = {
        "items": run("items", root), "queue": run("queue", root), "timeline": run("timeline", root),
        "dupes": run("dupes", root), "search": run("search", root, "CAM"),
        "complaints": run("complaints", "list", root),
        "users": run("user", "list", root), "jobs": run("jobs", root), "ledger": run("ledger", "show", root),
        "head": run("ledger", "head", root), "analyzers": run("analyzers"), "verify": run("verify", root),
    }
    assert len(docs["items"]) == 2 and docs["queue"]["segments"] and docs["verify"]["ok"]
    assert docs["jobs"][0]["kind"] and docs["head"]["head"]

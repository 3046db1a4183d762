"""The layout shows the pipeline: the CLI and the demo call stage functions; no stage imports the CLI or the
demo, and the analyze layer never reaches up into a stage built on it (triage, timeline, dupes …)."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_database

SRC = Path(__file__).resolve().parents[1] / "src" / "custodes"
ABOVE_ANALYZE = {"triage", "timeline", "dupes", "search", "redact", "export", "web", "demo", "cli", "ingest"}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("custodes"):
            out.add(node.module)
            if node.module == "custodes":
                out |= {f"custodes.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("custodes")}
    return out


def _package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_only_the_entry_point_imports_the_cli():
    users = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
             if p.name != "cli.py" and any(_package(m) == "cli" for m in _imports(p))]
    assert users == ["__main__.py"]


def test_the_demo_calls_stages_not_the_cli():
    for p in (SRC / "demo").rglob("*.py"):
        assert not {m for m in _imports(p) if _package(m) == "cli"}, p


def test_the_analyze_layer_does_not_reach_up():
    for p in (SRC / "analyze").rglob("*.py"):
        up = {m for m in _imports(p) if _package(m) in ABOVE_ANALYZE}
        assert not up, f"{p.relative_to(SRC)} imports {sorted(up)}"


def test_every_analyzer_is_still_listed():
    from custodes.triage.analyzers import analyzers

    names = [a.name for a in analyzers()]
    assert (names.index("motion") < names.index("violence model") < names.index("video network check")
            < names.index("triage score"))
    assert {"fast pass", "scene cuts", "audio events", "pose", "overlay OCR", "speech"} <= set(names)

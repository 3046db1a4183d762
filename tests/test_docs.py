"""The docs are tested: every ``console`` block in README.md and docs/ is run, and its output compared.

A ``console`` block holds commands (lines starting with ``$ ``) each followed by the output it prints.
The blocks of one page run in order, in one fresh working directory, so a page reads as one session.
What a page needs before its first command is named in an HTML comment at its top::

    <!-- docs-test: demo-source -->   the synthetic drive of the demo in ./demo-case-source
    <!-- docs-test: demo-case -->     and the demo case built from it in ./demo-case (``custodes demo``)

Outputs are compared as runs of words (where a message wraps depends on the paths in it), after
box-drawing runs are collapsed and hexadecimal digests masked (they change with every key and every encoder
build). In a shown output, ``…`` stands for any text, a line holding only ``…`` for any number of lines.
A command expected to fail ends with the comment ``# exits N``; every other command must exit 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO

# The docs test the CLI, not a database backend: it runs once, on the SQLite pass.
pytestmark = [pytest.mark.no_database, pytest.mark.slow]

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SETUP = re.compile(r"<!--\s*docs-test:\s*([\w\s,-]+?)\s*-->")
EXITS = re.compile(r"\s+#\s*exits\s+(\d+)\s*$")
HEX = re.compile(r"\b[0-9a-f]{7,64}\b")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
BOX_RUN = re.compile(r"([─━═│┃┄┈╌-])\1+")


@dataclass
class Command:
    line: int  # where the command is in its page (1-based)
    text: str
    expected: list[str] = field(default_factory=list)
    exit_code: int = 0


def console_commands(text: str) -> list[Command]:
    """The commands of every ``console`` block of a page, with the output each is shown to print."""
    commands: list[Command] = []
    in_block = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block = line.strip() == "```console" if not in_block else False
            continue
        if not in_block:
            continue
        if line.startswith("$ "):
            cmd = line[2:]
            code = 0
            if m := EXITS.search(cmd):
                code, cmd = int(m.group(1)), cmd[:m.start()]
            commands.append(Command(number, cmd, exit_code=code))
        elif commands:
            commands[-1].expected.append(line)
    return commands


def normalise(line: str) -> str:
    line = UUID.sub("<uuid>", line)
    line = HEX.sub("<hex>", line)
    line = BOX_RUN.sub(r"\1", line)
    return " ".join(line.split())


def output_matches(expected: list[str], actual: str) -> bool:
    """Does ``actual`` read as ``expected``, with ``…`` for any text?

    Both are read as one run of words: where rich wraps a message depends on the length of the paths in
    it, and a page cannot know the folder its commands run in."""
    want = " ".join(normalise(line) for line in expected).split()
    pattern = ""
    for i, word in enumerate(want):
        if word == "…":  # any words, or none
            pattern += ".*?" if i == 0 else r"(?:\s.*?)?"
            continue
        rx = "".join(".*?" if piece == "…" else re.escape(piece) for piece in re.split(r"(…)", word))
        pattern += (r"\s+" if pattern and not pattern.endswith(".*?") else r"\s*") + rx
    text = " ".join(normalise(line) for line in actual.splitlines()).strip()
    return re.fullmatch(pattern + r"\s*", text, flags=re.S) is not None


def _pages_with_commands() -> list[Path]:
    return [p for p in PAGES if console_commands(p.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def demo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from custodes.demo.build import build_drive

    drive = tmp_path_factory.mktemp("docs-demo") / "demo-case-source"
    build_drive(drive)
    return drive


@pytest.fixture(scope="module")
def demo_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    case = tmp_path_factory.mktemp("docs-demo-case") / "demo-case"
    proc = subprocess.run([sys.executable, "-m", "custodes", "demo", str(case), "--no-serve"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return case


def _environment(work: Path) -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_") or k == "CUSTODES_CACHE"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", COLUMNS="100", LINES="50", TERM="dumb",
               NO_COLOR="1", PYTHONUNBUFFERED="1", CUSTODES_ACTOR="alice", HOME=str(work / "home"),
               TZ="UTC")
    if "CUSTODES_CACHE" not in env:
        # the joined Whisper weights: share the user's cache instead of joining them again per test
        env["CUSTODES_CACHE"] = str(Path(os.environ.get("HOME", "/root")) / ".cache" / "custodes")
    return env


@pytest.mark.parametrize("page", _pages_with_commands(), ids=lambda p: str(p.relative_to(REPO)))
def test_console_blocks_print_what_the_page_shows(page: Path, tmp_path: Path,
                                                   request: pytest.FixtureRequest) -> None:
    text = page.read_text(encoding="utf-8")
    setup = {s.strip() for m in SETUP.finditer(text) for s in m.group(1).replace(",", " ").split()}
    work = tmp_path / "work"
    (work / "home").mkdir(parents=True)
    if "demo-source" in setup or "demo-case" in setup:
        shutil.copytree(request.getfixturevalue("demo_source"), work / "demo-case-source")
    if "demo-case" in setup:
        shutil.copytree(request.getfixturevalue("demo_case"), work / "demo-case", symlinks=True)
    env = _environment(work)
    failures = []
    for cmd in console_commands(text):
        proc = subprocess.run(["bash", "-c", cmd.text + " 2>&1"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=1800)
        where = f"{page.relative_to(REPO)}:{cmd.line}: $ {cmd.text}"
        if proc.returncode != cmd.exit_code:
            failures.append(f"{where}\n  exited {proc.returncode}, the page says {cmd.exit_code}:\n{proc.stdout}")
        elif not output_matches(cmd.expected, proc.stdout):
            failures.append(f"{where}\n  the page shows:\n" + "\n".join(cmd.expected)
                            + "\n  it printed:\n" + proc.stdout)
    assert not failures, "\n\n".join(failures)


# The matcher itself: a wrong match would let every page pass.

def test_matcher_masks_digests_and_whitespace_but_not_words() -> None:
    assert output_matches(["OK — 11 objects, head dfb45067…"], "OK —  11 objects, head 0a1b2c3d4e5f\n")
    assert not output_matches(["OK — 11 objects"], "OK — 12 objects\n")
    assert not output_matches(["OK — 11 objects"], "OK — 11 objects\nFAILED: 1 problem\n")
    assert output_matches(["┏━━━┳━━┓", "│ a │ b │"], "┏━━━━━━┳━━━━┓\n│ a   │ b │\n")


def test_matcher_ellipsis_lines_stand_for_any_lines() -> None:
    assert output_matches(["first", "…", "last"], "first\nsecond\nthird\nlast\n")
    assert output_matches(["first", "…", "last"], "first\nlast\n")
    assert not output_matches(["first", "last"], "first\nsecond\nlast\n")
    assert output_matches(["a message that wraps at …/case here"], "a message that wraps at\n/tmp/x/case here\n")
    assert output_matches(["Moved … rows"], "Moved 48,210 rows\n")
    assert not output_matches(["Moved … rows"], "Moved 48,210 columns\n")


def test_commands_are_read_with_their_expected_exit_status() -> None:
    page = "```console\n$ custodes verify x   # exits 1\nFAILED\n```\n```bash\n$ not run\n```\n"
    [cmd] = console_commands(page)
    assert cmd.text == "custodes verify x" and cmd.exit_code == 1 and cmd.expected == ["FAILED"]


def test_cli_reference_is_what_the_commands_say() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "cli_reference.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_docs_site_builds_offline_and_loads_nothing_from_outside(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-q", "-f",
                           str(REPO / "mkdocs.yml"), "-d", str(site)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_PROXY": "*", "http_proxy": "http://0.0.0.0:9",
                               "https_proxy": "http://0.0.0.0:9"})
    assert proc.returncode == 0, proc.stderr
    pages = sorted(site.rglob("*.html"))
    assert {p.name for p in pages} >= {"index.html", "investigator-guide.html", "formats.html", "cli.html"}
    external = re.compile(r"""<(?:script|link|img|iframe)[^>]+(?:src|href)=["'](?:https?:)?//""", re.I)
    for page in pages:
        assert not external.search(page.read_text(encoding="utf-8")), f"{page.name} loads something from outside"

"""The CLI traps a person falls into (issue 25): each says what is wrong, or what to do, in one sentence."""

import json
import re
import shutil
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custodes.cli import app
from custodes.store.case import Case
from tests.conftest import run_cli


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], terminal_width=200, prog_name="custodes")


def strict_json(text: str):
    def refuse(const: str):
        raise ValueError(f"not JSON: {const}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def filled(case: Case, small_clip: Path, tmp_path: Path) -> Case:
    src = tmp_path / "drive"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    shutil.copy(small_clip, src / "a" / "CAM07_small.mp4")
    (src / "b" / "CAM07_small.mp4").write_bytes(small_clip.read_bytes()[:-1000])  # same name, other bytes
    shutil.copy(small_clip, src / "a" / "unique_name.mp4")
    (src / "notes.txt").write_text("received from K\n")
    (src / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    res = cli("ingest", case.root, src)
    assert res.exit_code == 0, res.output
    return case


def test_ingest_of_a_missing_path_fails_and_writes_nothing(case: Case, small_clip: Path):
    before = list(case.ledger.entries())
    res = run_cli("ingest", str(case.root), str(small_clip), str(small_clip.parent / "no-such-file.mp4"))
    assert res.returncode == 1
    assert "does not exist" in res.stderr and "no-such-file.mp4" in res.stderr and "Traceback" not in res.stderr
    assert list(Case(case.root).ledger.entries()) == before
    assert strict_json(run_cli("items", str(case.root), "--json").stdout) == []


def test_serve_without_users_says_how_to_add_one(case: Case):
    res = cli("serve", case.root, "--port", "0")
    assert res.exit_code == 1
    out = " ".join(res.output.split())
    assert "no active users" in out and "custodes user add" in out and "http://" not in out


def test_serve_on_a_port_in_use_says_so_before_any_url(case: Case):
    from custodes.web.users import add_user

    add_user(case, "ivan", "investigator", "a-long-password-1", "tester")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = cli("serve", case.root, "--port", port)
    assert res.exit_code == 1
    out = " ".join(res.output.split())
    assert f"port {port}" in out and "in use" in out and "http://" not in out


def test_queue_on_an_untriaged_case_says_to_run_triage(filled: Case):
    res = cli("queue", filled.root)
    assert res.exit_code == 0
    assert "not triaged yet" in res.output and "custodes triage" in res.output


def test_items_say_what_each_object_is(filled: Case):
    docs = strict_json(cli("items", filled.root, "--json").stdout)
    what = {c["source_path"].split("drive/")[1]: d["what"] for d in docs for c in d["copies"]}
    assert what["notes.txt"] == "document" and what["photo.jpg"] == "image"
    assert what["a/CAM07_small.mp4"] == what["a/unique_name.mp4"] == "video"
    assert what["b/CAM07_small.mp4"] == "unreadable media"
    video = next(d["sha256"] for d in docs if "unique_name.mp4" in [c["name"] for c in d["copies"]])
    res = cli("redact", filled.root, "unique_name.mp4", "--json")  # a file name, not a hash
    assert res.exit_code == 0, res.output
    red = strict_json(res.stdout)
    assert red["original"] == video
    docs = strict_json(cli("items", filled.root, "--json").stdout)
    der = next(d for d in docs if d["sha256"] == red["derivative"])
    assert der["what"].startswith("redacted copy of ") and der["derived_from"]["original"] == video
    assert "redacted" in cli("items", filled.root).output
    # the name items shows for the copy finds it again
    res = cli("export", filled.root, "--out", filled.root.parent / "pkg", "--items", der["name"], "--json")
    assert res.exit_code == 0, res.output
    assert der["name"] == "CAM07_small (redacted copy).mp4"


def test_redact_and_export_take_names_and_refuse_ambiguous_ones(filled: Case, tmp_path: Path):
    res = cli("redact", filled.root, "CAM07_small.mp4")
    assert res.exit_code == 1
    out = "".join(res.output.split())
    assert "names2differentitems" in out and "a/CAM07_small.mp4" in out and "b/CAM07_small.mp4" in out
    res = cli("export", filled.root, "--out", tmp_path / "pkg", "--items", "a/CAM07_small.mp4", "--json")
    assert res.exit_code == 0, res.output
    assert strict_json(res.stdout)["items"] == 1
    res = cli("export", filled.root, "--out", tmp_path / "pkg2", "--items", "nothing-like-this.mp4")
    assert res.exit_code == 1 and "noitemisnamed" in "".join(res.output.split())


@pytest.mark.slow
def test_progress_is_plain_lines_off_a_terminal(case: Case, small_clip: Path, tmp_path: Path):
    res = run_cli("ingest", str(case.root), str(small_clip))
    assert res.returncode == 0
    assert "hashing + storing: …" in res.stderr and "hashing + storing: done" in res.stderr
    res = run_cli("export", str(case.root), "--out", str(tmp_path / "pkg"), "--items", small_clip.name)
    assert res.returncode == 0, res.stderr
    assert "Exporting 1 item(s) to" in res.stderr and "done in" in res.stderr
    res = run_cli("redact", str(case.root), small_clip.name)
    assert res.returncode == 0, res.stderr
    assert re.search(r"Redacting faces \(blur\) in \w{12} …\n.*Redacting faces \(blur\) in \w{12}: done in", res.stderr)

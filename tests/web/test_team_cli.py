"""`custodes serve` as a team server: what it refuses, in one sentence, before any URL is printed."""

import socket

from typer.testing import CliRunner

from custodes.cli import app
from custodes.store.case import Case
from custodes.web.users import add_user


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def said(res) -> str:
    return " ".join(res.output.split())


def test_a_folder_without_cases_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    res = cli("serve", tmp_path / "empty", "--port", "0")
    assert res.exit_code == 1 and "neither a case nor a folder holding cases" in said(res)
    assert "Traceback" not in res.output and "http://" not in res.output


def test_the_server_folder_may_not_be_inside_a_case(tmp_path):
    a = Case.init(tmp_path / "cases" / "a", "tester", title="A")
    add_user(a, "alma", "admin", "a-long-password-1", "tester")
    res = cli("serve", a.root, "--server", a.root / "server", "--port", "0")
    assert res.exit_code == 1 and "inside a case" in said(res) and "http://" not in res.output
    assert not (a.root / "server").exists()


def test_a_team_server_of_cases_without_users_says_how_to_add_one(tmp_path):
    Case.init(tmp_path / "cases" / "a", "tester", title="A")
    Case.init(tmp_path / "cases" / "b", "tester", title="B")
    res = cli("serve", tmp_path / "cases", "--server", tmp_path / "server", "--port", "0")
    assert res.exit_code == 1 and "no one can log in: neither the server nor any of its cases" in said(res)
    assert "custodes user add" in said(res) and "http://" not in res.output


def test_a_team_server_on_a_port_in_use_says_so_and_keeps_its_state_outside_the_cases(tmp_path):
    a = Case.init(tmp_path / "cases" / "a", "tester", title="A")
    Case.init(tmp_path / "cases" / "b", "tester", title="B")
    add_user(a, "alma", "admin", "a-long-password-1", "tester")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = cli("serve", tmp_path / "cases", "--server", tmp_path / "server", "--port", port)
    assert res.exit_code == 1 and f"port {port}" in said(res) and "in use" in said(res)
    assert (tmp_path / "server" / "server.db").is_file()
    assert (tmp_path / "server").stat().st_mode & 0o077 == 0

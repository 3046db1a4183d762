"""Changing one's own password in a case served alone (issue 22, web/password_view.py): the change works and
ends every other session of the user, the current one going on; each refusal is one sentence on the page (HTML,
4xx, never JSON, nothing typed sent back) and changes nothing; the login's throttle counts this form's wrong
guesses too; the ledger says who changed it without the secret or its hash, and the case still verifies; the
page follows the user's language; on a team server the server's own /password stays the only one. Real cases,
real SQLite, the real app through TestClient."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.db import User, WebSession
from custodes.store.verify import verify_case
from custodes.web.app import create_app
from custodes.web.users import add_user, check_password
from tests.web.conftest import PASSWORD, login

NEW = "a brand new passphrase"


@pytest.fixture
def case(tmp_path) -> Case:
    case = Case.init(tmp_path / "case", "tester", title="Password test case")
    add_user(case, "rita", "reviewer", PASSWORD, "tester")
    add_user(case, "petr", "reviewer", PASSWORD, "tester")
    return case


def logged_in(case: Case, user: str = "rita", ip: str = "127.0.0.1", password: str = PASSWORD) -> TestClient:
    client = TestClient(create_app(case), client=(ip, 50000))
    r = login(client, user, password)
    assert (r.status_code, r.headers["location"]) == (303, "/"), r.text
    return client


def csrf_of(client: TestClient) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/password").text).group(1)


def change(client: TestClient, current: str, new: str, again: str | None = None, csrf: str | None = None,
           **headers: str):
    data = {"csrf": csrf_of(client) if csrf is None else csrf, "current": current, "new": new,
            "again": new if again is None else again}
    return client.post("/password", data={k: v for k, v in data.items() if v is not None}, headers=headers,
                       follow_redirects=False)


def stored_hash(case: Case, name: str = "rita") -> str:
    with case.sessions() as s:
        return s.scalars(select(User).where(User.name == name)).one().password_hash


def session_rows(case: Case, name: str) -> set[str]:
    with case.sessions() as s:
        uid = s.scalars(select(User).where(User.name == name)).one().id
        return {w.token_hash for w in s.scalars(select(WebSession).where(WebSession.user_id == uid))}


def password_events(case: Case) -> list[dict]:
    return [e for e in case.ledger.entries() if e["action"] == "user.password"]


def test_a_change_works_ends_the_other_sessions_and_keeps_this_one(case):
    here, elsewhere = logged_in(case), logged_in(case, ip="127.0.0.2")
    petr = logged_in(case, "petr", ip="127.0.0.3")
    assert len(session_rows(case, "rita")) == 2
    page = here.get("/")
    assert page.text.count('id="password-link"') == 1 and 'href="/password"' in page.text  # in the header
    r = change(here, PASSWORD, NEW)
    assert (r.status_code, r.headers["location"]) == (303, "/password?done=1")
    done = here.get(r.headers["location"])
    assert done.status_code == 200 and "Your password was changed." in done.text and 'id="password-done"' in done.text
    assert NEW not in done.text and PASSWORD not in done.text

    # this session goes on; rita's other one is over; petr's is not rita's and stays
    assert here.get("/", follow_redirects=False).status_code == 200
    r = elsewhere.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert petr.get("/", follow_redirects=False).status_code == 200
    assert len(session_rows(case, "rita")) == 1

    # the old password no longer logs in, the new one does
    fresh = TestClient(create_app(case), client=("127.0.0.4", 50000))
    r = login(fresh, "rita", PASSWORD)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?error")
    assert login(fresh, "rita", NEW).headers["location"] == "/"
    with case.sessions() as s:
        row = s.scalars(select(User).where(User.name == "rita")).one()
        assert check_password(row, NEW) and not check_password(row, PASSWORD)


def test_the_ledger_says_who_changed_it_without_the_secret_and_the_case_verifies(case):
    client = logged_in(case)
    old_hash = stored_hash(case)
    assert change(client, PASSWORD, NEW).status_code == 303
    events = password_events(case)
    assert len(events) == 1
    assert events[0]["actor"] == "rita"
    assert events[0]["details"] == {"user": "rita", "by": "rita", "via": "review app", "reset": False}
    raw = case.ledger.path.read_bytes()
    for secret in (PASSWORD, NEW, old_hash, stored_hash(case)):
        assert secret.encode() not in raw
    assert "$argon2" not in raw.decode("utf-8", "replace")
    report = verify_case(case)
    assert report.ok, [p.__dict__ for p in report.problems]


REFUSALS = [  # (what is sent, status, the sentence)
    ({"current": "not the password at all", "new": NEW}, 403,
     "The current password is wrong: type the one you logged in with."),
    ({"current": PASSWORD, "new": NEW, "again": "a different new passphrase"}, 422,
     "The two new passwords differ: type the same new password twice."),
    ({"current": PASSWORD, "new": "short1"}, 422,
     "The new password has fewer than 10 characters: choose a longer one."),
    ({"current": PASSWORD, "new": "x" * 1025}, 422,
     "The new password has more than 1024 characters: choose a shorter one."),
    ({"current": PASSWORD, "new": PASSWORD}, 422, "The new password is the one you have now: choose another."),
    ({"current": None, "new": NEW}, 422, "Fill in all three fields: your current password, then the new one twice."),
    ({"current": PASSWORD, "new": NEW, "again": ""}, 422,
     "Fill in all three fields: your current password, then the new one twice."),
    ({"current": PASSWORD, "new": NEW, "csrf": "not-the-token"}, 403,
     "This form had expired (it was opened before you last logged in, or in another window): fill it in again."),
    ({"current": PASSWORD, "new": NEW, "csrf": ""}, 403,
     "This form had expired (it was opened before you last logged in, or in another window): fill it in again."),
]


@pytest.mark.parametrize(("sent", "status", "sentence"), REFUSALS,
                         ids=["wrong-current", "mismatch", "too-short", "too-long", "same", "no-current", "no-again",
                              "bad-csrf", "no-csrf"])
def test_a_refusal_is_one_sentence_on_the_page_and_changes_nothing(case, sent, status, sentence):
    client, other = logged_in(case), logged_in(case, ip="127.0.0.2")
    before, sessions = stored_hash(case), session_rows(case, "rita")
    # asked for as JSON, still answered with the page: a form's answer is HTML
    r = change(client, sent["current"], sent["new"], sent.get("again"), sent.get("csrf"), accept="application/json")
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    said = re.search(r'<p class="error" role="alert" id="password-error">([^<]*)</p>', r.text)
    assert said is not None and said.group(1) == sentence
    assert 'id="password-form"' in r.text
    for typed in (sent["current"], sent["new"], sent.get("again")):  # nothing typed comes back
        if typed:
            assert typed not in r.text
    assert not re.search(r'type="password"[^>]* value=', r.text)
    assert stored_hash(case) == before and session_rows(case, "rita") == sessions
    assert password_events(case) == []
    assert other.get("/", follow_redirects=False).status_code == 200


def test_wrong_guesses_here_count_against_the_login_and_the_other_way(case):
    client = logged_in(case)
    before = stored_hash(case)
    for _ in range(5):
        assert change(client, "a wrong guess here", NEW).status_code == 403
    # the throttle is full: even the right current password is not checked now, and /login is refused too
    r = change(client, PASSWORD, NEW)
    assert r.status_code == 429 and r.headers["retry-after"] == "900"
    assert "Too many failed logins for this user name or address: wait 15 minutes and try again." in r.text
    assert r.headers["content-type"].startswith("text/html")
    assert stored_hash(case) == before and password_events(case) == []
    elsewhere = TestClient(create_app(case), client=("127.0.0.9", 50000))  # another address: the name counts
    assert login(elsewhere, "rita").status_code == 429

    # and failed logins under petr's name fill the throttle for his password form
    petr = logged_in(case, "petr", ip="127.0.0.5")
    guesser = TestClient(create_app(case), client=("127.0.0.6", 50000))
    for _ in range(5):
        assert login(guesser, "petr", "wrong guess at login").headers["location"].startswith("/login?error")
    assert change(petr, PASSWORD, NEW).status_code == 429
    assert check_password(User(password_hash=stored_hash(case, "petr")), PASSWORD)


def test_the_page_in_russian_for_a_user_who_chose_it(case):
    client = logged_in(case)
    token = csrf_of(client)
    assert client.post("/settings", data={"csrf": token, "lang": "ru"}, follow_redirects=False).status_code == 303
    page = client.get("/password")
    assert '<html lang="ru">' in page.text
    for ru in ("Сменить пароль", "Нынешний пароль", "Новый пароль ещё раз", "Выйти"):
        assert ru in page.text
    assert page.text.count('id="password-link"') == 1
    r = change(client, PASSWORD, NEW, "a different new passphrase")
    assert r.status_code == 422 and "Два новых пароля не совпадают" in r.text
    r = change(client, PASSWORD, "short1")
    assert r.status_code == 422 and "В новом пароле меньше 10 символов: выберите пароль длиннее." in r.text
    r = change(client, "not the password at all", NEW)
    assert r.status_code == 403 and "Нынешний пароль неверен" in r.text
    r = change(client, PASSWORD, NEW)
    done = client.get(r.headers["location"])
    assert "Ваш пароль изменён." in done.text and "Все другие ваши сеансы завершены." in done.text


def test_logged_out_the_page_sends_to_the_login(case):
    client = TestClient(create_app(case), client=("127.0.0.1", 50000))
    r = client.get("/password", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    before = stored_hash(case)
    r = client.post("/password", data={"csrf": "x", "current": PASSWORD, "new": NEW, "again": NEW},
                    follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert stored_hash(case) == before and password_events(case) == []


def test_on_a_team_server_the_server_owns_password(case, tmp_path):
    from custodes.web.team import TeamStore, create_team_app
    from tests.web.team_fixtures import team_login

    add_user(case, "alma", "admin", PASSWORD, "tester")
    app = create_team_app({"a-block": case}, TeamStore(tmp_path / "server"))
    alma = TestClient(app, client=("127.0.0.1", 60001))
    assert team_login(alma, "alma").status_code == 303
    page = alma.get("/c/a-block/")
    assert page.status_code == 200 and page.text.count('id="password-link"') == 1  # the server's link only
    assert 'href="/password" id="password-link"' in page.text and "/c/a-block/password" not in page.text
    assert alma.get("/c/a-block/password", follow_redirects=False).status_code == 404
    assert 'id="password-form"' in alma.get("/password").text  # the server's own page

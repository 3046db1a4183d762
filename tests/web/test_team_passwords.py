"""Passwords on the team server (issue 22, adversarial review): a password an admin set must be changed by its
owner before anything opens; an admin resets only the password of a member of a case they administer (and
of nobody who is also in a case they do not); a change or a reset ends the other sessions and is signed into
the ledger of each case the person is a member of, without the secret. Also: the server's forms answer a
missing or wrong field with their page and one sentence (never FastAPI's 422 JSON), every answer of the
server carries the security headers, an admin sees only the names of their own cases' members, and the link
between a case account and a server user is signed into that case's ledger. Real cases, real SQLite."""

import json
import sqlite3
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.store.db import User, WebSession
from custodes.web.app import SECURITY_HEADERS
from custodes.web.team import MUST_CHANGE
from custodes.web.users import check_password
from tests.web.conftest import PASSWORD
from tests.web.team_fixtures import A, B, change_password, csrf_of, make_team, team_login

SET_BY_ALMA = "alma knows this one"
OWN = "tina's own long password"


@pytest.fixture
def team_cases(web_case, small_clip, tmp_path):
    return make_team(web_case, small_clip, tmp_path)


def ledger(case, action, user):
    return [e for e in case.ledger.entries() if e["action"] == action and (e["details"] or {}).get("user") == user]


def must_change(store, name) -> bool:
    with sqlite3.connect(store.db) as c:
        return bool(c.execute("SELECT must_change FROM users WHERE name = ?", (name,)).fetchone()[0])


def alma_adds(app, name, password=SET_BY_ALMA, role="reviewer", port=60001) -> TestClient:
    """alma (admin of A) creates the server user ``name`` and makes them a member of A; her client."""
    alma = TestClient(app, client=("127.0.0.1", port))
    assert team_login(alma, "alma").status_code == 303
    token = csrf_of(alma, "/admin")
    assert "Added user" in alma.post("/admin/users", data={"csrf": token, "name": name, "password": password}).text
    r = alma.post("/admin/members", data={"csrf": token, "case": A, "name": name, "role": role})
    assert f"{name} is now {role}" in r.text
    return alma


def test_a_password_set_by_an_admin_must_be_changed_before_anything_opens(team_cases):
    app, store, case_a, case_b = team_cases
    alma_adds(app, "tina")
    assert must_change(store, "tina")
    tina = TestClient(app, client=("127.0.0.1", 60002))
    r = team_login(tina, "tina", SET_BY_ALMA)
    assert (r.status_code, r.headers["location"]) == (303, "/password")
    # nothing else of the server or of any case opens, and the answer is the same for every case
    for path in ("/", "/admin", f"/c/{A}/", f"/c/{A}/items/x", f"/c/{B}/", "/c/no-such-case/"):
        r = tina.get(path, follow_redirects=False)
        assert (r.status_code, r.headers.get("location")) == (303, "/password"), path
    for path in (f"/c/{A}/api/queue", f"/c/{B}/api/queue", "/c/no-such-case/api/queue", f"/c/{A}/media/x"):
        r = tina.get(path, follow_redirects=False)
        assert (r.status_code, r.json()) == (403, {"detail": MUST_CHANGE}), path
    page = tina.get("/password")
    assert page.status_code == 200 and 'id="must-change"' in page.text and 'id="password-link"' in page.text
    assert 'class="case-link"' not in page.text  # no way into a case from here

    # what the form refuses, each in one sentence on the page, the password unchanged
    token = csrf_of(tina, "/password")
    for new, again, current, said in [
        ("short one", None, SET_BY_ALMA, "fewer than 10 characters"),
        (OWN, "something else entirely", SET_BY_ALMA, "The two new passwords differ"),
        (SET_BY_ALMA, None, SET_BY_ALMA, "the one you have now"),
        (OWN, None, "not the current password", "current password is wrong"),
        (OWN, None, "", "Fill in all three fields"),
    ]:
        r = change_password(tina, current, new, again, csrf=token)
        assert r.status_code in (403, 422) and said in r.text, (said, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html") and 'id="password-error"' in r.text
        assert OWN not in r.text and SET_BY_ALMA not in r.text  # passwords are never sent back
    r = change_password(tina, SET_BY_ALMA, OWN, csrf="not the token")
    assert r.status_code == 403 and "expired" in r.text
    assert must_change(store, "tina")
    assert tina.get(f"/c/{A}/", follow_redirects=False).headers["location"] == "/password"

    r = change_password(tina, SET_BY_ALMA, OWN, csrf=token)
    assert (r.status_code, r.headers["location"]) == (303, "/password?done=1")
    assert 'id="password-done"' in tina.get("/password?done=1").text
    assert not must_change(store, "tina")
    assert tina.get(f"/c/{A}/").status_code == 200 and str(tina.get("/").url).endswith(f"/c/{A}/")
    # the case's header leads to the password page too
    assert 'href="/password" id="password-link"' in tina.get(f"/c/{A}/").text

    # the admin's password no longer opens anything; hers does, straight into the case
    assert team_login(TestClient(app), "tina", SET_BY_ALMA).status_code == 401
    r = team_login(TestClient(app), "tina", OWN)
    assert (r.status_code, r.headers["location"]) == (303, "/")

    # signed into A's ledger (tina's only case), without the secret
    event = ledger(case_a, "user.password", "tina")[-1]
    assert (event["actor"], event["details"]) == ("tina", {"user": "tina", "by": "tina", "via": "team server",
                                                           "reset": False})
    assert not ledger(case_b, "user.password", "tina")
    every = json.dumps(list(case_a.ledger.entries()))
    assert OWN not in every and SET_BY_ALMA not in every and "argon2" not in every


def test_changing_a_password_ends_the_other_sessions_and_is_signed_in_each_case(team_cases):
    app, store, case_a, case_b = team_cases
    here, there = TestClient(app, client=("127.0.0.1", 60101)), TestClient(app, client=("127.0.0.1", 60102))
    # rita's own account in B (her own password, adopted at her first login): nothing to change first
    assert team_login(here, "rita").headers["location"] == "/"
    assert team_login(there, "rita").headers["location"] == "/"
    assert here.get(f"/c/{B}/").status_code == 200 and there.get(f"/c/{B}/").status_code == 200
    with case_b.sessions() as s:
        uid = s.scalar(select(User.id).where(User.name == "rita"))
        assert len(list(s.scalars(select(WebSession).where(WebSession.user_id == uid)))) >= 2

    new = "rita's brand new password"
    assert change_password(here, PASSWORD, new).headers["location"] == "/password?done=1"
    assert there.get(f"/c/{B}/", follow_redirects=False).headers["location"] == "/login"
    assert there.get("/password", follow_redirects=False).headers["location"] == "/login"
    # this session goes on (its case session opened again, with a new signed login)
    assert here.get(f"/c/{B}/").status_code == 200
    with case_b.sessions() as s:
        assert len(list(s.scalars(select(WebSession).where(WebSession.user_id == uid)))) == 1
    event = ledger(case_b, "user.password", "rita")[-1]
    assert event["details"] == {"user": "rita", "by": "rita", "via": "team server", "reset": False}
    assert team_login(TestClient(app), "rita", PASSWORD).status_code == 401
    assert team_login(TestClient(app), "rita", new).status_code == 303


def test_the_password_form_is_throttled_like_the_login(team_cases):
    app, store, *_ = team_cases
    ivan = TestClient(app, client=("127.0.0.1", 60201))
    assert team_login(ivan, "ivan").status_code == 303
    token = csrf_of(ivan, "/password")
    for _ in range(5):
        r = change_password(ivan, "a wrong guess at it", "ivan's new password", csrf=token)
        assert r.status_code == 403 and "current password is wrong" in r.text
    r = change_password(ivan, PASSWORD, "ivan's new password", csrf=token)  # the right one, too late
    assert r.status_code == 429 and "wait 15 minutes" in r.text and r.headers["retry-after"] == "900"
    known = store.user("ivan")
    assert known is not None and check_password(User(password_hash=known[0]), PASSWORD)  # unchanged
    # the same count as the login's: no more guesses there either
    assert team_login(TestClient(app, client=("127.0.0.1", 60202)), "ivan").status_code == 429
    # another user at the same address still gets in
    assert team_login(TestClient(app, client=("127.0.0.1", 60203)), "rita").status_code == 303


def test_an_admin_resets_only_a_member_of_her_own_cases_and_the_reset_must_be_changed(team_cases):
    app, store, case_a, case_b = team_cases
    alma = alma_adds(app, "tina", port=60301)
    tina = TestClient(app, client=("127.0.0.1", 60302))
    team_login(tina, "tina", SET_BY_ALMA)
    change_password(tina, SET_BY_ALMA, OWN)
    assert tina.get(f"/c/{A}/").status_code == 200
    token = csrf_of(alma, "/admin")

    def reset(case, name, password="a reset by alma"):
        return alma.post("/admin/password", data={"csrf": token, "case": case, "name": name, "password": password})

    # not alma's case: the 404 of a case that is not there; not a member of hers: refused; herself: /password
    assert reset(B, "ivan").status_code == 404
    team_login(TestClient(app), "ivan")  # ivan is a server user now (his own account in B)
    r = reset(A, "ivan")
    assert r.status_code == 422 and "ivan is not a member of A block" in r.text
    r = reset(A, "alma")
    assert "To change your own password use Change password" in r.text
    r = reset(A, "tina", "short")
    assert "fewer than 10 characters" in r.text and must_change(store, "tina") is False
    # ivan added to A as well: still in B, whose admin alma is not, so she could act as him there
    alma.post("/admin/members", data={"csrf": token, "case": A, "name": "ivan", "role": "reviewer"})
    r = reset(A, "ivan")
    assert r.status_code == 403 and "also a member of a case you do not administer" in r.text
    assert team_login(TestClient(app), "ivan").status_code == 303  # his password is untouched
    assert not ledger(case_a, "user.password", "ivan") and not ledger(case_b, "user.password", "ivan")

    r = reset(A, "tina")
    assert "The password of tina is reset" in r.text
    assert tina.get(f"/c/{A}/", follow_redirects=False).headers["location"] == "/login"  # her session ended
    with case_a.sessions() as s:
        uid = s.scalar(select(User.id).where(User.name == "tina"))
        assert not list(s.scalars(select(WebSession).where(WebSession.user_id == uid)))
    event = ledger(case_a, "user.password", "tina")[-1]
    assert (event["actor"], event["details"]) == ("alma", {"user": "tina", "by": "alma", "via": "team server",
                                                           "reset": True})
    assert "a reset by alma" not in json.dumps(list(case_a.ledger.entries()))
    assert team_login(TestClient(app), "tina", OWN).status_code == 401
    again = TestClient(app, client=("127.0.0.1", 60303))
    assert team_login(again, "tina", "a reset by alma").headers["location"] == "/password"
    assert again.get(f"/c/{A}/", follow_redirects=False).headers["location"] == "/password"


def test_the_server_forms_answer_with_their_page_and_one_sentence_never_raw_json(team_cases):
    app, *_ = team_cases
    anon = TestClient(app, client=("127.0.0.1", 60401))
    anon.get("/login")  # the pre-login CSRF cookie
    login_csrf = csrf_of(anon, "/login")
    r = anon.post("/login", data={"csrf": login_csrf, "username": "tina"})
    assert r.status_code == 422 and "Type your user name and your password" in r.text
    assert 'value="tina"' in r.text  # what was typed is kept
    r = anon.post("/login", data={})
    assert r.status_code == 403 and "expired" in r.text and '"detail"' not in r.text
    r = anon.post("/login", data={"csrf": csrf_of(anon, "/login"), "username": "tina", "password": "wrong one"})
    assert r.status_code == 401 and 'value="tina"' in r.text and "wrong one" not in r.text

    alma = TestClient(app, client=("127.0.0.1", 60402))
    team_login(alma, "alma")
    token = csrf_of(alma, "/admin")
    for path, data, said in [
        ("/admin/users", {}, "expired"),
        ("/admin/users", {"csrf": token}, "Type a name for the new user"),
        ("/admin/users", {"csrf": token, "name": "tina"}, "fewer than 10 characters"),
        ("/admin/users", {"csrf": token, "name": "no spaces here", "password": SET_BY_ALMA}, "A user name is"),
        ("/admin/members", {"csrf": token, "case": A}, "Type the name of the user"),
        ("/admin/members", {"csrf": token, "case": A, "name": "alma", "role": "overlord"}, "The role is one of"),
        ("/admin/members/remove", {"csrf": token, "case": A}, "Choose the member to remove"),
        ("/admin/password", {"csrf": token, "case": A}, "not a member of A block"),
        ("/logout", {}, "expired"),
        ("/password", {}, "expired"),
    ]:
        r = alma.post(path, data=data, follow_redirects=False)
        assert r.status_code in (403, 422), (path, data, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("text/html"), (path, data)
        assert said in r.text and '"detail"' not in r.text and 'role="alert"' in r.text, (path, data, r.text[:300])
    # the typed name is kept, the password never
    r = alma.post("/admin/users", data={"csrf": token, "name": "tina", "password": "tiny-pw9x"})
    assert 'id="new-user-name" required autocomplete="off" value="tina"' in r.text and "tiny-pw9x" not in r.text
    r = alma.post("/admin/members", data={"csrf": token, "case": A, "name": "nobody-here", "role": "viewer"})
    assert "There is no user nobody-here" in r.text and 'value="nobody-here"' in r.text
    assert "<option selected>viewer</option>" in r.text
    # a JSON body or a GET to a form's address: still a page with a sentence
    r = alma.post("/admin/users", json={"name": "tina"}, headers={"accept": "text/html"})
    assert r.status_code == 403 and "expired" in r.text
    r = alma.get("/admin/users", headers={"accept": "text/html"})
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("who", ["nobody", "alma"])
def test_every_answer_of_the_server_carries_the_security_headers(team_cases, who):
    app, *_ = team_cases
    client = TestClient(app, client=("127.0.0.1", 60501))
    if who == "alma":
        team_login(client, "alma")
    answers = []
    for method, path in [("GET", "/no-such-page"), ("GET", "/c/no-such-case/"), ("GET", f"/c/{B}/"),
                         ("GET", f"/c/{B}/api/queue"), ("GET", "/c/no-such-case/api/queue"), ("GET", "/c/"),
                         ("GET", "/static/no-such-file.css"), ("GET", "/admin"), ("POST", "/admin/users"),
                         ("GET", "/password"), ("GET", "/login"), ("DELETE", "/login"), ("GET", f"/c/{A}/")]:
        for accept in ("text/html", "application/json"):
            r = client.request(method, path, headers={"accept": accept}, follow_redirects=False)
            answers.append(r.status_code)
            for k, v in SECURITY_HEADERS.items():
                assert r.headers.get(k) == v, (who, method, path, accept, r.status_code, k)
    assert set(answers) >= ({303, 401, 404} if who == "nobody" else {200, 403, 404, 405})


def test_an_admin_sees_only_her_cases_members_and_links_are_signed(team_cases):
    app, store, case_a, case_b = team_cases
    # rita and ivan become server users by their own B passwords: linked, signed into B's ledger
    for name in ("rita", "ivan"):
        assert team_login(TestClient(app), name).status_code == 303
        event = ledger(case_b, "user.link", name)[-1]
        assert (event["actor"], event["details"]) == (name, {"user": name, "how": "same password",
                                                             "via": "team server"})
    alma = alma_adds(app, "tina", port=60601)
    event = ledger(case_a, "user.link", "tina")[-1]
    assert (event["actor"], event["details"]) == ("alma", {"user": "tina", "how": "added by an admin",
                                                           "via": "team server"})
    page = alma.get("/admin").text
    assert '<option value="tina">' in page and '<option value="alma">' in page
    assert "rita" not in page and "ivan" not in page  # server users of B only: not alma's to know
    # a name she types is still added: the membership does not depend on the list
    r = alma.post("/admin/members", data={"csrf": csrf_of(alma, "/admin"), "case": A, "name": "ivan",
                                          "role": "viewer"})
    assert "ivan is now viewer in A block" in r.text
    assert ledger(case_a, "user.link", "ivan")[-1]["details"]["how"] == "added by an admin"


def test_a_server_folder_from_before_password_changes_is_upgraded_in_place(tmp_path):
    from custodes.web.team import TeamStore
    from custodes.web.users import _hasher

    folder = tmp_path / "server"
    folder.mkdir(mode=0o700)
    with sqlite3.connect(folder / "server.db") as c:  # the schema as the first team server wrote it
        c.execute("CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, disabled INTEGER NOT "
                  "NULL DEFAULT 0, created_at TEXT NOT NULL, created_by TEXT NOT NULL)")
        c.execute("INSERT INTO users VALUES ('olga', ?, 0, '2026-11-30T10:00:00.000000Z', 'alma')",
                  (_hasher.hash("olga's old password"),))
    store = TeamStore(folder)
    assert not must_change(store, "olga")  # nothing forced on those who were there before
    token, _ = store.open_session("olga")
    name, _, must = store.session(token, timedelta(hours=1))
    assert (name, must) == ("olga", False)
    TeamStore(folder)  # opened again: nothing to add


def test_the_password_page_speaks_the_language_the_person_chose(team_cases):
    from custodes.store.db import UserPrefs

    app, store, case_a, _ = team_cases
    alma_adds(app, "tina", port=60701)
    with case_a.sessions() as s:  # as /settings stores it (she cannot open it before changing her password)
        s.add(UserPrefs(user_id=s.scalar(select(User.id).where(User.name == "tina")), data={"lang": "ru"}))
        s.commit()
    tina = TestClient(app, client=("127.0.0.1", 60702))
    team_login(tina, "tina", SET_BY_ALMA)
    page = tina.get("/password").text
    assert '<html lang="ru">' in page and "Сменить пароль" in page and "Ваш пароль задал администратор" in page
    r = change_password(tina, SET_BY_ALMA, "short one")
    assert "В новом пароле меньше 10 символов" in r.text
    r = change_password(tina, "not the current one", OWN)
    assert "Нынешний пароль неверен" in r.text


def test_a_link_cannot_put_words_on_the_admin_page(team_cases):
    app, *_ = team_cases
    alma = alma_adds(app, "tina", port=60801)  # her own redirects still say what was done
    page = alma.get("/admin?done=Your+account+is+locked%3A+call+%2B7+000+000+00+00").text
    assert 'id="admin-done"' not in page and "locked" not in page
    r = alma.post("/admin/members", data={"csrf": csrf_of(alma, "/admin"), "case": A, "name": "tina",
                                          "role": "viewer"}, follow_redirects=False)
    forged = r.headers["location"].replace("tina+is+now", "tina+was+never")
    assert "tina is now viewer in A block" in alma.get(r.headers["location"]).text
    assert 'id="admin-done"' not in alma.get(forged).text

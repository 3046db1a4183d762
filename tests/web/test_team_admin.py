"""The team server's users, membership and assignment, through its web pages and API (real cases, SQLite).

Existing per-case accounts become server users at their first login with their password; a server user of the
same name with another password is a different person and gets nothing of that case. An admin of a case adds
users and members of that case only; each change is signed into that case's ledger; removing someone ends
their access at once. Videos assigned to a reviewer make up "my queue"."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.store.db import Segment, WebSession
from tests.web.team_fixtures import A, B, change_password, csrf_of, make_team, team_login


@pytest.fixture
def team_cases(web_case, small_clip, tmp_path):
    return make_team(web_case, small_clip, tmp_path)


def ledger(case, *actions):
    return [e for e in case.ledger.entries() if e["action"] in actions]


def test_admin_adds_a_user_to_one_case_and_removes_them(team_cases):
    app, store, case_a, case_b = team_cases
    alma = TestClient(app, client=("127.0.0.1", 52001))
    assert team_login(alma, "alma").status_code == 303
    page = alma.get("/admin")
    assert page.status_code == 200 and "A block" in page.text and str(case_b.meta["title"]) not in page.text
    token = csrf_of(alma, "/admin")

    r = alma.post("/admin/users", data={"csrf": token, "name": "tina", "password": "short"})
    assert "fewer than 10 characters" in r.text
    r = alma.post("/admin/users", data={"csrf": token, "name": "tina", "password": "tina's long password"})
    assert "Added user tina" in r.text
    r = alma.post("/admin/members", data={"csrf": token, "case": A, "name": "tina", "role": "reviewer"})
    assert "tina is now reviewer in A block" in r.text
    # B is not alma's: the same 404 as for a case that is not there, and nothing changed in B
    before = len(ledger(case_b, "user.add", "user.enable", "user.role"))
    r = alma.post("/admin/members", data={"csrf": token, "case": B, "name": "tina", "role": "admin"})
    assert r.status_code == 404
    assert len(ledger(case_b, "user.add", "user.enable", "user.role")) == before
    added = ledger(case_a, "user.add")[-1]
    assert (added["actor"], added["details"]) == ("alma", {"user": "tina", "role": "reviewer", "via": "team server"})

    tina = TestClient(app, client=("127.0.0.1", 52002))
    r = team_login(tina, "tina", "tina's long password")
    assert (r.status_code, r.headers["location"]) == (303, "/password")  # alma knows it: tina chooses her own
    assert change_password(tina, "tina's long password", "tina's very own password").status_code == 303
    home = tina.get("/")
    assert str(home.url).endswith(f"/c/{A}/") and 'id="case-switcher"' in home.text
    assert "A block" in home.text and str(case_b.meta["title"]) not in home.text
    assert tina.get("/admin").status_code == 404  # not an admin anywhere
    login_event = ledger(case_a, "login")[-1]
    assert login_event["actor"] == "tina" and login_event["details"]["via"] == "team server"

    # a role change, then removal: signed, and her access ends at once
    r = alma.post("/admin/members", data={"csrf": token, "case": A, "name": "tina", "role": "viewer"})
    assert "tina is now viewer" in r.text
    assert ledger(case_a, "user.role")[-1]["details"]["previous_role"] == "reviewer"
    assert "viewer" in tina.get(f"/c/{A}/").text
    r = alma.post("/admin/members/remove", data={"csrf": token, "case": A, "name": "tina"})
    assert "no longer a member" in r.text
    assert ledger(case_a, "user.disable")[-1]["details"] == {"user": "tina"}
    assert tina.get(f"/c/{A}/").status_code == 404
    r = alma.post("/admin/members/remove", data={"csrf": token, "case": A, "name": "alma"})
    assert "last admin" in r.text
    # and back in: a fresh session for the new membership
    alma.post("/admin/members", data={"csrf": token, "case": A, "name": "tina", "role": "reviewer"})
    assert ledger(case_a, "user.enable")[-1]["details"]["role"] == "reviewer"
    assert tina.get(f"/c/{A}/").status_code == 200

    # logging out ends the server session and the case's session of it
    with case_a.sessions() as s:
        n = len(list(s.scalars(select(WebSession))))
    r = tina.post(f"/c/{A}/logout", data={"csrf": csrf_of(tina, f"/c/{A}/")}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    with case_a.sessions() as s:
        assert len(list(s.scalars(select(WebSession)))) == n - 1
    assert tina.get(f"/c/{A}/", follow_redirects=False).headers["location"] == "/login"


def test_existing_case_accounts_keep_working_and_a_namesake_gets_nothing(team_cases):
    app, store, case_a, case_b = team_cases
    # rita has her own account in B only: her password makes her the server's rita, member of B
    rita = TestClient(app, client=("127.0.0.1", 53001))
    assert team_login(rita, "rita").status_code == 303
    assert str(rita.get("/").url).endswith(f"/c/{B}/")
    assert rita.get(f"/c/{A}/").status_code == 404
    # otto has an account of his own in B: alma (admin of A only) cannot create a server otto who would
    # lock him out and, once B's admin added "otto", be otto in B (found by review); the refusal says no more
    # than for any name already taken
    alma = TestClient(app, client=("127.0.0.1", 53002))
    team_login(alma, "alma")
    r = alma.post("/admin/users", data={"csrf": csrf_of(alma, "/admin"), "name": "otto",
                                        "password": "another otto entirely"})
    assert "There is already a user otto on this server" in r.text
    refused = team_login(TestClient(app), "otto", "another otto entirely")
    assert refused.status_code == 401 and "Wrong user name or password" in refused.text
    otto = TestClient(app, client=("127.0.0.1", 53003))
    assert team_login(otto, "otto").status_code == 303
    assert otto.get(f"/c/{B}/").status_code == 200 and otto.get(f"/c/{A}/").status_code == 404


def test_an_admin_cannot_hand_a_case_account_to_a_namesake_nor_leave_the_case_without_an_admin(team_cases):
    from custodes.web.users import _hasher, add_user

    app, store, case_a, case_b = team_cases
    # zoe has her own account in A; a server user of the same name (say adopted from another case) is not
    # necessarily her: an admin's add must not link them, she joins by logging in with her own password
    add_user(case_a, "zoe", "reviewer", "zoe's own password", "tester")
    store.add_user("zoe", _hasher.hash("someone else's password"), "tester", "test")
    alma = TestClient(app, client=("127.0.0.1", 53101))
    team_login(alma, "alma")
    token = csrf_of(alma, "/admin")
    before = len(ledger(case_a, "user.add", "user.enable", "user.role"))
    r = alma.post("/admin/members", data={"csrf": token, "case": A, "name": "zoe", "role": "admin"})
    assert "account of their own in this case" in r.text
    assert len(ledger(case_a, "user.add", "user.enable", "user.role")) == before
    impostor = TestClient(app, client=("127.0.0.1", 53102))
    assert team_login(impostor, "zoe", "someone else's password").status_code == 303
    assert impostor.get(f"/c/{A}/").status_code == 404
    # demoting the last admin is refused as removing her is
    r = alma.post("/admin/members", data={"csrf": token, "case": A, "name": "alma", "role": "viewer"})
    assert "last admin" in r.text
    assert alma.get("/admin").status_code == 200


def test_assigned_videos_make_up_my_queue(team_cases):
    app, store, case_a, case_b = team_cases
    ivan, rita = TestClient(app, client=("127.0.0.1", 54001)), TestClient(app, client=("127.0.0.1", 54002))
    team_login(ivan, "ivan")
    team_login(rita, "rita")
    with case_b.sessions() as s:
        videos = list(dict.fromkeys(s.scalars(select(Segment.sha256).order_by(Segment.score.desc()))))
    assert len(videos) >= 2
    every = {r["sha256"] for r in rita.get(f"/c/{B}/api/queue?limit=1000").json()}
    assert set(videos) <= every
    token = csrf_of(ivan, f"/c/{B}/")
    r = ivan.post(f"/c/{B}/api/assignments", headers={"X-CSRF-Token": token},
                  json={"user": "rita", "items": [videos[1]]})
    assert r.status_code == 200 and r.json()["message"] == "Assigned 1 video to rita."
    mine = rita.get(f"/c/{B}/api/queue?limit=1000&mine=1").json()
    assert mine and {x["sha256"] for x in mine} == {videos[1]}
    page = rita.get(f"/c/{B}/?mine=1")
    assert videos[1] in page.text and videos[0] not in page.text
    event = ledger(case_b, "assign")[-1]
    assert (event["actor"], event["details"]) == ("ivan", {"user": "rita", "items": [videos[1]]})
    # a reviewer does not assign; a video moves to one reviewer at a time; nobody from another case
    r = rita.post(f"/c/{B}/api/assignments", headers={"X-CSRF-Token": csrf_of(rita, f"/c/{B}/")},
                  json={"user": "rita", "items": [videos[0]]})
    assert r.status_code == 403
    r = ivan.post(f"/c/{B}/api/assignments", headers={"X-CSRF-Token": token}, json={"user": "alma",
                                                                                    "items": [videos[1]]})
    assert r.status_code == 422 and "not a reviewer" in r.json()["detail"]
    r = ivan.post(f"/c/{B}/api/assignments", headers={"X-CSRF-Token": token}, json={"user": "otto",
                                                                                    "items": [videos[1]]})
    assert r.status_code == 422  # B's own otto never logged in at the server: not linked, not a member here
    r = ivan.post(f"/c/{B}/api/assignments", headers={"X-CSRF-Token": token}, json={"user": "",
                                                                                    "items": [videos[1]]})
    assert r.json()["message"] == "1 video no longer assigned to anyone."
    assert rita.get(f"/c/{B}/api/queue?mine=1").json() == []

"""The exposure meter's server side (issue 22), on the demo case through the review app's own API: flagged footage
counted per user and local day as the union of reported spans (no double count from a resent report, a beacon
or a second tab), the day boundary in the browser's time zone, the limits (own, case default by an admin, bad
input refused in one sentence) and continuing past the limit, which the ledger records."""

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.store.db import User, UserPrefs
from custodes.web import exposure
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, session_csrf

T = datetime(2026, 3, 20, 21, 30, tzinfo=UTC)  # the server's clock in these tests
READER, ADMIN = "ex.reader", "ex.admin"


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def at(hh: int, mm: int, ss: int = 0, day: int = 20) -> int:
    return ms(datetime(2026, 3, day, hh, mm, ss, tzinfo=UTC))


@pytest.fixture
def clock(monkeypatch):
    """The server's clock, set per test (the sessions keep the real time)."""
    now = {"t": T}
    monkeypatch.setattr(exposure, "clock", lambda: now["t"].timestamp())
    return now


@pytest.fixture
def app_case(web_case):
    case, _ = web_case
    with case.sessions() as s:
        known = set(s.scalars(select(User.name)))
        for name in (READER, ADMIN):  # a fresh start for each test: no spans, no limits of their own
            u = s.scalars(select(User).where(User.name == name)).first()
            if u is not None and (row := s.get(UserPrefs, u.id)) is not None:
                s.delete(row)
        s.commit()
    if READER not in known:
        add_user(case, READER, "reviewer", PASSWORD, "tester")
    if ADMIN not in known:
        add_user(case, ADMIN, "admin", PASSWORD, "tester")
    (case.root / exposure.DEFAULTS_FILE).unlink(missing_ok=True)
    yield case, create_app(case)
    (case.root / exposure.DEFAULTS_FILE).unlink(missing_ok=True)


def tab(app, user=READER, port=50100):
    """A logged-in browser tab: a client and its session's CSRF token."""
    c = TestClient(app, client=("127.0.0.1", port))
    assert login(c, user).status_code == 303
    return c, session_csrf(c)


def report(c, csrf, spans, tz=0, now=None, path="report"):
    return c.post(f"/api/exposure/{path}", json={"tz": tz, "now": ms(T) if now is None else now, "spans": spans},
                  headers={"x-csrf-token": csrf})


def events(case, action, after):
    return [e for e in list(case.ledger.entries())[after:] if e["action"] == action]


def test_counting_without_double_counts(app_case, clock):
    _, app = app_case
    c, csrf = tab(app)
    first = c.get("/api/exposure")
    assert first.status_code == 200
    assert first.json()["watched_s"] == 0 and first.json()["limit_min"] == 60 and first.json()["break_min"] == 20
    r = report(c, csrf, [[at(21, 28), at(21, 29)]])  # one minute of flagged footage
    assert r.status_code == 200 and r.json()["watched_s"] == 60.0
    assert report(c, csrf, [[at(21, 28), at(21, 29)]]).json()["watched_s"] == 60.0  # the same report again
    # the tab's next report carries its earlier spans too, and 20 s more: 80 s, not 140
    assert report(c, csrf, [[at(21, 28), at(21, 29, 20)]]).json()["watched_s"] == 80.0
    # a second tab of the same reviewer played part of the same minute at the same time: counted once
    c2, csrf2 = tab(app, port=50101)
    assert report(c2, csrf2, [[at(21, 28, 30), at(21, 29, 30)]]).json()["watched_s"] == 90.0
    # a beacon on pagehide: text/plain, the CSRF token in the body, the same spans again and 5 s more
    beacon = json.dumps({"tz": 0, "now": ms(T), "csrf": csrf,
                         "spans": [[at(21, 28), at(21, 29, 20)], [at(21, 29, 40), at(21, 29, 45)]]})
    r = c.post("/api/exposure/report", content=beacon, headers={"content-type": "text/plain"})
    assert r.status_code == 200 and r.json()["watched_s"] == 95.0
    # a browser whose clock is an hour ahead: its spans are moved onto the server's clock
    r = report(c, csrf, [[at(22, 29, 50), at(22, 29, 55)]], now=ms(T) + 3_600_000)
    assert r.status_code == 200 and r.json()["watched_s"] == 100.0
    assert c2.get("/api/exposure").json()["watched_s"] == 100.0  # one count per user, whichever tab asks


def test_refused_reports_change_nothing(app_case, clock):
    _, app = app_case
    c, csrf = tab(app)
    report(c, csrf, [[at(21, 20), at(21, 21)]])
    no_token = c.post("/api/exposure/report", json={"tz": 0, "spans": [[at(21, 22), at(21, 23)]]})
    assert no_token.status_code == 403
    beacon_wrong = c.post("/api/exposure/report", content=json.dumps({"csrf": "forged", "spans": []}),
                          headers={"content-type": "text/plain"})
    assert beacon_wrong.status_code == 403
    for spans, tz, word in (([[at(21, 23), at(21, 22)]], 0, "end after start"),
                            ([[at(21, 40), at(21, 41)]], 0, "in the future"),
                            ([["a", 1]], 0, "[start_ms, end_ms]"),
                            ("many", 0, "a list"),
                            ([], 900, "time-zone offset"),
                            ([], 30.5, "whole minutes")):
        r = report(c, csrf, spans, tz=tz)
        assert r.status_code == 422, spans
        detail = r.json()["detail"]
        assert word in detail and detail.endswith(".") and "Traceback" not in detail
    assert c.post("/api/exposure/report", content=b"not json", headers={"x-csrf-token": csrf}).status_code == 422
    assert c.get("/api/exposure?tz=east").status_code == 422
    assert c.get("/api/exposure").json()["watched_s"] == 60.0
    assert TestClient(app).get("/api/exposure").status_code == 401  # not logged in


def test_the_local_day(app_case, clock):
    _, app = app_case
    clock["t"] = datetime(2026, 3, 20, 23, 30, tzinfo=UTC)
    c, csrf = tab(app)
    now = ms(clock["t"])
    spans = [[at(22, 40), at(22, 50)], [at(22, 55), at(23, 5)], [at(23, 10), at(23, 20)],  # 10 + 10 + 10 min
             [at(12, 0, day=19), at(12, 30, day=19)]]  # yesterday, kept only for time zones it is today in
    r = report(c, csrf, spans, now=now)
    assert r.json()["day"] == "2026-03-20" and r.json()["watched_s"] == 1800.0
    # in UTC+1 it is 00:30 on the 21st: only what was played after 23:00 UTC is today
    plus1 = c.get("/api/exposure?tz=60").json()
    assert plus1["day"] == "2026-03-21" and plus1["watched_s"] == 900.0
    # in UTC-5 it is 18:30 on the 20th, a day that began at 05:00 UTC
    assert c.get("/api/exposure?tz=-300").json()["watched_s"] == 1800.0
    # the next day in UTC: nothing yet; the limit is not reached and passing it yesterday carries nothing over
    clock["t"] = datetime(2026, 3, 21, 0, 10, tzinfo=UTC)
    nxt = c.get("/api/exposure").json()
    assert nxt["day"] == "2026-03-21" and nxt["watched_s"] == 0.0
    assert report(c, csrf, [[at(0, 2, day=21), at(0, 3, day=21)]], now=ms(clock["t"])).json()["watched_s"] == 60.0


def test_limits_own_and_case_default(app_case, clock):
    case, app = app_case
    c, csrf = tab(app)
    before = len(list(case.ledger.entries()))
    r = c.post("/api/prefs", json={"exposure_limit_min": 30, "exposure_break_min": 10}, headers={"x-csrf-token": csrf})
    assert r.status_code == 200 and r.json()["exposure"]["limit_min"] == 30
    st = c.get("/api/exposure").json()
    assert (st["limit_min"], st["break_min"]) == (30, 10)
    assert [e["details"] for e in events(case, "exposure.settings", before)] == [
        {"exposure_break_min": 10, "exposure_limit_min": 30}]
    for bad in ({"exposure_limit_min": 0}, {"exposure_limit_min": 1000}, {"exposure_limit_min": "lots"},
                {"exposure_limit_min": 2.5}, {"exposure_break_min": -1}, {"exposure_limit_min": True}):
        r = c.post("/api/prefs", json=bad, headers={"x-csrf-token": csrf})
        assert r.status_code == 422 and "whole number of minutes" in r.json()["detail"], bad
    assert c.get("/api/exposure").json()["limit_min"] == 30
    # only an admin sets the case's default
    r = c.post("/api/prefs", json={"case_exposure_limit_min": 90}, headers={"x-csrf-token": csrf})
    assert r.status_code == 403 and "Only an admin" in r.json()["detail"]
    assert not (case.root / exposure.DEFAULTS_FILE).exists()
    # the admin, on the settings page: the case default fields are there, and saving sets them
    a, acsrf = tab(app, ADMIN, port=50102)
    page = a.get("/settings").text
    assert 'id="case-exposure-limit"' in page and 'id="pref-exposure-limit"' in page
    assert 'id="case-exposure-limit"' not in c.get("/settings").text
    r = a.post("/settings", data={"csrf": acsrf, "blur": "1", "grey": "1", "mute": "1", "lang": "en",
                                  "exposure_form": "1", "exposure_limit_min": "", "exposure_break_min": "",
                                  "case_exposure_limit_min": "45", "case_exposure_break_min": "15"},
               follow_redirects=False)
    assert r.status_code == 303
    assert exposure.case_defaults(case) == {"limit_min": 45, "break_min": 15}
    assert [e["details"] for e in events(case, "exposure.defaults", before)] == [{"break_min": 15, "limit_min": 45}]
    assert (a.get("/api/exposure").json()["limit_min"], a.get("/api/exposure").json()["break_min"]) == (45, 15)
    assert c.get("/api/exposure").json()["limit_min"] == 30  # her own limit stands
    assert 'placeholder="45"' in c.get("/settings").text
    # back to the case's: an empty field in the form
    r = c.post("/settings", data={"csrf": csrf, "blur": "1", "lang": "en", "exposure_form": "1",
                                  "exposure_limit_min": "", "exposure_break_min": "0"}, follow_redirects=False)
    assert r.status_code == 303
    st = c.get("/api/exposure").json()
    assert (st["limit_min"], st["break_min"]) == (45, 0)  # 0: no break reminders
    # a bad number in the form: one sentence, and none of the form is saved
    r = c.post("/settings", data={"csrf": csrf, "blur": "", "lang": "ru", "exposure_limit_min": "-3"},
               headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 422 and "whole number of minutes from 1 to 720" in r.text
    assert c.get("/api/exposure").json()["limit_min"] == 45 and 'lang="en"' in c.get("/settings").text


def test_limit_override_and_break(app_case, clock):
    case, app = app_case
    c, csrf = tab(app)
    c.post("/api/prefs", json={"exposure_limit_min": 1, "exposure_break_min": 1}, headers={"x-csrf-token": csrf})
    st = report(c, csrf, [[at(21, 28, 30), at(21, 29, 40)]]).json()  # 70 s
    assert st["at_limit"] and not st["overridden"] and st["break_due"] and st["since_break_s"] == 70.0
    # continuing past the limit: refused without the token; with it, recorded in the ledger
    assert c.post("/api/exposure/override", json={"tz": 0, "spans": []}).status_code == 403
    before = len(list(case.ledger.entries()))
    r = report(c, csrf, [[at(21, 29, 40), at(21, 29, 50)]], path="override")
    assert r.status_code == 200 and r.json()["overridden"] and r.json()["watched_s"] == 80.0
    signed = events(case, "exposure.override", before)
    assert len(signed) == 1 and signed[0]["actor"] == READER
    assert signed[0]["details"] == {"day": "2026-03-20", "tz": 0, "watched_min": 1.3, "limit_min": 1}
    assert report(c, csrf, [], path="override").json()["overridden"]  # once a day is enough
    assert len(events(case, "exposure.override", before)) == 1
    # the break reminder dismissed: continuous viewing counts from now
    st = report(c, csrf, [], path="break").json()
    assert st["since_break_s"] == 0.0 and not st["break_due"] and st["watched_s"] == 80.0
    clock["t"] = datetime(2026, 3, 20, 21, 31, tzinfo=UTC)
    st = report(c, csrf, [[at(21, 30), at(21, 30, 50)]], now=ms(clock["t"])).json()
    assert st["since_break_s"] == 50.0 and not st["break_due"]
    # five minutes without flagged footage is a break too
    clock["t"] = datetime(2026, 3, 20, 21, 36, tzinfo=UTC)
    assert c.get("/api/exposure").json()["since_break_s"] == 0.0
    # below the limit there is nothing to continue past
    c.post("/api/prefs", json={"exposure_limit_min": 60}, headers={"x-csrf-token": csrf})
    clock["t"] = datetime(2026, 3, 21, 21, 36, tzinfo=UTC)
    r = report(c, csrf, [], path="override", now=ms(clock["t"]))
    assert r.status_code == 409 and "not at your daily limit" in r.json()["detail"]


def test_meter_and_settings_in_russian(app_case, clock):
    _, app = app_case
    c, csrf = tab(app)
    assert c.post("/api/prefs", json={"lang": "ru"}, headers={"x-csrf-token": csrf}).status_code == 200
    sha = c.get("/api/queue").json()[0]["sha256"]
    page = c.get(f"/items/{sha}").text
    assert "Просмотрено отмеченных записей сегодня:" in page and "Продолжить осознанно" in page
    assert 'src="/static/exposure.js"' in page and "<script>" not in page and " style=" not in page
    settings = c.get("/settings").text
    assert "Нагрузка от тяжёлых записей" in settings and "Дневной предел (минут)" in settings
    c.post("/api/prefs", json={"lang": "en"}, headers={"x-csrf-token": csrf})

"""The exposure meter in a real browser (Debian chromium, Playwright): a reviewer sets a tiny daily limit on the
settings page, plays a flagged segment of a real clip of the demo case, sees the meter in the header move, and at
the limit gets the full-screen notice with the video paused and blurred, which no workspace key gets past; she
continues knowingly, by keyboard, and the ledger records it. Screenshots at 1440x900 and 1280x720 go to
test-artifacts/."""

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.store.db import Segment, User, UserPrefs
from custodes.web.app import create_app
from custodes.web.background import background_server
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, session_csrf
from tests.web.test_browser import ARGS, ARTIFACTS, CHROMIUM, VIDEO, wait_until

NAME = "ex.browser"
METER = "Number(document.getElementById('exposure').dataset.watched || -1)"
LIMIT_OPEN = "document.getElementById('exposure-limit-notice').open"


@pytest.fixture
def exposure_server(web_case):
    case, _ = web_case
    with case.sessions() as s:
        user = s.scalars(select(User).where(User.name == NAME)).first()
        if user is not None and (row := s.get(UserPrefs, user.id)) is not None:
            s.delete(row)  # a fresh start: no minutes watched, no limits of her own
        s.commit()
    if user is None:
        add_user(case, NAME, "reviewer", PASSWORD, "tester")
    with background_server(create_app(case)) as url:
        yield url


def test_meter_moves_and_the_limit_notice_in_chromium(exposure_server, web_case):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    case, _ = web_case
    server = exposure_server
    with case.sessions() as s:  # the longest flagged segment of the case
        seg = max(s.scalars(select(Segment)), key=lambda g: g.end_s - g.start_s)
    length = seg.end_s - seg.start_s
    assert length >= 2, "the demo case has no flagged segment of 2 s or more"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        page = ctx.new_page()
        page.goto(server + "/login")
        page.fill("#username", NAME)
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_url(server + "/")
        # a tiny daily limit, on the settings page: one minute
        page.click("#settings-link")
        page.wait_for_selector("#exposure-fieldset")
        assert page.get_attribute("#pref-exposure-limit", "placeholder") == "60"
        page.fill("#pref-exposure-limit", "1")
        page.click("#save-settings")
        page.wait_for_selector("#settings-saved")
        assert page.input_value("#pref-exposure-limit") == "1"
        # most of that minute was watched earlier today, in another tab (reported by the API as a tab does)
        other = TestClient(create_app(case), client=("127.0.0.1", 50200))
        assert login(other, NAME).status_code == 303
        left = min(3.0, length - 1.0)  # seconds of flagged footage until the limit
        now = int(time.time() * 1000)
        earlier = [[now - 300_000, now - 300_000 + int((60 - left) * 1000)]]
        r = other.post("/api/exposure/report", json={"tz": 0, "now": now, "spans": earlier},
                       headers={"x-csrf-token": session_csrf(other)})
        assert r.status_code == 200 and not r.json()["at_limit"]
        # the workspace at the flagged segment: the meter in the header
        page.goto(f"{server}/items/{seg.sha256}?seg={seg.id}&t={seg.start_s}")
        page.wait_for_selector("#player")
        wait_until(page, f"{VIDEO}.readyState >= 1 && !document.getElementById('exposure').hidden")
        text = page.inner_text("#exposure-text")
        assert "Flagged footage watched today:" in text and "of 1 min" in text, text
        before = page.evaluate(METER)
        assert abs(before - (60 - left)) < 1.5, before
        page.screenshot(path=str(ARTIFACTS / "exposure-meter-1440x900.png"))
        # play the flagged segment: the meter moves while it plays
        page.evaluate(f"{VIDEO}.currentTime = {seg.start_s + 0.1}")
        wait_until(page, f"{VIDEO}.readyState >= 3 && !{VIDEO}.seeking")
        page.keyboard.press(" ")
        wait_until(page, f"!{VIDEO}.paused")
        wait_until(page, f"{METER} > {before + 0.5}", timeout=10)
        # ... to the limit: a calm full-screen notice, the video paused and blurred
        wait_until(page, LIMIT_OPEN, timeout=left + 15)
        assert page.evaluate(f"{VIDEO}.paused")
        assert "exposure-blocked" in page.get_attribute("body", "class").split()
        wait_until(page, f"getComputedStyle({VIDEO}).filter === 'blur(28px) grayscale(1)'", timeout=3)
        notice = page.inner_text("#exposure-limit-notice")
        assert "You have reached your daily limit" in notice and "recorded in the case ledger" in notice
        box = page.locator("#exposure-limit-notice").bounding_box()
        assert box and box["width"] >= 1440 - 2 and box["height"] >= 900 - 2  # the whole screen
        page.screenshot(path=str(ARTIFACTS / "exposure-limit-1440x900.png"))
        page.set_viewport_size({"width": 1280, "height": 720})
        page.screenshot(path=str(ARTIFACTS / "exposure-limit-1280x720.png"))
        # no workspace key gets past it: not Space (play), not r (reveal), not Escape
        assert page.evaluate("document.activeElement.id") == "exposure-stop"
        for key in (" ", "r", "Escape"):
            page.keyboard.press(key)
            time.sleep(0.3)
            assert page.evaluate(LIMIT_OPEN) and page.evaluate(f"{VIDEO}.paused"), key
        assert "blur(28px)" in page.evaluate(f"getComputedStyle({VIDEO}).filter")
        # continuing knowingly, by keyboard: the notice goes, the ledger has it
        before_seq = len(list(case.ledger.entries()))
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "exposure-continue"
        page.keyboard.press("Enter")
        wait_until(page, f"!{LIMIT_OPEN}")
        assert "exposure-blocked" not in page.get_attribute("body", "class").split()
        assert page.inner_text("#exposure-note") == "over your daily limit"
        signed = [e for e in list(case.ledger.entries())[before_seq:] if e["action"] == "exposure.override"]
        assert len(signed) == 1 and signed[0]["actor"] == NAME and signed[0]["details"]["limit_min"] == 1
        assert signed[0]["details"]["watched_min"] >= 1.0
        page.screenshot(path=str(ARTIFACTS / "exposure-continued-1280x720.png"))
        st = other.get("/api/exposure").json()
        assert st["overridden"] and st["watched_s"] >= 60
        # leaving the page sends what was played since the last report (a beacon on pagehide)
        page.evaluate(f"{VIDEO}.currentTime = {seg.start_s + 0.1}")
        wait_until(page, f"{VIDEO}.readyState >= 3 && !{VIDEO}.seeking")
        page.keyboard.press(" ")
        wait_until(page, f"{METER} > {st['watched_s'] + 0.8}", timeout=10)
        page.goto(server + "/")
        wait_until(page, "true")
        deadline = time.time() + 10
        while other.get("/api/exposure").json()["watched_s"] < st["watched_s"] + 0.5 and time.time() < deadline:
            time.sleep(0.2)
        assert other.get("/api/exposure").json()["watched_s"] >= st["watched_s"] + 0.5
        ctx.close()
        browser.close()

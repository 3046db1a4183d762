"""A review day's other steps in a real browser (Debian chromium, Playwright), by keyboard where there is a key.

A first reviewer asks for a second review of two severe segments (w) and can neither confirm (c) nor dispute
(d) them, also where someone else reviewed the stretch before her (four eyes); a second reviewer changes safe
viewing (each part on its own) and sees the queue and the workspace follow it, confirms one segment (c) and
disputes the other (d), switches the interface to Russian and sees Russian labels; the first reviewer's own
settings and language are untouched; logging out sends the queue to the login page. The app has no web page for
managing users or case membership (users are added with `custodes user add`), so no admin step is driven here.
Screenshots at 1280x720 and 1440x900 go to test-artifacts/."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.store.db import Review, User, UserPrefs
from custodes.web.app import create_app
from custodes.web.background import background_server
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, session_csrf
from tests.web.test_browser import ARGS, ARTIFACTS, CHROMIUM, VIDEO, log_in, wait_until

FIRST, SECOND = "anna.first", "boris.second"
THUMB = "getComputedStyle(document.querySelector('img.thumb')).filter"
STATUS = "(document.getElementById('status') || {}).textContent || ''"


@pytest.fixture
def day_server(web_case):
    case, _ = web_case
    with case.sessions() as s:
        known = set(s.scalars(select(User.name)))
    for name in (FIRST, SECOND):
        if name not in known:
            add_user(case, name, "reviewer", PASSWORD, "tester")
    with background_server(create_app(case)) as url:
        yield url


def ready(page):
    page.wait_for_selector("#player")
    wait_until(page, f"{VIDEO}.readyState >= 1 && document.querySelectorAll('#ticks span').length > 0")


def current_segment(page) -> int:
    return int(page.evaluate("document.querySelector('li.segment.current').dataset.segId"))


def state_of(page, seg: int) -> str:
    return page.inner_text(f'li.segment[data-seg-id="{seg}"] .state')


def record(page, key, expect):
    """Press a review key in the workspace and wait for the status line to say what happened."""
    page.evaluate("document.getElementById('status').textContent = ''")
    page.keyboard.press(key)
    wait_until(page, f"({STATUS}).includes({expect!r})")


def reviews(case, seg: int) -> list[tuple[str, str]]:
    with case.sessions() as s:
        return [(r.author, r.state) for r in s.scalars(select(Review).where(Review.segment_id == seg)
                                                      .order_by(Review.id))]


def test_second_review_safe_viewing_russian_and_logout_in_chromium(day_server, web_case):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    case, _ = web_case
    server = day_server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        # -- the first reviewer: second review wanted on two severe segments, and no confirming their own --
        ctx = browser.new_context(viewport={"width": 1280, "height": 720})
        page = ctx.new_page()
        log_in(page, server, FIRST)
        assert "content warning" in page.locator("table.queue tbody tr").first.inner_text()
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        ready(page)
        url_a, seg_a = page.url, current_segment(page)
        record(page, "w", "Recorded: second review wanted")
        assert state_of(page, seg_a) == "second review wanted"
        # four eyes: confirming your own request is refused, in one sentence, and nothing is recorded
        record(page, "c", "A second review must come from someone else")
        assert state_of(page, seg_a) == "second review wanted"
        assert reviews(case, seg_a)[-1] == (FIRST, "second review wanted")
        page.screenshot(path=str(ARTIFACTS / "day-own-confirm-refused-1280x720.png"))
        page.keyboard.press("n")
        wait_until(page, "document.getElementById('workspace').dataset.moving !== '1'")
        page.wait_for_load_state()
        ready(page)
        url_b, seg_b = page.url, current_segment(page)
        assert seg_b != seg_a
        # someone else reviewed this stretch first; asking for a second review still makes it one of hers
        otto = TestClient(create_app(case), client=("127.0.0.1", 50001))
        assert login(otto, "otto").status_code == 303
        # (not "nothing of concern": the stretch may hold a reviewer's annotation from an earlier test, and a
        # reviewer cannot record that over it)
        assert otto.post(f"/api/segments/{seg_b}/review", json={"state": "second review wanted"},
                         headers={"x-csrf-token": session_csrf(otto)}).status_code == 200
        record(page, "w", "Recorded: second review wanted")
        record(page, "d", "A second review must come from someone else")
        assert all(state != "disputed" for _, state in reviews(case, seg_b))
        page.click("#logout")
        page.wait_for_url(server + "/login")
        ctx.close()

        # -- the second reviewer: safe viewing, each part on its own --
        ctx = browser.new_context(viewport={"width": 1280, "height": 720})
        page = ctx.new_page()
        log_in(page, server, SECOND)
        wait_until(page, f"{THUMB} === 'blur(3px) grayscale(1)'")  # everything on by default
        page.click("#settings-link")
        page.wait_for_selector("#settings-form")
        assert page.is_checked("#pref-blur") and page.is_checked("#pref-grey") and page.is_checked("#pref-mute")
        page.uncheck("#pref-grey")
        page.uncheck("#pref-mute")
        page.click("#save-settings")
        page.wait_for_selector("#settings-saved")
        assert page.is_checked("#pref-blur") and not page.is_checked("#pref-grey")
        assert not page.is_checked("#pref-mute")
        page.goto(server + "/")
        body = page.get_attribute("body", "class").split()
        assert "safe-blur" in body and "safe-grey" not in body and "safe-mute" not in body
        wait_until(page, f"{THUMB} === 'blur(3px)'")  # still blurred, in colour now
        page.screenshot(path=str(ARTIFACTS / "day-queue-blur-only-1280x720.png"))

        # the workspace follows it: blurred, in colour, with sound; then confirm (c) and dispute (d)
        page.goto(url_a)
        ready(page)
        assert page.evaluate(f"getComputedStyle({VIDEO}).filter") == "blur(16px)"
        assert page.evaluate(f"{VIDEO}.muted") is False
        assert current_segment(page) == seg_a and state_of(page, seg_a) == "second review wanted"
        record(page, "c", "Recorded: confirmed")
        assert state_of(page, seg_a) == "confirmed"
        assert reviews(case, seg_a)[-1] == (SECOND, "confirmed")
        page.screenshot(path=str(ARTIFACTS / "day-confirmed-1280x720.png"))
        page.goto(url_b)
        ready(page)
        assert current_segment(page) == seg_b
        record(page, "d", "Recorded: disputed")
        assert reviews(case, seg_b)[-1] == (SECOND, "disputed")
        page.reload()  # what the page shows after a reload comes from the server
        ready(page)
        assert state_of(page, seg_b) == "disputed"

        # -- the interface in Russian, for this user --
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(server + "/settings")
        page.select_option("#pref-lang", "ru")
        page.click("#save-settings")
        page.wait_for_selector("#settings-saved")
        assert page.inner_text("#settings-saved") == "Сохранено."
        assert page.inner_text("h1") == "Настройки"
        assert page.is_checked("#pref-blur") and not page.is_checked("#pref-grey")  # the rest kept
        page.screenshot(path=str(ARTIFACTS / "day-settings-ru-1440x900.png"))
        page.goto(server + "/")
        assert page.get_attribute("html", "lang") == "ru"
        assert "Очередь просмотра" in page.inner_text("body")
        assert page.inner_text("#logout") == "Выйти"
        page.screenshot(path=str(ARTIFACTS / "day-queue-ru-1440x900.png"))
        page.goto(url_a)
        ready(page)
        assert "Подтвердить (c)" in page.inner_text("#confirm")
        assert "Оспорить (d)" in page.inner_text("#dispute")
        assert "Фрагменты (g)" in page.inner_text("#tab-btn-segments")
        assert state_of(page, seg_a) == "подтверждён"
        page.screenshot(path=str(ARTIFACTS / "day-workspace-ru-1440x900.png"))
        # what the script itself writes is Russian too: a mark, a label key, the play button
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("o")
        assert page.inner_text("#status").startswith("Конец отмечен:")
        page.keyboard.press("Space")
        wait_until(page, "document.getElementById('play').textContent.includes('Пауза')")
        page.keyboard.press("Space")

        # -- logout: the queue is behind the login page again --
        page.click("#logout")
        page.wait_for_url(server + "/login")
        page.goto(server + "/")
        assert page.url == server + "/login"
        page.goto(url_a)
        assert page.url == server + "/login"
        ctx.close()

        # -- the first reviewer's settings and language are their own: untouched by the second's --
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        page = ctx.new_page()
        log_in(page, server, FIRST)
        assert page.get_attribute("html", "lang") == "en" and "Review queue" in page.inner_text("body")
        wait_until(page, f"{THUMB} === 'blur(3px) grayscale(1)'")
        page.goto(url_a)
        ready(page)
        assert page.evaluate(f"{VIDEO}.muted") is True
        assert state_of(page, seg_a) == "confirmed"
        page.screenshot(path=str(ARTIFACTS / "day-first-reviewer-1440x900.png"))
        ctx.close()
        browser.close()
    with case.sessions() as s:
        prefs = {u.name: (s.get(UserPrefs, u.id).data if s.get(UserPrefs, u.id) else None)
                 for u in s.scalars(select(User).where(User.name.in_((FIRST, SECOND))))}
    assert prefs[SECOND] == {"blur": True, "grey": False, "mute": False, "lang": "ru"}
    assert prefs[FIRST] is None or prefs[FIRST] == {"blur": True, "grey": True, "mute": True, "lang": "en"}
    seconds = [e for e in case.ledger.entries() if e["action"] == "review" and e["actor"] == SECOND]
    assert {e["details"]["state"] for e in seconds} == {"confirmed", "disputed"}
    assert not [e for e in case.ledger.entries() if e["action"] == "review" and e["actor"] == FIRST
                and e["details"]["state"] in ("confirmed", "disputed")]

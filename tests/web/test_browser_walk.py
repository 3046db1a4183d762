"""Two findings of a new reviewer's walk, in a real browser (Debian chromium, Playwright): the break reminder
counts one person's time, so the next user of the same tab starts at zero; and the timeline's recordings open
by keyboard (Tab to a bar, Enter). A small real case: two synthetic clips with burnt-in clocks, ingested and
their overlays read; one browser for the module (the suite runs on two cores)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from custodes.timeline.build import read_recordings
from custodes.web.app import create_app
from custodes.web.background import background_server
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD
from tests.web.test_browser import ARGS, CHROMIUM, log_in, wait_until

TIMERS = "Object.keys(sessionStorage).filter(k => k.startsWith('custodes-started'))"


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("walk")
    (root / "drive").mkdir()
    for cam, minute in (("CAM-11", 0), ("CAM-12", 5)):
        write_clip(root / "drive" / f"{cam}.mp4", ClipSpec(cam, datetime(2026, 3, 4, 8, minute, 0), 4, fps=8,
                                                           size=(320, 180), seed=minute))
    case = Case.init(root / "case", "tester", title="walk")
    Ingestor(case, "tester").run([root / "drive"])
    read_recordings(case)
    for name in ("rita", "otto"):
        add_user(case, name, "reviewer", PASSWORD, "tester")
    shas = {name: sha for sha, name in case.display_names().items()}
    with background_server(create_app(case)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield server, browser, shas
        browser.close()


def test_the_next_user_of_the_tab_starts_the_break_timer_at_zero(walk):
    server, browser, _ = walk
    page = browser.new_page()
    log_in(page, server, "rita")
    assert page.evaluate(TIMERS) == ["custodes-started:rita"]
    # rita has been reviewing for 50 minutes (past the 45-minute reminder): her pages say so
    page.evaluate("sessionStorage.setItem('custodes-started:rita', String(Date.now() - 50 * 60 * 1000))")
    page.goto(server + "/search")
    wait_until(page, "!document.getElementById('break-reminder').hidden")
    page.click("#logout")
    page.wait_for_url(server + "/login")
    assert page.evaluate(TIMERS) == []
    log_in(page, server, "otto")  # the same tab, the next person
    assert page.evaluate(TIMERS) == ["custodes-started:otto"]
    assert page.evaluate("Date.now() - Number(sessionStorage.getItem('custodes-started:otto'))") < 10_000
    page.wait_for_timeout(300)
    assert page.locator("#break-reminder").is_hidden()
    # rita's count left behind (a tab closed without logging out) is dropped on otto's first page, not his
    page.evaluate("sessionStorage.setItem('custodes-started:rita', String(Date.now() - 50 * 60 * 1000))")
    page.goto(server + "/search")
    assert page.evaluate(TIMERS) == ["custodes-started:otto"]
    assert page.locator("#break-reminder").is_hidden()
    page.close()


def test_a_timeline_recording_opens_by_keyboard(walk):
    server, browser, shas = walk
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    log_in(page, server, "rita")
    page.goto(server + "/timeline")
    wait_until(page, "document.getElementById('tl-canvas').dataset.ready === '1'")
    page.focus("#tl-canvas")
    page.keyboard.press("Tab")
    bar = "document.activeElement"
    assert page.evaluate(f"{bar}.classList.contains('tl-rec') && {bar}.getAttribute('role') === 'button'")
    label = page.evaluate(f"{bar}.getAttribute('aria-label')")
    assert label == ("Recording on CAM-11, 2026-03-04 08:00:00 – 2026-03-04 08:00:04: CAM-11.mp4. "
                     "Enter or Space opens it.")
    # seen as focused: a thick dark edge the bar has not without focus
    assert page.evaluate(f"getComputedStyle({bar}).strokeWidth") == "3px"
    page.keyboard.press("Tab")  # the next camera's recording
    assert "CAM-12" in page.evaluate(f"{bar}.getAttribute('aria-label')")
    assert page.evaluate("getComputedStyle(document.querySelector('rect.tl-rec')).strokeWidth") == "1px"
    page.keyboard.press("-")  # zooming out redraws the lanes: the focus stays on that recording
    assert page.evaluate(f"{bar}.getAttribute('data-sha')") == shas["CAM-12.mp4"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/items/{shas['CAM-12.mp4']}?t=0")
    page.wait_for_selector("#player")
    page.close()

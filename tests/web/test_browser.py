"""The review app in a real browser: Debian chromium driven by Playwright (no downloaded browser).

A reviewer's session by keyboard: queue -> workspace -> segment to segment across files -> mark in/out ->
label key -> save in the background -> a duplicate refused with the input kept -> nothing of concern, next;
safe viewing (hold to reveal, settings per part), help, transcript, search, logout. Screenshots at 1280x720 and
1440x900 go to test-artifacts/ (the folder is printed)."""

import shutil
import time
from pathlib import Path

import pytest

from custodes.web.app import create_app
from custodes.web.background import background_server
from tests.web.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
VIDEO = "document.getElementById('player')"
NO_SCROLL = "document.documentElement.scrollHeight <= window.innerHeight + 1"


def wait_until(page, expression, timeout=20.0):
    """Poll with page.evaluate: wait_for_function needs eval(), which the app's CSP forbids."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            if page.evaluate(expression):
                return
        except Exception:  # the page is navigating
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {expression}")


def log_in(page, server, name):
    page.goto(server + "/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(server + "/")


def item_sha(url: str) -> str:
    return url.split("/items/")[1].split("?")[0] if "/items/" in url else ""


@pytest.fixture
def server(web_case):
    case, _ = web_case
    with background_server(create_app(case)) as url:
        yield url


def test_reviewer_workflow_by_keyboard_in_chromium(server, web_case):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    case, truth = web_case
    ARTIFACTS.mkdir(exist_ok=True)
    print(f"screenshots in {ARTIFACTS}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(server + "/")
        assert page.url.endswith("/login")
        page.fill("#username", "rita")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_url(server + "/")
        assert "reviewed (" in page.inner_text("#progress")
        rows = page.locator("table.queue tbody tr")
        assert rows.count() >= 8 and "content warning" in rows.first.inner_text()
        # thumbnails follow safe viewing (blur and grey by default)
        wait_until(page, "getComputedStyle(document.querySelector('img.thumb')).filter.includes('blur')")
        page.screenshot(path=str(ARTIFACTS / "queue-1280x720.png"))
        # j moves to a row, Enter opens it in the workspace
        page.keyboard.press("j")
        page.keyboard.press("Enter")
        page.wait_for_selector("#player")
        wait_until(page, f"{VIDEO}.readyState >= 1 && document.querySelectorAll('#ticks span').length > 0")
        first = item_sha(page.url)
        assert page.evaluate(NO_SCROLL), "the workspace scrolls at 1280x720"
        for sel in ("#player", "#segment-track", "#playhead", ".ws-side", "#next-segment"):
            box = page.locator(sel).bounding_box()
            assert box and box["y"] + box["height"] <= 720, sel
        page.screenshot(path=str(ARTIFACTS / "workspace-1280x720.png"))
        page.set_viewport_size({"width": 1440, "height": 900})
        assert page.evaluate(NO_SCROLL), "the workspace scrolls at 1440x900"
        page.screenshot(path=str(ARTIFACTS / "workspace-1440x900.png"))
        page.set_viewport_size({"width": 1280, "height": 720})
        # ? shows the keys
        page.keyboard.press("?")
        assert page.is_visible("#help") and "nothing of concern" in page.inner_text("#help")
        page.keyboard.press("Escape")
        assert not page.is_visible("#help")
        # safe viewing by default: blurred, grey, muted; hold r to reveal
        assert page.evaluate(f"{VIDEO}.muted") is True
        assert "blur" in page.evaluate(f"getComputedStyle({VIDEO}).filter")
        page.keyboard.down("r")
        wait_until(page, f"getComputedStyle({VIDEO}).filter === 'none'")
        page.screenshot(path=str(ARTIFACTS / "workspace-revealed.png"))
        page.keyboard.up("r")
        wait_until(page, f"getComputedStyle({VIDEO}).filter.includes('blur')")
        # space plays and pauses exactly once, whatever has focus: the video after a click, a button
        page.click("#player")
        wait_until(page, f"!{VIDEO}.paused")
        page.keyboard.press(" ")
        wait_until(page, f"{VIDEO}.paused")
        page.focus("#play")
        page.keyboard.press(" ")
        wait_until(page, f"!{VIDEO}.paused")
        time.sleep(0.3)
        assert page.evaluate(f"!{VIDEO}.paused")
        page.keyboard.press(" ")
        wait_until(page, f"{VIDEO}.paused")
        # the playhead and the clock follow the video
        page.keyboard.press("ArrowRight")
        wait_until(page, f"{VIDEO}.currentTime >= 4")
        wait_until(page, "document.getElementById('playhead').style.left !== '0%'")
        assert page.inner_text("#clock").startswith("clock 20")
        # n goes from segment to segment through the queue, into the next file
        for _ in range(15):
            page.keyboard.press("n")
            wait_until(page, "document.getElementById('workspace').dataset.moving !== '1'")
            page.wait_for_load_state()
            if item_sha(page.url) != first:
                break
        second = item_sha(page.url)
        assert second and second != first, "n never left the first file"
        page.wait_for_selector("#player")
        wait_until(page, f"{VIDEO}.readyState >= 1 && document.querySelectorAll('#ticks span').length > 0")
        assert page.evaluate(NO_SCROLL)
        # p goes back through the queue, n forward again
        page.keyboard.press("p")
        wait_until(page, "document.getElementById('workspace').dataset.moving !== '1'")
        page.wait_for_load_state()
        page.keyboard.press("n")
        wait_until(page, "document.getElementById('workspace').dataset.moving !== '1'")
        page.wait_for_load_state()
        assert item_sha(page.url) == second
        page.wait_for_selector("#player")
        wait_until(page, f"{VIDEO}.readyState >= 1 && document.querySelectorAll('#ticks span').length > 0")
        # mark in, move, mark out: the range is drawn on the strip
        t_in = page.evaluate(f"{VIDEO}.currentTime")
        page.keyboard.press("i")
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("Shift+ArrowRight")
        wait_until(page, f"{VIDEO}.currentTime >= {t_in} + 1.5 || {VIDEO}.currentTime >= {VIDEO}.duration - 0.5")
        page.keyboard.press("o")
        assert page.is_visible("#mark-range")
        assert page.evaluate("parseFloat(document.getElementById('mark-range').style.width)") > 0
        assert "Marked out" in page.inner_text("#status")
        # a label key; no label was chosen before
        assert page.evaluate("document.getElementById('label').value") == ""
        page.keyboard.press("1")
        assert page.evaluate("document.getElementById('label').value") == "beating"
        assert page.is_visible("#annotate-form")
        assert page.inner_text("#start-clock").count(":") == 2  # clock time beside file time
        page.evaluate("window.notReloaded = 1")
        position = page.evaluate(f"{VIDEO}.currentTime")
        page.click("#note")
        page.keyboard.type("two officers strike a man on the floor")
        page.keyboard.press("Control+Enter")
        wait_until(page, "document.getElementById('saved').textContent.startsWith('Saved as annotation #')")
        assert page.evaluate("window.notReloaded") == 1 and item_sha(page.url) == second
        assert abs(page.evaluate(f"{VIDEO}.currentTime") - position) < 0.5  # playback position kept
        assert "two officers strike" in page.inner_text("#annotation-list")
        assert page.locator("#ann-lane .ann").count() >= 1
        page.screenshot(path=str(ARTIFACTS / "workspace-annotated-1280x720.png"))
        # the same again is refused in the form, with what was typed kept
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("1")
        page.click("#note")
        page.keyboard.type("two officers strike a man on the floor")
        page.keyboard.press("Control+Enter")
        wait_until(page, "!document.getElementById('annotation-error').hidden")
        assert "already saved" in page.inner_text("#annotation-error")
        assert page.evaluate("document.getElementById('note').value") == "two officers strike a man on the floor"
        assert page.evaluate(NO_SCROLL)
        # x out of habit on the segment just annotated is refused: the annotation is not unsaid
        page.evaluate("document.activeElement.blur()")
        reviews_before = len([e for e in case.ledger.entries() if e["action"] == "review" and e["actor"] == "rita"])
        page.keyboard.press("x")
        wait_until(page, "document.getElementById('status').textContent.includes(\"it is not 'nothing of concern'\")")
        assert item_sha(page.url) == second and page.evaluate("document.getElementById('status').classList"
                                                              ".contains('bad')")
        assert len([e for e in case.ledger.entries() if e["action"] == "review" and e["actor"] == "rita"]) \
            == reviews_before
        # nothing of concern, next: on the previous file's segment, which holds no annotation
        page.keyboard.press("p")
        wait_until(page, f"!location.href.includes('{second}')")
        page.wait_for_load_state()
        page.wait_for_selector("#player")
        wait_until(page, f"{VIDEO}.readyState >= 1")
        page.keyboard.press("x")
        wait_until(page, "(document.getElementById('status') || {}).textContent?.includes('Recorded') || "
                         f"location.href.includes('{second}')")
        time.sleep(0.8)
        page.wait_for_load_state()
        reviews = [e for e in case.ledger.entries() if e["action"] == "review" and e["actor"] == "rita"]
        assert len(reviews) > reviews_before and reviews[-1]["details"]["state"] == "nothing of concern"
        # the transcript: click a word to go there, the word at the playhead is highlighted
        page.wait_for_selector("#player")
        wait_until(page, f"{VIDEO}.readyState >= 1")
        page.keyboard.press("t")
        if page.locator("#transcript .w").count():
            word = page.locator("#transcript .w").nth(1)
            t_word = float(word.get_attribute("data-t"))
            word.click()
            wait_until(page, f"Math.abs({VIDEO}.currentTime - {t_word}) < 0.3")
            wait_until(page, "document.querySelector('#transcript .w.now') !== null")
        # safe viewing settings, each on its own: no blur, still grey
        page.goto(server + "/settings")
        page.uncheck("#pref-blur")
        page.click("#save-settings")
        page.wait_for_selector("#settings-saved")
        page.goto(server + "/")
        wait_until(page, "getComputedStyle(document.querySelector('img.thumb')).filter === 'grayscale(1)'")
        # search finds the annotation and file names
        page.goto(server + "/search?q=officers")
        assert "two officers strike" in page.inner_text("ul.hits")
        page.goto(server + "/search?q=CAM01")
        assert page.locator("ul.hits li").count() >= 1
        # an error is a page, not JSON
        page.goto(server + "/items/" + "0" * 64)
        assert "no such page or item" in page.inner_text("#error-sentence")
        page.click("#logout")
        page.wait_for_url(server + "/login")
        page.goto(server + "/")
        assert page.url.endswith("/login")
        browser.close()
    with case.sessions() as s:
        from sqlalchemy import select

        from custodes.store.db import User, UserPrefs
        rita = s.scalars(select(User).where(User.name == "rita")).one()
        prefs = dict(s.get(UserPrefs, rita.id).data)
        prefs.pop("exposure", None)  # the exposure meter's minutes of flagged footage (web/exposure.py)
        assert prefs == {"blur": False, "grey": True, "mute": True, "lang": "en"}
    actions = [e["action"] for e in case.ledger.entries() if e["actor"] == "rita"]
    assert {"login", "view", "playback", "annotate", "review", "logout"} <= set(actions)

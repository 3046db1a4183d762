"""The review app in a real browser: Debian chromium driven by Playwright (no downloaded browser)."""

import shutil
import time
from pathlib import Path

import pytest

from custodes.web.app import create_app
from custodes.web.background import background_server
from tests.web.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def wait_until(page, expression, timeout=20.0):
    """Poll with page.evaluate: wait_for_function needs eval(), which the app's CSP forbids."""
    end = time.time() + timeout
    while time.time() < end:
        if page.evaluate(expression):
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {expression}")


@pytest.fixture
def server(web_case):
    case, _ = web_case
    with background_server(create_app(case)) as url:
        yield url


def test_reviewer_workflow_in_chromium(server, web_case):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    case, truth = web_case
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server + "/")
        assert page.url.endswith("/login")
        page.fill("#username", "rita")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_url(server + "/")
        page.screenshot(path=str(ARTIFACTS / "1-queue.png"), full_page=True)
        rows = page.locator("table.queue tbody tr")
        assert rows.count() >= 8
        assert "content warning" in rows.first.inner_text()
        page.click("a.open-item >> nth=0")
        page.wait_for_selector("#player")
        # safe viewing is on by default: blurred, greyscale, muted
        assert "safe" in page.get_attribute("#player-box", "class")
        assert page.evaluate("document.getElementById('player').muted") is True
        assert "blur" in page.evaluate("getComputedStyle(document.getElementById('player')).filter")
        # play the flagged segment
        wait_until(page, "document.getElementById('player').readyState >= 1")
        page.click("a.seek.seg >> nth=0")
        seg_start = float(page.get_attribute("a.seek.seg >> nth=0", "data-t"))
        page.evaluate("document.getElementById('player').play()")
        wait_until(page, f"document.getElementById('player').currentTime > {seg_start + 0.3}")
        page.screenshot(path=str(ARTIFACTS / "2-player-safe.png"))
        # the marks on the segment track jump there too
        mark = page.locator("#segment-track a.mark").first
        mark.click()
        target = mark.get_attribute("data-t")
        wait_until(page, f"Math.abs(document.getElementById('player').currentTime - {target}) < 1")
        page.click("#unblur")
        assert "safe" not in (page.get_attribute("#player-box", "class") or "")
        wait_until(page, "getComputedStyle(document.getElementById('player')).filter === 'none'")  # after the fade
        page.screenshot(path=str(ARTIFACTS / "3-player-unblurred.png"))
        # annotate
        page.select_option("#label", "beating")
        page.fill("#start_s", str(seg_start))
        page.fill("#end_s", str(seg_start + 4))
        page.fill("#person", "P-3")
        page.fill("#note", "two officers strike a man on the floor")
        page.click("#save-annotation")
        page.wait_for_selector("text=two officers strike a man on the floor")
        page.screenshot(path=str(ARTIFACTS / "4-annotated.png"), full_page=True)
        # search finds the annotation and file names
        page.goto(server + "/search?q=officers")
        assert "two officers strike" in page.inner_text("ul.hits")
        page.goto(server + "/search?q=CAM01")
        assert page.locator("ul.hits li").count() >= 1
        page.screenshot(path=str(ARTIFACTS / "5-search.png"))
        page.click("#logout")
        page.wait_for_url(server + "/login")
        page.goto(server + "/")
        assert page.url.endswith("/login")
        browser.close()
    actions = [e["action"] for e in case.ledger.entries() if e["actor"] == "rita"]
    assert {"login", "view", "playback", "annotate", "logout"} <= set(actions)

"""Issue 27 in a real browser (Debian chromium, Playwright): the workspace page of a clip shows its copies with
matched frames of both files side by side, decoded and blurred under safe viewing like other thumbnails; the
queue shows the cluster as one row with "+2 copies". Screenshot in test-artifacts/."""

from pathlib import Path

import pytest

from custodes.web.app import create_app
from custodes.web.background import background_server
from tests.web.conftest import PASSWORD
from tests.web.test_browser import ARGS, ARTIFACTS, CHROMIUM, wait_until
from tests.web.test_dupe_copies import cluster  # noqa: F401 - the fixture: fi005, a cut and a mirrored copy

pytestmark = pytest.mark.slow

PAIRS = "document.querySelectorAll('#copies-panel figure.pair img.thumb')"


def test_copies_panel_shows_matched_frames_side_by_side_blurred(cluster):  # noqa: F811
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    from playwright.sync_api import sync_playwright

    case, x, off = cluster
    ARTIFACTS.mkdir(exist_ok=True)
    with background_server(create_app(case)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(server + "/login")
        page.fill("#username", "rita")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_url(server + "/")
        assert page.locator("#queue-table tbody tr").count() == 1
        assert "+2 copies" in page.inner_text("#queue-table")
        page.goto(f"{server}/items/{x['cut']}")
        page.wait_for_selector("#copies-panel")
        page.evaluate("document.getElementById('copies-panel').scrollIntoView()")
        wait_until(page, f"{PAIRS}.length >= 4 && [...{PAIRS}].every(i => i.complete && i.naturalWidth > 0)")
        srcs = page.evaluate(f"[...{PAIRS}].map(i => i.getAttribute('src'))")
        assert any(x["cut"] in s for s in srcs) and any(x["src"] in s for s in srcs)
        assert "blur" in page.evaluate(f"getComputedStyle({PAIRS}[0]).filter")
        page.screenshot(path=str(ARTIFACTS / "copies-panel-1280x720.png"), full_page=True)
        page.click(f'#copies-panel a.copy-open[href*="{x["src"]}"]')
        page.wait_for_url(f"**/items/{x['src']}?t=*")
        browser.close()

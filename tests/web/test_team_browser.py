"""The admin's journey on a team server in a real browser (Debian chromium, Playwright): an admin logs in, adds
a user and gives them one case with a role; that user logs in, must first choose a password of their own
(the admin knows the first one), then sees only that case in the switcher, and gets 404 for an item URL of
the other case. Screenshots at 1440x900 and 1280x720 go to test-artifacts/."""

from pathlib import Path

import pytest

from custodes.web.background import background_server
from tests.web.team_fixtures import A, B, b_ids, make_team
from tests.web.test_browser import ARGS, ARTIFACTS, CHROMIUM

NEW_PASSWORD = "a long new password"
OWN_PASSWORD = "the reviewer's own password"


def log_in(page, server, name, password):
    page.goto(server + "/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("#login-button")


def test_admin_adds_a_user_to_one_case_who_sees_only_that_case_in_chromium(web_case, small_clip, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    app, _, case_a, case_b = make_team(web_case, small_clip, tmp_path)
    ids = b_ids(case_b)
    ARTIFACTS.mkdir(exist_ok=True)
    with background_server(app) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for width, height in ((1440, 900), (1280, 720)):
            name = f"kim{width}"
            admin = browser.new_page(viewport={"width": width, "height": height})
            log_in(admin, server, "alma", "correct horse battery")
            admin.wait_for_url(server + "/")
            admin.click("#admin-link")
            admin.wait_for_url(server + "/admin")
            assert str(case_b.meta["title"]) not in admin.content()  # alma administers A only
            admin.fill("#new-user-name", name)
            admin.fill("#new-user-password", NEW_PASSWORD)
            admin.click("#add-user-button")
            assert f"Added user {name}" in admin.inner_text("#admin-done")
            section = admin.locator(f'section.case-members[data-case="{A}"]')
            section.locator("input.member-name").fill(name)  # typed: the server's other users are not listed
            section.locator("select.member-role").select_option("reviewer")
            section.locator("button.add-member-button").click()
            assert f"{name} is now reviewer in A block" in admin.inner_text("#admin-done")
            assert admin.locator(f'section.case-members[data-case="{A}"] tr[data-member="{name}"]').count() == 1
            admin.screenshot(path=str(ARTIFACTS / f"team-admin-member-added-{width}x{height}.png"))
            admin.close()

            user = browser.new_page(viewport={"width": width, "height": height})
            log_in(user, server, name, NEW_PASSWORD)
            # alma set that password: first the user chooses their own, and nothing else opens before
            user.wait_for_url(server + "/password")
            assert user.locator("#must-change").count() == 1
            user.goto(server + f"/c/{A}/")
            assert user.url == server + "/password"
            user.fill("#current-password", NEW_PASSWORD)
            user.fill("#new-password", OWN_PASSWORD)
            user.fill("#new-password-again", OWN_PASSWORD + " typo")
            user.click("#change-password-button")
            assert "The two new passwords differ" in user.inner_text("#password-error")
            user.screenshot(path=str(ARTIFACTS / f"team-password-refused-{width}x{height}.png"))
            user.fill("#current-password", NEW_PASSWORD)
            user.fill("#new-password", OWN_PASSWORD)
            user.fill("#new-password-again", OWN_PASSWORD)
            user.click("#change-password-button")
            user.wait_for_url(server + "/password?done=1")
            assert "Your password is changed" in user.inner_text("#password-done")
            user.click("#password-done a")
            user.wait_for_url(server + f"/c/{A}/")
            switcher = user.inner_text("#case-switcher")
            assert "A block" in switcher and str(case_b.meta["title"]) not in switcher
            assert user.locator("#case-switcher a, #case-switcher strong").count() == 1
            assert f"{name} (reviewer)" in user.inner_text("nav")
            user.screenshot(path=str(ARTIFACTS / f"team-reviewer-one-case-{width}x{height}.png"))
            resp = user.goto(server + f"/c/{B}/items/{ids['sha256']}")
            assert resp is not None and resp.status == 404
            assert "There is no such page or item" in user.inner_text("#error-sentence")
            assert str(case_b.meta["title"]) not in user.content()
            user.screenshot(path=str(ARTIFACTS / f"team-other-case-404-{width}x{height}.png"))
            # the reviewer's own case works: its item page opens in the browser
            resp = user.goto(server + f"/c/{A}/timeline")
            assert resp is not None and resp.status == 200
            user.click("#logout")
            user.wait_for_url(server + "/login")
            user.close()
        browser.close()

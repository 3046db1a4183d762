"""The workspace strip's waveform, /api/items/{sha}/peaks, through the app: a logged-in reviewer gets the peaks of
a real clip (3 s of silence, then 2 s of a loud tone), decoded once and then served from reports/peaks (the file's
mtime does not change); a cache of an older format is decoded again; a video without sound says so; logged out
gets 401 and an unknown item 404; the request is in the ledger's batched views. An encrypted case writes no
waveform to disk. In Chromium the strip draws the band after the page loads, and the legend names it."""

import json
import os
import re
import time

import pytest
from fastapi.testclient import TestClient

from custodes.ingest.pipeline import Ingestor
from custodes.media import waveform
from custodes.store.case import Case
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.media.test_waveform import write
from tests.web.conftest import PASSWORD, login
from tests.web.test_audit import views_of


def make_case(root, secret=None):
    case = Case.init(root / "case", "tester", title="Waveforms", secret=secret)
    drive = root / "drive"
    drive.mkdir()
    write(drive / "tone.mp4")
    write(drive / "mute.mp4", audio=False)
    Ingestor(case, "tester").run([drive])
    add_user(case, "rita", "reviewer", PASSWORD, "tester")
    names = {v: k for k, v in case.display_names().items()}
    return case, names["tone.mp4"], names["mute.mp4"]


@pytest.fixture
def wave_case(tmp_path):
    return make_case(tmp_path)


def test_peaks_are_decoded_once_then_served_from_the_cache(wave_case):
    case, tone, mute = wave_case
    cache = case.reports / "peaks" / f"{tone}.json"
    before = sum(1 for _ in case.ledger.entries())
    with TestClient(create_app(case), client=("127.0.0.41", 1)) as c:
        login(c, "rita")
        assert not cache.exists()
        r = c.get(f"/api/items/{tone}/peaks")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.headers["cache-control"] == "no-store"
        d = r.json()
        assert d["version"] == "waveform-1" and d["bucket_s"] == pytest.approx(0.1)
        assert max(d["peaks"][:28]) <= 3 and min(d["peaks"][30:49]) > 190  # quiet, then the tone from 3 s
        assert cache.is_file() and json.loads(cache.read_bytes()) == d
        assert not list(cache.parent.glob("*.part"))  # written whole, then moved into place
        # the second request reads the cache: the file is not written again
        old = time.time() - 100
        os.utime(cache, (old, old))
        assert c.get(f"/api/items/{tone}/peaks").content == r.content
        assert cache.stat().st_mtime == old
        # a video without sound: no peaks and the sentence, cached too
        m = c.get(f"/api/items/{mute}/peaks").json()
        assert m["peaks"] == [] and m["reason"] == "This file has no sound."
        assert (case.reports / "peaks" / f"{mute}.json").is_file()
    seen = {(v["what"], v["subject"]) for v in views_of(case, "rita", before)}
    assert ("waveform", tone) in seen and ("waveform", mute) in seen


def test_the_legend_names_the_band_in_english_and_russian(wave_case):
    case, tone, _ = wave_case
    c = TestClient(create_app(case), client=("127.0.0.46", 1))
    login(c, "rita")
    page = c.get(f"/items/{tone}").text
    assert '<canvas id="waveform"' in page and '<span class="k wave"></span> loudness' in page
    assert ' style="' not in page  # drawn and sized from app.js: the CSP allows no inline styles
    c.headers["X-CSRF-Token"] = re.search(r'name="csrf" value="([^"]+)"', c.get("/").text).group(1)
    assert c.post("/api/prefs", json={"lang": "ru"}).json()["lang"] == "ru"
    assert '<span class="k wave"></span> громкость' in c.get(f"/items/{tone}").text


def test_a_cache_of_another_format_is_decoded_again(wave_case):
    case, tone, _ = wave_case
    cache = case.reports / "peaks" / f"{tone}.json"
    cache.parent.mkdir(parents=True)
    cache.write_text('{"version":"waveform-0","bucket_s":1,"peaks":[9,9,9]}')
    c = TestClient(create_app(case), client=("127.0.0.42", 1))
    login(c, "rita")
    d = c.get(f"/api/items/{tone}/peaks").json()
    assert d["version"] == waveform.FORMAT and len(d["peaks"]) > 40
    assert json.loads(cache.read_bytes())["version"] == waveform.FORMAT


def test_logged_out_gets_401_and_an_unknown_item_404(wave_case):
    case, tone, _ = wave_case
    c = TestClient(create_app(case), client=("127.0.0.43", 1))
    assert c.get(f"/api/items/{tone}/peaks").status_code == 401
    assert not (case.reports / "peaks" / f"{tone}.json").exists()  # nothing decoded for a stranger
    login(c, "rita")
    assert c.get(f"/api/items/{'ab' * 32}/peaks").status_code == 404
    assert c.get("/api/items/not-a-digest/peaks").status_code == 404


def test_precompute_fills_the_cache_the_page_then_reads(wave_case):
    case, tone, mute = wave_case
    assert waveform.precompute(case, [tone, mute]) == {"computed": 2, "cached": 0, "no_sound": 1}
    assert waveform.precompute(case, [tone, mute]) == {"computed": 0, "cached": 2, "no_sound": 0}
    cache = case.reports / "peaks" / f"{tone}.json"
    mtime = cache.stat().st_mtime_ns
    c = TestClient(create_app(case), client=("127.0.0.44", 1))
    login(c, "rita")
    assert len(c.get(f"/api/items/{tone}/peaks").json()["peaks"]) > 40 and cache.stat().st_mtime_ns == mtime


def test_an_encrypted_case_keeps_no_waveform_on_disk(tmp_path):
    case, tone, _ = make_case(tmp_path, secret="a long enough passphrase")
    c = TestClient(create_app(case), client=("127.0.0.45", 1))
    login(c, "rita")
    first = c.get(f"/api/items/{tone}/peaks")
    assert first.status_code == 200 and min(first.json()["peaks"][30:49]) > 190  # decoded through the decryptor
    assert c.get(f"/api/items/{tone}/peaks").content == first.content  # from memory
    assert not (case.reports / "peaks").exists()
    assert waveform.precompute(case, [tone]) == {"computed": 0, "cached": 0, "no_sound": 0}


@pytest.mark.slow
def test_the_strip_draws_the_waveform_in_chromium(wave_case):
    from playwright.sync_api import sync_playwright

    from custodes.web.background import background_server
    from tests.web.test_browser import ARGS, ARTIFACTS, CHROMIUM, wait_until

    case, tone, mute = wave_case
    ARTIFACTS.mkdir(exist_ok=True)
    with background_server(create_app(case)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(server + "/login")
        page.fill("#username", "rita")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.goto(server + f"/items/{tone}")
        wait_until(page, "document.getElementById('waveform').dataset.ready === '1'")
        # safe viewing mutes the player by default; the band is a picture of loudness and is drawn all the same
        assert page.evaluate("document.getElementById('player').muted") is True
        assert page.locator("#waveform").is_visible()
        assert page.get_attribute("#waveform", "data-buckets") in ("50", "51", "52")
        # drawn: painted pixels per column, a hairline over the silent first half and a band over the tone
        painted = page.evaluate("""() => {
            const c = document.getElementById('waveform'), g = c.getContext('2d');
            const count = (x0, x1) => { const d = g.getImageData(x0, 0, x1 - x0, c.height).data; let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; };
            const x = f => Math.floor(c.width * f);
            return {quiet: count(0, x(0.5)) / x(0.5), loud: count(x(0.65), x(0.95)) / (x(0.95) - x(0.65)),
                    width: c.width, height: c.height};
        }""")
        assert painted["width"] > 100 and painted["quiet"] <= 3 and painted["loud"] > 0.5 * (painted["height"] - 26)
        assert "loudness" in page.inner_text(".ws-strip .legend")
        page.screenshot(path=str(ARTIFACTS / "workspace-waveform-1440x900.png"))
        # no sound: no band, the reason kept for whoever asks
        page.goto(server + f"/items/{mute}")
        wait_until(page, "document.getElementById('waveform').dataset.ready === '1'")
        assert not page.locator("#waveform").is_visible()
        assert page.get_attribute("#waveform", "data-reason") == "This file has no sound."
        browser.close()

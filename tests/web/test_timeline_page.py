"""The timeline page: lanes per camera, clickable into the workspace, and camera names an investigator corrects.

A case of three recordings (real objects in a real case; the clock readings as OCR would store them) where the
overlay of the middle one was misread "CH-OT" for "CH-01": before the correction CH-01 has a ten-minute gap and
CH-OT is a camera nobody has; merged, one lane without a gap. The correction is a signed ledger event (verify
passes, and an edit of it is caught), never an edit of the reading; a reviewer cannot make it; a bad name gets
one sentence and the typed form back. In Chromium the lanes are drawn, zoom with the keyboard, and a click on a
flagged segment opens the workspace at it."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import MediaProbe, Recording, Segment
from custodes.timeline.build import build_timeline
from custodes.timeline.cameras import CameraNameError, camera_names, rename_camera, replay
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, session_csrf

T0 = datetime(2026, 3, 14, 10, 0, 0)
READ = ("CH-01", "CH-OT", "CH-01")  # what the overlay was read as, file by file


@pytest.fixture
def cam_case(tmp_path):
    case = Case.init(tmp_path / "case", "tester", title="Cameras")
    drive = tmp_path / "drive"
    drive.mkdir()
    for i in range(len(READ)):
        (drive / f"cam_{i}.mp4").write_bytes(f"recording {i}".encode() * 1000)
    Ingestor(case, "tester", probe_media=False).run([drive])
    names = {v: k for k, v in case.display_names().items()}
    shas = [names[f"cam_{i}.mp4"] for i in range(len(READ))]
    now = datetime.now(UTC)
    with case.sessions() as s:
        for i, (sha, cam) in enumerate(zip(shas, READ, strict=True)):
            s.merge(MediaProbe(sha256=sha, status="ok", reason="", duration_s=600.0, tags={}, streams=[],
                               probe_version="test", probed_at=now, width=640, height=360, video_codec="h264"))
            start = T0 + timedelta(minutes=10 * i)
            s.add(Recording(sha256=sha, camera_id=cam, start_at=start, end_at=start + timedelta(minutes=10),
                            source="overlay", confidence=0.9, version="test", data={}))
            s.add(Segment(sha256=sha, start_s=120.0, end_s=128.0, score=0.91,
                          reasons=[{"signal": "p_visual", "value": 0.9}], model_version="test", created_at=now))
        s.commit()
    add_user(case, "ivan", "investigator", PASSWORD, "tester")
    add_user(case, "rita", "reviewer", PASSWORD, "tester")
    return case, shas


def lanes(case):
    return {c["camera"]: c for c in build_timeline(case)["cameras"]}


def test_replay_follows_chains_and_undo():
    ev = [{"details": {"camera": "CH-OT", "to": "CH-01"}}, {"details": {"camera": "CH-01", "to": "Cell 14"}}]
    assert replay(ev) == {"CH-OT": "Cell 14", "CH-01": "Cell 14"}
    assert replay([*ev, {"details": {"camera": "CH-01", "to": "CH-01"}}]) == {"CH-OT": "CH-01"}
    # two names swapped: each ends where the cycle closes, and the replay never loops
    assert replay([{"details": {"camera": "A", "to": "B"}}, {"details": {"camera": "B", "to": "A"}}]) == \
        {"A": "B", "B": "A"}


def test_merging_a_misread_camera_closes_its_false_gap_and_is_signed(cam_case):
    case, shas = cam_case
    before = lanes(case)
    assert set(before) == {"CH-01", "CH-OT"}
    assert [g["duration_s"] for g in before["CH-01"]["gaps"]] == [600.0]

    r = rename_camera(case, "ivan", "CH-OT", "CH-01", "OCR read 0 as O")
    assert r["merge"] and r["readings"] == ["CH-OT"]
    after = lanes(case)
    assert set(after) == {"CH-01"} and after["CH-01"]["gaps"] == []
    assert len(after["CH-01"]["recordings"]) == 3
    # the reading stays what OCR read; the correction is in the ledger, signed, and verify passes
    with case.sessions() as s:
        assert s.scalar(select(Recording.camera_id).where(Recording.sha256 == shas[1])) == "CH-OT"
    (event,) = [e for e in case.ledger.entries() if e["action"] == "camera.rename"]
    assert event["actor"] == "ivan" and event["details"]["to"] == "CH-01" and event["details"]["merge"] is True


def test_an_edited_correction_fails_verify(cam_case, tmp_path):
    from tests.conftest import run_cli

    case, _ = cam_case
    rename_camera(case, "ivan", "CH-OT", "CH-01", "misread")
    ok = run_cli("verify", str(case.root))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = case.ledger.path.read_bytes().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if b'"camera.rename"' in line)
    lines[at] = lines[at].replace(b'"to":"CH-01"', b'"to":"CH-99"')
    case.ledger.path.write_bytes(b"".join(lines))
    assert camera_names(case) == {"CH-OT": "CH-99"}  # what a forger would show...
    assert run_cli("verify", str(case.root)).returncode != 0  # ...and verify catches it


def test_renaming_a_merged_camera_renames_all_its_readings_and_one_can_be_split_off(cam_case):
    case, _ = cam_case
    rename_camera(case, "ivan", "CH-OT", "CH-01")
    r = rename_camera(case, "ivan", "CH-01", "Cell 14 corridor")
    assert r["readings"] == ["CH-01", "CH-OT"] and not r["merge"]
    assert set(lanes(case)) == {"Cell 14 corridor"}
    rename_camera(case, "ivan", "CH-OT", "CH-OT")  # a reading on its own: back to what was read
    assert set(lanes(case)) == {"Cell 14 corridor", "CH-OT"}


@pytest.mark.parametrize(("camera", "to", "words"), [
    ("CH-02", "CH-01", "No camera is shown or read as 'CH-02'"),
    ("CH-OT", "   ", "The new camera name is empty"),
    ("CH-OT", "x" * 65, "longer than 64 characters"),
    ("CH-OT", "CH\u0007", "control characters"),
    ("CH-OT", "CH-OT", "already shown as 'CH-OT'"),
])
def test_bad_corrections_are_refused_in_one_sentence(cam_case, camera, to, words):
    case, _ = cam_case
    n = sum(1 for _ in case.ledger.entries())
    with pytest.raises(CameraNameError, match=words.replace("(", r"\(")):
        rename_camera(case, "ivan", camera, to)
    assert sum(1 for _ in case.ledger.entries()) == n


def test_the_page_lists_lanes_and_the_api_draws_them(cam_case):
    case, shas = cam_case
    client = TestClient(create_app(case))
    assert login(client, "rita").status_code == 303
    page = client.get("/timeline")
    assert page.status_code == 200 and 'id="tl-canvas"' in page.text and "CH-OT" in page.text
    assert "rename-camera" not in page.text  # a reviewer sees no correction form
    assert "10:10:00 – 2026-03-14 10:20:00 (10 min)" in page.text  # the gap, to the second, in words
    doc = client.get("/api/timeline").json()
    assert doc["can_rename"] is False and doc["span"] == {"start": "2026-03-14 10:00:00", "end": "2026-03-14 10:30:00"}
    lane = next(c for c in doc["cameras"] if c["camera"] == "CH-01")
    assert [r["sha256"] for r in lane["recordings"]] == [shas[0], shas[2]]
    assert lane["recordings"][0]["segments"][0]["start_s"] == 120.0
    assert lane["recordings"][0]["segments"][0]["state"] == "unreviewed"
    json.dumps(doc, allow_nan=False)


def test_a_reviewer_cannot_correct_and_an_investigator_can(cam_case):
    case, _ = cam_case
    rita = TestClient(create_app(case))
    login(rita, "rita")
    r = rita.post("/api/cameras/rename", json={"camera": "CH-OT", "to": "CH-01"},
                  headers={"X-CSRF-Token": session_csrf(rita)})
    assert r.status_code == 403 and "Only an investigator or an admin" in r.json()["detail"]
    r = rita.post("/timeline/cameras", data={"csrf": session_csrf(rita), "camera": "CH-OT", "to": "CH-01"})
    assert r.status_code == 403 and "Only an investigator or an admin" in r.text
    assert camera_names(case) == {}

    ivan = TestClient(create_app(case))
    login(ivan, "ivan")
    csrf = session_csrf(ivan)
    r = ivan.post("/timeline/cameras", data={"csrf": csrf, "camera": "CH-OT", "to": "x" * 70, "reason": "typo fix"})
    assert r.status_code == 422 and "longer than 64 characters" in r.text and 'value="typo fix"' in r.text
    r = ivan.post("/timeline/cameras", data={"csrf": "wrong", "camera": "CH-OT", "to": "CH-01"})
    assert r.status_code in (400, 403) and camera_names(case) == {}
    r = ivan.post("/timeline/cameras", data={"csrf": csrf, "camera": "CH-OT", "to": "CH-01", "reason": "0 read as O"})
    assert r.status_code == 200 and "CH-OT is now part of camera CH-01" in r.text
    doc = ivan.get("/api/timeline").json()
    assert [c["camera"] for c in doc["cameras"]] == ["CH-01"] and doc["cameras"][0]["corrected"]
    assert doc["cameras"][0]["readings"] == ["CH-01", "CH-OT"] and doc["gaps"] == []


@pytest.mark.slow
def test_lanes_zoom_and_a_click_opens_the_segment_in_chromium(cam_case):
    from playwright.sync_api import sync_playwright

    from custodes.web.background import background_server
    from tests.web.test_browser import ARGS, ARTIFACTS, CHROMIUM, wait_until

    case, shas = cam_case
    with case.sessions() as s:
        seg = s.scalar(select(Segment.id).where(Segment.sha256 == shas[2]))
    ARTIFACTS.mkdir(exist_ok=True)
    with background_server(create_app(case)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(server + "/login")
        page.fill("#username", "ivan")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.goto(server + "/timeline")
        wait_until(page, "document.getElementById('tl-canvas').dataset.ready === '1'")
        assert page.locator(".tl-lane-label").count() == 2 and page.locator(".tl-gap").count() == 1
        page.screenshot(path=str(ARTIFACTS / "timeline-before-merge-1440x900.png"))
        # merge the misread camera from the page's own form
        row = page.locator('tr[data-camera="CH-OT"]')
        row.locator('input[name="to"]').fill("CH-01")
        row.locator('input[name="reason"]').fill("OCR read 0 as O")
        row.locator("button").click()
        wait_until(page, "document.getElementById('tl-canvas').dataset.ready === '1'")
        assert "CH-OT is now part of camera CH-01" in page.inner_text("#timeline-done")
        assert page.locator(".tl-lane-label").count() == 1 and page.locator(".tl-gap").count() == 0
        before = page.inner_text("#tl-range")
        page.focus("#tl-canvas")
        page.keyboard.press("+")
        page.keyboard.press("+")
        assert page.inner_text("#tl-range") != before
        # zoomed in, no bar reaches into the lane names: every bar is inside the plot's clip
        assert page.evaluate("[...document.querySelectorAll('.tl-rec, .tl-seg, .tl-gap')].every("
                             "r => r.closest('g[clip-path]') !== null)")
        page.screenshot(path=str(ARTIFACTS / "timeline-zoomed-1440x900.png"))
        page.keyboard.press("0")
        page.set_viewport_size({"width": 1280, "height": 720})
        page.screenshot(path=str(ARTIFACTS / "timeline-merged-1280x720.png"))
        page.locator(f'rect[data-seg="{seg}"]').click()
        page.wait_for_url(f"**/items/{shas[2]}?seg={seg}&t=120")
        browser.close()


def test_the_queue_and_the_workspace_show_the_corrected_camera(cam_case):
    """After the merge the review app speaks of one camera: the queue's filter lists CH-01 only and finds all
    three files, a queue row and the workspace of the misread file say CH-01 (the workspace adds what was read),
    and the first file's gap note, a gap only because the middle file was misread, is gone."""
    case, shas = cam_case
    ivan = TestClient(create_app(case))
    login(ivan, "ivan")
    before = ivan.get(f"/items/{shas[0]}").text
    assert "Recording missing on CH-01 after this file: 600 s" in before
    assert {r["sha256"] for r in ivan.get("/api/queue", params={"camera": "CH-01"}).json()} == \
        {shas[0], shas[2]}
    rename_camera(case, "ivan", "CH-OT", "CH-01", "0 read as O")

    rows = ivan.get("/api/queue", params={"camera": "CH-01"}).json()
    assert {r["sha256"] for r in rows} == set(shas) and {r["camera"] for r in rows} == {"CH-01"}
    assert ivan.get("/api/queue", params={"camera": "CH-OT"}).json() == []  # corrected away
    queue = ivan.get("/").text
    assert '<option >CH-01</option>' in queue and '>CH-OT</option>' not in queue
    middle = ivan.get(f"/items/{shas[1]}").text
    assert "CH-01" in middle and "read as</span>" not in middle and "(read as CH-OT)" in middle
    assert "Recording missing" not in ivan.get(f"/items/{shas[0]}").text
    assert ivan.get(f"/api/items/{shas[1]}/strip").json()["camera"] == "CH-01"

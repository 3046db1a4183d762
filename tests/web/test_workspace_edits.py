"""Edits inside a file (analyze.edits) in the review app's workspace: a clip whose burnt-in clock jumps a minute
shows the jump on the page (its moment and, in the report's wording, what was seen) and in the strip's data as a
mark at its position in the file."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import Provenance
from custodes.timeline.build import read_recordings
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.analyze.test_edits import S, clip, cut_minute
from tests.web.conftest import PASSWORD, login


@pytest.fixture(scope="module")
def cut_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws-edits")
    (root / "drive").mkdir()
    clip(root / "drive" / "cut.mp4", cut_minute, 60, created=S)
    clip(root / "drive" / "clean.mp4", lambda t: S + timedelta(minutes=5, seconds=int(t)), 40, camera="CAM-09",
         created=S + timedelta(minutes=5))
    case = Case.init(root / "case", "tester", title="edits")
    Ingestor(case, "tester").run([root / "drive"])
    read_recordings(case)
    add_user(case, "vera", "viewer", PASSWORD, "tester")
    with case.sessions() as s:
        shas = {p.original_name: p.sha256 for p in s.scalars(select(Provenance))}
    return case, shas


@pytest.mark.slow
def test_clock_jump_shows_in_the_workspace(cut_case):
    case, shas = cut_case
    c = TestClient(create_app(case), client=("127.0.0.1", 43000))
    assert login(c, "vera").status_code == 303
    strip = c.get(f"/api/items/{shas['cut.mp4']}/strip").json()
    (jump,) = strip["edits"]
    assert jump["kind"] == "clock_jump_forward" and jump["t"] == pytest.approx(3.0)
    # the report's wording: the moment on the camera clock and in the file, what it is, what was seen
    start = datetime.fromisoformat(strip["clock_start"])
    assert jump["at"] == f"{start + timedelta(seconds=3):%H:%M:%S} (0:03)"
    assert jump["what"] == "the on-screen clock jumps forward"
    assert "02:00:02" in jump["seen"] and "02:01:03" in jump["seen"]
    page = c.get(f"/items/{shas['cut.mp4']}").text
    assert 'id="edit-note"' in page and "the on-screen clock jumps forward" in page
    assert 'class="seek edit" data-t="3.0"' in page and "02:01:03" in page
    # an unbroken clock: nothing on the page, nothing on the strip
    assert c.get(f"/api/items/{shas['clean.mp4']}/strip").json()["edits"] == []
    assert 'id="edit-note"' not in c.get(f"/items/{shas['clean.mp4']}").text


@pytest.mark.slow
def test_the_edit_note_in_russian(cut_case):
    """The same jump on a Russian user's page: what it is and what was seen, in Russian, the times kept."""
    case, shas = cut_case
    add_user(case, "lena", "viewer", PASSWORD, "tester")
    c = TestClient(create_app(case), client=("127.0.0.1", 43001))
    assert login(c, "lena").status_code == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/").text).group(1)
    assert c.post("/api/prefs", json={"lang": "ru"}, headers={"x-csrf-token": csrf}).status_code == 200
    page = c.get(f"/items/{shas['cut.mp4']}").text
    note = page[page.index('id="edit-note"'):page.index("</div>", page.index('id="edit-note"'))]
    assert "Признаки монтажа внутри файла:" in note and "часы на экране скачут вперёд" in note
    assert "(часы на кадре скачут с " in note and "следующий прочитанный кадр): не хватает около 60 с времени)" in note
    assert "02:00:02" in note and "02:01:03" in note
    assert "jumps" not in note and "burnt-in" not in note and "missing" not in note

"""Search finds reviewers' annotations by their pseudonyms as well as their labels and notes, and names each hit's
file as people read it, with the moment in the file and on the camera's clock, never by its SHA-256. A small
real case (a synthetic clip with a burnt-in clock, ingested, its overlay read), annotations saved through the
review app's own API and form."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from custodes.media.synth import ClipSpec
from custodes.timeline.build import read_recordings
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, one_clip_case, session_csrf


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    root = tmp_path_factory.mktemp("search-ann")
    case, sha = one_clip_case(root, "CAM04_corridor.mp4", ClipSpec("CAM-04", datetime(2026, 3, 2, 14, 0, 0), 8, fps=8,
                                                                   size=(320, 180), seed=4), "search")
    read_recordings(case)
    add_user(case, "rita", "reviewer", PASSWORD, "tester")
    c = TestClient(create_app(case), client=("127.0.0.1", 45000))
    assert login(c, "rita").status_code == 303
    c.headers["X-CSRF-Token"] = session_csrf(c)
    r = c.post(f"/api/items/{sha}/annotations", json={
        "label": "beating", "start_s": "3.0", "end_s": "5.0", "note": "удары дубинкой",
        "people": [{"pseudonym": "Заключённый А", "role": "victim"},
                   {"pseudonym": "Охранник 2", "role": "perpetrator"}]})
    assert r.status_code == 201, r.text
    r = c.post(f"/items/{sha}/annotations", follow_redirects=False, data={
        "csrf": c.headers["X-CSRF-Token"], "label": "threats", "start_s": "6", "end_s": "7", "note": "shouting",
        "person": "Prisoner B", "person_role": "witness"})
    assert r.status_code == 303, r.text
    return c, sha


def hits(c: TestClient, q: str) -> list[str]:
    page = c.get("/search", params={"q": q}).text
    return re.findall(r'<li class="hit-annotation">(.*?)</li>', page, flags=re.S)


def test_a_pseudonym_finds_its_annotation_named_by_file_and_time(searched):
    c, sha = searched
    (hit,) = hits(c, "Заключённый А")
    assert f'href="/items/{sha}?t=3.0">CAM04_corridor.mp4</a> at 3.0 s (2026-03-02 14:00:03)' in hit
    assert "victim: Заключённый А" in hit and "удары дубинкой" in hit and "by rita" in hit
    assert sha[:12] not in re.sub(r'href="[^"]*"', "", hit)  # the digest only in the link, never as its text
    assert len(hits(c, "заключенный")) == 1  # any case, ё typed as е
    assert len(hits(c, "охранник 2")) == 1 and len(hits(c, "дубинк")) == 1
    (form_hit,) = hits(c, "prisoner b")  # a pseudonym typed into the form's person field
    assert "witness: Prisoner B" in form_hit and "at 6.0 s" in form_hit
    assert hits(c, "Заключённый Б") == [] and hits(c, "prisoner a") == []


def test_search_for_no_words_says_so(searched):
    c, _ = searched
    page = c.get("/search", params={"q": "!!!"}).text
    assert '<p class="error">the query has no words</p>' in page

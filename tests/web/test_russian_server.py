"""Sentences the server composes reach a Russian user in Russian: why a segment is in the queue, the API's
refusals the workspace shows in its status line (its numbers, names and labels kept), the form's refusals, and
an English user still gets the English. A small real case (a synthetic clip ingested, its segment stored the way
triage stores one), a real app under TestClient."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.media.synth import ClipSpec
from custodes.store.case import Case
from custodes.store.db import Segment
from custodes.triage.runner import store_result
from custodes.triage.score import SegmentRow, VideoResult
from custodes.web.app import create_app
from custodes.web.i18n import RU, SENTENCES, lookup
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, one_clip_case, session_csrf

REASONS = [{"signal": "p_visual", "value": 0.97, "text": "motion pattern like fights in training data (p=0.97)"},
           {"signal": "audio:screaming", "value": 0.7, "text": "audio event: screaming (0.70)"},
           {"signal": "pose_down", "value": 4.0, "text": "person down for 4 s"}]


@pytest.fixture(scope="module")
def ru_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("ru-server")
    case, sha = one_clip_case(root, "cam03.mp4", ClipSpec("CAM-03", datetime(2026, 3, 1, 12, 0, 0), 8, fps=8,
                                                          size=(320, 180), seed=3), "ru")
    store_result(case, sha, VideoResult(ok=True, duration_s=8.0, segments=[
        SegmentRow(start_s=2.0, end_s=5.0, score=0.9, reasons=REASONS)]))
    for name, role in (("lena", "reviewer"), ("rita", "reviewer")):
        add_user(case, name, role, PASSWORD, "tester")
    with case.sessions() as s:
        (seg,) = s.scalars(select(Segment)).all()
        sid = seg.id
    return case, sha, sid


def client_for(case: Case, user: str, lang: str) -> TestClient:
    c = TestClient(create_app(case), client=("127.0.0.1", 44000))
    assert login(c, user).status_code == 303
    c.headers["X-CSRF-Token"] = session_csrf(c)
    assert c.post("/api/prefs", json={"lang": lang}).status_code == 200
    return c


def test_queue_reasons_in_russian(ru_case):
    case, sha, _ = ru_case
    lena = client_for(case, "lena", "ru")
    assert lena.get("/api/queue").json()[0]["reasons"] == [  # the API keeps triage's English wording
        "movement strongly like a fight", "sounds like screaming", "a person on the floor for 4 s"]
    for page in (lena.get("/").text, lena.get(f"/items/{sha}").text):
        assert "движение очень похоже на драку; по звуку похоже на крик; человек на полу 4 с" in page
        assert "like a fight" not in page and "sounds like" not in page and "on the floor" not in page
    english = client_for(case, "rita", "en").get("/").text
    assert "movement strongly like a fight; sounds like screaming; a person on the floor for 4 s" in english


def test_refused_api_calls_in_russian(ru_case):
    case, sha, sid = ru_case
    lena = client_for(case, "lena", "ru")
    body = {"label": "beating", "start_s": "3.0", "end_s": "4.0", "note": "удары по голове"}
    made = lena.post(f"/api/items/{sha}/annotations", json=body)
    assert made.status_code == 201, made.text
    n = made.json()["annotation"]["id"]
    # x over a stretch she annotated: the 409 the status line shows, its number, label and name kept
    r = lena.post(f"/api/segments/{sid}/review", json={"state": "nothing of concern"})
    assert r.status_code == 409
    said = r.json()["detail"]
    assert said.startswith(f"В этом фрагменте есть разметка №{n} (beating, автор: lena): "
                           "это не «ничего тревожного».")
    assert "it is not" not in said and "Press n" not in said
    # the same annotation twice, and one without a CSRF token
    again = lena.post(f"/api/items/{sha}/annotations", json=body)
    assert again.status_code == 409
    assert again.json()["detail"] == f"Эта разметка уже сохранена под №{n}: ничего не добавлено."
    forged = lena.post(f"/api/items/{sha}/annotations", json=body, headers={"X-CSRF-Token": ""})
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    assert "проверочного токена" in forged.json()["detail"] and "bad or missing" not in forged.json()["detail"]
    late = lena.post(f"/api/items/{sha}/annotations", json={**body, "start_s": "99", "end_s": "99.5"})
    assert late.status_code == 422 and late.json()["detail"].startswith("Время начала должно быть от 0 до ")
    assert "(получено: '99')" in late.json()["detail"]
    # the same refusals in English for an English user
    rita = client_for(case, "rita", "en")
    r = rita.post(f"/api/segments/{sid}/review", json={"state": "nothing of concern"})
    assert r.status_code == 409
    assert r.json()["detail"].startswith(f"This segment holds annotation #{n} (beating, by lena)")
    forged = rita.post(f"/api/items/{sha}/annotations", json=body, headers={"X-CSRF-Token": ""})
    assert forged.json()["detail"] == "bad or missing CSRF token"


def test_a_refused_form_in_russian(ru_case):
    case, sha, _ = ru_case
    lena = client_for(case, "lena", "ru")
    page = lena.post(f"/items/{sha}/annotations", headers={"accept": "text/html"}, data={
        "csrf": lena.headers["X-CSRF-Token"], "label": "threats", "start_s": "5", "end_s": "2"})
    assert page.status_code == 422
    assert "Время конца раньше времени начала: поменяйте их местами." in page.text
    assert "swap them" not in page.text


def test_every_sentence_template_has_its_russian_placeholders():
    """A Russian template uses only the names its English one has (else showing it would raise)."""
    for en, ru in SENTENCES.items():
        assert set(re.findall(r"\{(\w+)\}", ru)) <= set(re.findall(r"\{(\w+)\}", en)), en
        assert en not in RU
    assert lookup("ru", "Recorded: second review wanted.") == "Записано: нужен второй просмотр."
    assert lookup("en", "Recorded: second review wanted.") == "Recorded: second review wanted."

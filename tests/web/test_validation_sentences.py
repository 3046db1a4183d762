"""A request the review app cannot read into its parameters gets one plain sentence naming the value, what it
must be and what came, in the user's language: for a script as JSON, for a browser as a page, for a form post,
never the validator's wording ("Input should be a valid number") or its data structure."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from custodes.media.synth import ClipSpec
from custodes.store.case import Case
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, one_clip_case, session_csrf

HTML = {"accept": "text/html"}
INTERNALS = ("Input should", "valid number", "valid integer", "'loc'", "type_error", "pydantic", "Field required")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    case, sha = one_clip_case(root, "cam05.mp4", ClipSpec("CAM-05", datetime(2026, 3, 3, 9, 0, 0), 4, fps=8,
                                                          size=(320, 180), seed=5), "validation")
    for name in ("rita", "lena"):
        add_user(case, name, "reviewer", PASSWORD, "tester")
    return case, sha


def client_for(case: Case, user: str, lang: str) -> TestClient:
    c = TestClient(create_app(case), client=("127.0.0.1", 46000))
    assert login(c, user).status_code == 303
    c.headers["X-CSRF-Token"] = session_csrf(c)
    assert c.post("/api/prefs", json={"lang": lang}).status_code == 200
    return c


def plain(text: str) -> bool:
    return not any(x in text for x in INTERNALS)


def test_a_wrong_typed_value_is_one_sentence_in_english(small):
    case, _ = small
    c = client_for(case, "rita", "en")
    r = c.get("/api/queue", params={"min_score": "high"})
    assert r.status_code == 422 and r.json() == {
        "detail": "The value of “min_score” must be a number, like 0.5 (got 'high')."}
    r = c.get("/api/queue", params={"limit": "lots"})
    assert r.json()["detail"] == "The value of “limit” must be a whole number, like 3 (got 'lots')."
    r = c.get("/api/queue", params={"limit": "0"})
    assert r.json()["detail"] == "The value of “limit” must be at least 1 (got '0')."
    r = c.get("/api/queue/neighbour", params={"segment": "1", "direction": "sideways"})
    assert r.json()["detail"] == "The value of “direction” must be one of: next, previous (got 'sideways')."
    r = c.post("/api/prefs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"] == "The request's body is not valid JSON: send a JSON object."
    page = c.get("/", params={"min_score": "high"}, headers=HTML)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "The value of “min_score” must be a number, like 0.5 (got &#39;high&#39;)." in page.text
    assert plain(page.text) and plain(r.text)


def test_a_wrong_typed_value_in_russian_for_apis_pages_and_forms(small):
    case, sha = small
    c = client_for(case, "lena", "ru")
    r = c.post("/api/segments/first/review", json={"state": "nothing of concern"})
    assert r.status_code == 422
    assert r.json()["detail"] == "Значение «segment_id» должно быть целым числом, например 3 (получено: 'first')."
    page = c.get("/", params={"min_score": "high"}, headers=HTML)
    assert page.status_code == 422
    assert "Значение «min_score» должно быть числом, например 0.5 (получено: &#39;high&#39;)." in page.text
    assert "must be a number" not in page.text and plain(page.text)
    # a form post without one of its fields, and one without its CSRF token
    form = c.post(f"/items/{sha}/annotations", headers=HTML,
                  data={"csrf": c.headers["X-CSRF-Token"], "start_s": "1", "end_s": "2"})
    assert form.status_code == 422
    assert "Не указано значение «label»: заполните его и отправьте снова." in form.text and plain(form.text)
    form = c.post("/settings", headers=HTML, data={"lang": "ru"})
    assert form.status_code == 422 and "В форме нет проверочного токена (CSRF)" in form.text
    assert "is missing" not in form.text and plain(form.text)

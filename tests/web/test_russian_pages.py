"""Issue 22: a user who chose Russian sees the review app's pages in Russian, text of the templates included.

A real case (tests/web/conftest.py's ``web_case``: the demo drive ingested and triaged, a complaint register
imported), a real app under TestClient; the Russian user is one of this module's own, so the language it sets
never leaks into the other tests' users of the same case."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, session_csrf

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def ru(web_case):
    case, truth = web_case
    add_user(case, "nadia", "investigator", PASSWORD, "tester")
    c = TestClient(create_app(case), client=("127.0.0.1", 50022))
    assert login(c, "nadia").status_code == 303
    r = c.post("/api/prefs", json={"lang": "ru"}, headers={"x-csrf-token": session_csrf(c)})
    assert r.status_code == 200
    return c, truth


def test_queue_and_header_in_russian(ru):
    c, _ = ru
    page = c.get("/").text
    assert '<html lang="ru">' in page
    assert "(следователь)" in page and "(investigator)" not in page
    assert 'title="бережный просмотр и другие настройки"' in page and "safe viewing and other settings" not in page
    assert 'title="клавиши (?)"' in page and "keyboard shortcuts (?)" not in page
    assert "Сделайте перерыв" in page and "Take a break" not in page
    assert "выбрать метку: 1 beating (избиение)" in page and "choose a label:" not in page
    assert "<dt>Ctrl+Enter или s</dt>" in page and "Ctrl+Enter, or s" not in page
    assert "<dt>удерживать r</dt>" in page and "hold r" not in page
    assert "страница 1" in page and not re.search(r"\bpage 1\b", page)
    assert "next →" not in page and "← previous" not in page
    empty = c.get("/", params={"camera": "NO-SUCH-CAMERA"}).text
    assert "Очередь пуста. Запустите <code>custodes triage</code> для этого дела." in empty
    assert "Nothing in the queue" not in empty


def test_item_page_in_russian(ru):
    c, truth = ru
    rows = c.get("/api/queue", params={"camera": "CAM-02", "limit": 1000}).json()
    before_gap = [r for r in rows if r["clock"] and r["clock"] < truth.gap["start"].replace("T", " ")]
    assert before_gap
    page = c.get(f"/items/{before_gap[0]['sha256']}").text
    assert "Нет записи с камеры CAM-02 после этого файла:" in page and "Recording missing on" not in page
    assert "показано без защиты, пока удерживаете" in page and "revealed while held" not in page
    assert 'title="Пробел"' in page and 'title="Space"' not in page
    assert 'title="c: согласиться с предыдущим просмотром"' in page and "agree with the review" not in page
    assert 'title="вся запись: щёлкните, чтобы перейти"' in page and "click to go there" not in page
    assert 'placeholder="с или чч:мм:сс"' in page and "hh:mm:ss" not in page
    assert '<span class="score">оценка ' in page and '<span class="score">score' not in page


def test_settings_search_complaints_redactions_timeline_in_russian(ru):
    c, _ = ru
    settings = c.get("/settings").text
    assert "Каждый параметр по отдельности" in settings and "Each on its own" not in settings
    search = c.get("/search", params={"q": "corridor"}).text
    assert "<h1>Поиск</h1>" in search and "Найдено: " in search and "hit(s)" not in search
    assert 'placeholder="слова в расшифровках' in search and "words in transcripts" not in search
    complaints = c.get("/complaints").text
    assert "<h1>Реестр жалоб</h1>" in complaints and "Complaints register" not in complaints
    assert "<th>записи за это время</th>" in complaints and "<th>covered by</th>" not in complaints
    assert "K-7" in complaints  # the register's own text stays as it was imported
    assert "запись отсутствует во время, указанное в жалобе" in complaints
    assert "recording missing during the complaint window" not in complaints
    redactions = c.get("/redactions").text
    assert "<h1>Обезличенные копии</h1>" in redactions and "Redacted copies" not in redactions
    assert "Обезличенных копий пока нет." in redactions and "No redacted copies yet." not in redactions
    timeline = c.get("/timeline").text
    assert "<h1>Хронология и пропуски</h1>" in timeline and "Gaps: time with no recording" not in timeline
    docs = c.get("/api/docs").text
    assert "<th>что делает</th>" in docs and "Every endpoint needs" not in docs


def test_error_page_in_russian_and_in_english(ru, client):
    c, _ = ru
    r = c.get("/items/" + "0" * 64, headers=HTML)
    assert r.status_code == 404
    assert "<h1>Не найдено</h1>" in r.text and "Not found" not in r.text
    assert "В этом деле нет такой страницы" in r.text and "There is no such page" not in r.text
    login(client, "rita")  # an English user's error page keeps its English
    r = client.get("/items/" + "0" * 64, headers=HTML)
    assert r.status_code == 404 and "<h1>Not found</h1>" in r.text and "There is no such page" in r.text


def test_login_page_in_both_languages(web_case):
    case, _ = web_case
    page = TestClient(create_app(case), client=("127.0.0.1", 50023)).get("/login").text
    assert "User name" in page and "Имя пользователя" in page
    assert "Password" in page and "Пароль" in page and "Log in" in page and "Войти" in page

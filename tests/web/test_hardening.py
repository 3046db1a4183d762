"""Hardening of the review app (issue 21 items 9 and 16, issue 20's web sessions): bad numbers, raced login
throttling, X-Forwarded-For, session lifetime and Secure cookies, who may edit whose annotation, forged
session rows. A small case of its own (one short clip, one text file), on SQLite or PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

import custodes.web.app as webapp
from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from custodes.store.db import Annotation, LoginAttempt, MediaProbe, User, WebSession
from custodes.store.ledger import LedgerError
from custodes.web.app import SESSION_COOKIE, create_app
from custodes.web.background import background_server
from custodes.web.sessions import SECRET_FILE
from custodes.web.users import add_user
from tests.conftest import run_cli
from tests.web.conftest import PASSWORD, login, session_csrf


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    drive = root / "drive"
    drive.mkdir()
    write_clip(drive / "CAM07_short.mp4", ClipSpec("CAM-07", datetime(2026, 1, 2, 3, 4, 5), 6, fps=10,
                                                   size=(320, 180)))
    (drive / "notes.txt").write_text("a document, not a video")
    case = Case.init(root / "case", "tester", title="hardening")
    Ingestor(case, "tester").run([drive])
    for name, role in (("rita", "reviewer"), ("otto", "reviewer"), ("ivan", "investigator"), ("mallory", "reviewer")):
        add_user(case, name, role, PASSWORD, "tester")
    with case.sessions() as s:
        probes = {m.status: m.sha256 for m in s.scalars(select(MediaProbe))}
    return case, probes["ok"], probes["not_media"]


@pytest.fixture(autouse=True)
def no_throttle(hard):
    """Every test starts with no failed logins on record (they are counted per address, and all come from
    the same one)."""
    case, _, _ = hard
    with case.sessions() as s:
        s.execute(delete(LoginAttempt))
        s.commit()


def client_for(case: Case, user: str, **kw) -> TestClient:
    c = TestClient(create_app(case, **kw), client=("127.0.0.1", 40000))
    assert login(c, user).status_code == 303
    return c


def is_sentence(detail: object) -> bool:
    return isinstance(detail, str) and detail[:1].isupper() and detail.rstrip().endswith(".") \
        and "Traceback" not in detail


def annotate(c: TestClient, sha: str, **fields):
    data = {"label": "beating", "start_s": "1", "end_s": "2", "note": "", **fields, "csrf": session_csrf(c)}
    return c.post(f"/items/{sha}/annotations", data=data, follow_redirects=False)


def annotate_events(case: Case, actor: str) -> list[dict]:
    return [e for e in case.ledger.entries() if e["action"] == "annotate" and e["actor"] == actor]


def annotations(case: Case, sha: str) -> list[Annotation]:
    with case.sessions() as s:
        return list(s.scalars(select(Annotation).where(Annotation.sha256 == sha).order_by(Annotation.id)))


# -- 1. non-finite and out-of-range times --

def test_non_finite_and_out_of_range_times_are_refused_and_never_reach_the_ledger(hard):
    case, video, _ = hard
    c = client_for(case, "rita")
    before_rows, before_ledger = len(annotations(case, video)), case.ledger.path.read_bytes()
    before_events = len(annotate_events(case, "rita"))
    for start, end in (("inf", "inf"), ("nan", "1"), ("1", "nan"), ("-inf", "1"), ("1e308", "1e308"),
                       ("1e400", "1e400"), ("-1", "2"), ("1", "90000"), ("1", "8"), ("twelve", "2"), ("4", "2")):
        r = annotate(c, video, start_s=start, end_s=end, note="typed by hand")
        assert r.status_code == 422, (start, end, r.text)
        assert is_sentence(r.json()["detail"]), r.json()
    assert "between 0 and 7.0 s" in annotate(c, video, start_s="inf", end_s="inf").json()["detail"]
    assert len(annotations(case, video)) == before_rows
    after = case.ledger.path.read_bytes()
    def refuse(constant: str) -> None:  # NaN / Infinity as JSON values, not as letters inside a signature
        raise AssertionError(f"{constant} in the ledger")

    for line in after.splitlines():
        json.loads(line, parse_constant=refuse)
    assert len(annotate_events(case, "rita")) == before_events
    assert after.startswith(before_ledger)
    # a browser gets the form again with the sentence and everything that was typed, escaped
    r = c.post(f"/items/{video}/annotations", headers={"Accept": "text/html"}, data={
        "label": "threats", "start_s": "inf", "end_s": "inf", "note": "long note <b>typed</b> with care",
        "person": "P-4", "person_role": "witness", "csrf": session_csrf(c)})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert 'id="annotation-error"' in r.text and "The start time must be between 0 and" in r.text
    assert ">long note &lt;b&gt;typed&lt;/b&gt; with care</textarea>" in r.text
    assert 'value="inf"' in r.text and 'value="P-4"' in r.text
    assert "<option selected>threats</option>" in r.text and "<option selected>witness</option>" in r.text
    # a good one still goes in, with finite numbers in its signed event
    assert annotate(c, video, start_s="1.5", end_s="6.2", note="fine").status_code == 303
    event = annotate_events(case, "rita")[-1]
    assert event["details"]["start_s"] == 1.5 and event["details"]["end_s"] == 6.2


def test_the_ledger_refuses_non_finite_numbers(tmp_path):
    case = Case.init(tmp_path / "case", "tester")
    before = case.ledger.path.read_bytes()
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(LedgerError, match="only finite numbers"):
            case.ledger.append("tester", "annotate", None, {"start_s": bad})
        with pytest.raises(LedgerError, match="cannot sign the 'x' event"):
            case.ledger.append_many("tester", [("ok", None, {"a": 1}), ("x", None, {"nested": [1, bad]})])
    assert case.ledger.path.read_bytes() == before  # nothing written, not even the good event of the batch
    assert case.ledger.append("tester", "fine", None, {"t": 1e308})["details"]["t"] == 1e308


# -- 2. oversized numbers, a thumbnail of a document, an oversized CSV field --

def test_oversized_numbers_and_a_document_thumbnail_get_a_clear_4xx(hard):
    case, video, document = hard
    c = client_for(case, "rita")
    for sup in ("99999999999999999999", "2147483648", "²", "-1", "1.5", "abc"):
        r = annotate(c, video, supersedes=sup, note="edit")
        assert r.status_code == 422, (sup, r.text)
        assert is_sentence(r.json()["detail"]) and "Edits annotation #" in r.json()["detail"]
    r = annotate(c, video, supersedes="2147483647")
    assert r.status_code == 422 and "no annotation #2147483647" in r.json()["detail"]
    for offset in ("99999999999999999999", "1e308", "-1", "2147483648"):
        r = c.get("/api/queue", params={"offset": offset})
        assert r.status_code == 422, (offset, r.text)
        assert is_sentence(r.json()["detail"]) and "offset" in r.json()["detail"]
    assert c.get("/api/queue", params={"offset": "2147483647"}).json() == []
    assert c.get("/", params={"page": "99999999999999999999"}).status_code == 422
    r = c.get(f"/thumbs/{document}.jpg")
    assert r.status_code == 404 and r.json()["detail"] == "This item is not a video: there is no picture to show."
    assert c.get(f"/thumbs/{document}.jpg", params={"sheet": "true"}).status_code == 404
    for t in ("nan", "inf", "1e308", "-1"):
        r = c.get(f"/thumbs/{video}.jpg", params={"t": t})
        assert r.status_code == 422 and is_sentence(r.json()["detail"])
    assert c.get(f"/thumbs/{video}.jpg", params={"t": "1"}).content[:3] == b"\xff\xd8\xff"
    assert c.get(f"/items/{video}", params={"t": "inf"}).status_code == 200


def test_complaints_csv_with_an_oversized_field_is_one_sentence(hard, tmp_path):
    case, _, _ = hard
    register = tmp_path / "register.csv"
    register.write_text("ref,start,end,unit,person,text\n"
                        f"K-1,2026-01-02 03:04,2026-01-02 03:05,cell 1,P-1,{'x' * 131073}\n")
    proc = run_cli("complaints", "import", str(case.root), str(register))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "line 2: not a readable CSV row (field larger than field limit (131072))" in out
    assert "Traceback" not in out
    # a stray quote mark runs a field on to the end of the file: the same sentence
    register.write_text('ref,start,end,text\nK-2,2026-01-02 03:04,2026-01-02 03:05,"unclosed\n' + "y" * 140000)
    proc = run_cli("complaints", "import", str(case.root), str(register))
    assert proc.returncode == 1 and "line 2: not a readable CSV row" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [e for e in case.ledger.entries() if e["action"].startswith("complaints")]


# -- 3. the login throttle under concurrent requests --

def test_concurrent_logins_check_at_most_the_limit_of_passwords(hard, monkeypatch):
    case, _, _ = hard
    checks: list[str] = []
    real_check = webapp.check_password

    def counted(user, password):
        checks.append(user.name)
        time.sleep(0.05)  # a slow hash widens the window a racing request would need
        return real_check(user, password)

    monkeypatch.setattr(webapp, "check_password", counted)
    n = 18
    with background_server(create_app(case)) as base:
        clients = [httpx.Client(base_url=base) for _ in range(n)]
        tokens = [re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1) for c in clients]
        barrier = threading.Barrier(n)
        codes: list[int] = []

        def attempt(c: httpx.Client, csrf: str) -> None:
            barrier.wait()
            codes.append(c.post("/login", data={"username": "mallory", "password": "wrong password!",
                                                "csrf": csrf}).status_code)

        threads = [threading.Thread(target=attempt, args=(c, t)) for c, t in zip(clients, tokens, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for c in clients:
            c.close()
    assert len(codes) == n
    assert len(checks) <= webapp.THROTTLE_MAX_FAILURES, checks
    assert codes.count(429) == n - len(checks) and codes.count(303) == len(checks)
    with case.sessions() as s:
        assert len(list(s.scalars(select(LoginAttempt).where(LoginAttempt.name == "mallory")))) == len(checks)


# -- 4. X-Forwarded-For --

def login_events(case: Case, user: str) -> list[dict]:
    return [e for e in case.ledger.entries() if e["action"] == "login" and e["actor"] == user]


def http_login(base: str, user: str, headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=base, headers=headers or {}) as c:
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        return c.post("/login", data={"username": user, "password": PASSWORD, "csrf": csrf})


def test_forwarded_for_is_believed_only_from_a_named_proxy(hard):
    case, _, _ = hard
    spoof = {"X-Forwarded-For": "203.0.113.7"}
    with background_server(create_app(case)) as base:  # what `custodes serve` does without --trusted-proxy
        assert http_login(base, "otto", spoof).status_code == 303
    assert login_events(case, "otto")[-1]["details"]["ip"] == "127.0.0.1"  # the socket peer, not the header
    with background_server(create_app(case), trusted_proxy="127.0.0.1") as base:
        assert http_login(base, "otto", spoof).status_code == 303
    assert login_events(case, "otto")[-1]["details"]["ip"] == "203.0.113.7"
    with case.sessions() as s:
        assert {a.ip for a in s.scalars(select(LoginAttempt).where(LoginAttempt.name == "otto"))} == \
            {"127.0.0.1", "203.0.113.7"}


def test_serve_options_for_a_deployment_behind_tls(hard):
    """The real `custodes serve` with --trusted-proxy and --secure-cookies."""
    case, _, _ = hard
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "custodes", "serve", str(case.root), "--port", str(port),
                             "--trusted-proxy", "127.0.0.1", "--secure-cookies", "--session-hours", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                page = httpx.get(base + "/login")
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        assert "secure" in page.headers["set-cookie"].lower()
        # the proxy speaks HTTPS to the browser and HTTP to us: send the Secure cookie by hand
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = httpx.post(base + "/login", data={"username": "ivan", "password": PASSWORD, "csrf": csrf},
                       headers={"X-Forwarded-For": "198.51.100.3", "Cookie": f"custodes_login_csrf={csrf}"})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "max-age=7200" in cookie
        assert login_events(case, "ivan")[-1]["details"]["ip"] == "198.51.100.3"
    finally:
        proc.terminate()
        proc.wait(20)


# -- 5. session lifetime and Secure cookies --

def test_sessions_end_at_their_absolute_lifetime_however_active(hard, monkeypatch):
    case, _, _ = hard
    c = client_for(case, "rita", session_lifetime=timedelta(hours=2))
    assert c.get("/api/queue").status_code == 200
    real_now = webapp.now
    for hours, status in ((1, 200), (1.9, 200), (2.1, 401)):  # active all along: never 8 h idle
        monkeypatch.setattr(webapp, "now", lambda h=hours: real_now() + timedelta(hours=h))
        assert c.get("/api/queue").status_code == status, hours
    monkeypatch.setattr(webapp, "now", real_now)
    # a database writer who refreshes the row gains nothing: the lifetime runs from the signed login
    with case.sessions() as s:
        for row in s.scalars(select(WebSession)):
            row.created_at = row.last_seen = real_now() + timedelta(hours=3)
        s.commit()
    monkeypatch.setattr(webapp, "now", lambda: real_now() + timedelta(hours=2.5))
    assert c.get("/api/queue").status_code == 401
    monkeypatch.setattr(webapp, "now", real_now)
    default = TestClient(create_app(case), client=("127.0.0.1", 1))
    cookie = login(default, "rita").headers["set-cookie"].lower()
    assert f"max-age={12 * 3600}" in cookie and "secure" not in cookie


def test_secure_cookies_behind_tls(hard):
    case, _, _ = hard
    c = TestClient(create_app(case, secure_cookies=True), base_url="https://testserver", client=("127.0.0.1", 2))
    assert "secure" in c.get("/login").headers["set-cookie"].lower()
    r = login(c, "rita")
    cookie = r.headers["set-cookie"].lower()
    assert r.status_code == 303 and "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert c.get("/api/queue").status_code == 200
    plain = TestClient(c.app, base_url="http://testserver")  # a browser sends no Secure cookie over plain HTTP
    plain.cookies.update(c.cookies)
    assert plain.get("/api/queue").status_code == 401


# -- 6. who may edit whose annotation --

def test_only_the_author_an_investigator_or_an_admin_may_edit_an_annotation(hard):
    case, video, _ = hard
    rita, otto, ivan = (client_for(case, u) for u in ("rita", "otto", "ivan"))
    assert annotate(rita, video, label="threats", start_s="2", end_s="3", note="rita's finding").status_code == 303
    first = annotations(case, video)[-1]
    r = annotate(otto, video, label="other", start_s="2", end_s="3", note="otto overrides", supersedes=str(first.id))
    assert r.status_code == 403
    assert r.json()["detail"] == (f"Annotation #{first.id} is rita's: only its author, an investigator or an admin "
                                  "may edit it; add yours as a new annotation instead.")
    assert not [a for a in annotations(case, video) if a.note == "otto overrides"]
    assert not annotate_events(case, "otto")
    r = otto.post(f"/items/{video}/annotations", headers={"Accept": "text/html"}, data={
        "label": "other", "start_s": "2", "end_s": "3", "note": "otto overrides", "supersedes": f"#{first.id}",
        "csrf": session_csrf(otto)})
    assert r.status_code == 403 and "only its author" in r.text and ">otto overrides</textarea>" in r.text
    # the author herself, and an investigator, may
    assert annotate(rita, video, label="threats", start_s="2", end_s="3.5", note="rita corrects",
                    supersedes=str(first.id)).status_code == 303
    assert annotate(ivan, video, label="threats", start_s="2", end_s="3.5", note="ivan reviews",
                    supersedes=f"#{first.id}").status_code == 303
    notes = {a.note: a for a in annotations(case, video)}
    assert notes["rita corrects"].supersedes == first.id and notes["ivan reviews"].supersedes == first.id
    assert annotate(otto, video, label="other", start_s="2", end_s="3", note="otto's own").status_code == 303


# -- 7. session rows a database writer plants --

def test_a_planted_session_row_does_not_authenticate(hard):
    case, _, _ = hard
    secret = case.root / "keys" / SECRET_FILE
    real = client_for(case, "rita")  # also makes sure the per-case secret exists
    assert secret.is_file() and stat.S_IMODE(secret.stat().st_mode) == 0o600 and len(secret.read_bytes()) == 32
    seq = login_events(case, "rita")[-1]["seq"]
    with case.sessions() as s:
        ivan = s.scalars(select(User).where(User.name == "ivan")).one()
    token = secrets.token_urlsafe(32)
    with case.sessions() as s:  # the recipe before: an unkeyed SHA-256 of a token of one's choosing
        s.add(WebSession(token_hash=hashlib.sha256(token.encode()).hexdigest(), user_id=ivan.id, csrf="x" * 43,
                         created_at=datetime.now(UTC), last_seen=datetime.now(UTC), played=[]))
        s.commit()
    for cookie in (token, f"{seq}.{token}", f"0.{token}"):
        forged = TestClient(create_app(case))
        forged.cookies.set(SESSION_COOKIE, cookie)
        assert forged.get("/api/queue").status_code == 401, cookie
    # nor does re-pointing a real session at another user: the signed login event names rita
    assert real.get("/api/queue").status_code == 200
    own = real.cookies.get(SESSION_COOKIE)
    with case.sessions() as s:
        for row in s.scalars(select(WebSession).where(WebSession.user_id != ivan.id)):
            row.user_id = ivan.id
        s.commit()
    for app_client in (real, TestClient(create_app(case))):  # this process, and one that reads the ledger afresh
        app_client.cookies.set(SESSION_COOKIE, own)
        assert app_client.get("/api/queue").status_code == 401
    # and a real cookie pointed at another login event fails too
    fresh = client_for(case, "otto")
    _, tok = fresh.cookies.get(SESSION_COOKIE).split(".", 1)
    other = TestClient(create_app(case))
    other.cookies.set(SESSION_COOKIE, f"{seq}.{tok}")
    assert other.get("/api/queue").status_code == 401
    other.cookies.set(SESSION_COOKIE, fresh.cookies.get(SESSION_COOKIE))
    assert other.get("/api/queue").status_code == 200  # a new process checks the ledger and lets it in


def test_session_secret_of_an_encrypted_case_is_derived_not_written(tmp_path):
    from custodes.web.sessions import load_secret

    case = Case.init(tmp_path / "sealed", "tester", secret="a long enough passphrase")
    first = load_secret(case)
    assert len(first) == 32 and not (case.root / "keys" / SECRET_FILE).exists()
    assert load_secret(Case(case.root, secret="a long enough passphrase")) == first
    assert load_secret(Case.init(tmp_path / "plain", "tester", db_url="sqlite")) != first

"""Security of the review app: access, CSRF, session fixation, traversal, throttling, audit."""

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from custodes.store.case import Case
from custodes.store.db import LoginAttempt, Segment
from custodes.web.app import SESSION_COOKIE, create_app
from tests.web.conftest import PASSWORD, login, session_csrf


def test_everything_needs_login(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    for path in ("/api/queue", "/media/" + "0" * 64, "/api/items/" + "0" * 64):
        assert client.get(path).status_code == 401


def test_login_logout_and_audit(web_case, client):
    case, _ = web_case
    r = login(client, "rita")
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    assert client.get("/").status_code == 200
    csrf = session_csrf(client)
    client.post("/logout", data={"csrf": csrf})
    assert client.get("/api/queue").status_code == 401
    actions = [(e["actor"], e["action"]) for e in case.ledger.entries()]
    assert ("rita", "login") in actions and ("rita", "logout") in actions


def test_security_headers(client):
    r = client.get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


def test_wrong_passwords_are_throttled(web_case):
    case, _ = web_case
    c = TestClient(create_app(case), client=("10.9.9.9", 1234))
    for _ in range(5):
        r = login(c, "otto", "wrong password!")
        assert r.status_code == 303 and "error" in r.headers["location"]
    assert login(c, "otto").status_code == 429  # even the right password, for now
    other = TestClient(create_app(case), client=("10.9.9.10", 1234))
    assert login(other, "otto").status_code == 429  # per user name too, whatever the address
    # a colleague at the same address (one office, one laptop) is not locked out by otto's typing
    assert login(TestClient(create_app(case), client=("10.9.9.9", 1235)), "rita").status_code == 303
    # but one address spraying guesses over many names is, after THROTTLE_MAX_FAILURES_PER_ADDRESS
    from custodes.web.app import THROTTLE_MAX_FAILURES_PER_ADDRESS

    sprayer = TestClient(create_app(case), client=("10.9.9.11", 1234))
    for i in range(THROTTLE_MAX_FAILURES_PER_ADDRESS):
        assert login(sprayer, f"name{i}", "wrong password!").status_code == 303
    assert login(sprayer, "vera").status_code == 429
    with case.sessions() as s:
        s.execute(delete(LoginAttempt))
        s.commit()
    assert login(other, "otto").status_code == 303


def test_unknown_user_and_login_without_csrf(client):
    r = login(client, "nobody")
    assert "error" in r.headers["location"]
    r = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403


def test_session_fixation_is_impossible(web_case, client):
    client.cookies.set(SESSION_COOKIE, "attacker-chosen-token")
    r = login(client, "rita")
    issued = r.headers["set-cookie"].split(SESSION_COOKIE + "=", 1)[1].split(";", 1)[0]
    assert issued and issued != "attacker-chosen-token"  # a fresh token, never the planted one
    planted = TestClient(create_app(web_case[0]))
    planted.cookies.set(SESSION_COOKIE, "attacker-chosen-token")
    assert planted.get("/api/queue").status_code == 401


def test_csrf_is_required_for_annotations(web_case, client):
    case, _ = web_case
    login(client, "rita")
    sha = client.get("/api/queue").json()[0]["sha256"]
    data = {"label": "beating", "start_s": "1", "end_s": "2", "note": "x"}
    assert client.post(f"/items/{sha}/annotations", data={**data, "csrf": "nope"}).status_code == 403
    assert client.post(f"/items/{sha}/annotations", data=data).status_code == 422  # missing token


def test_forged_ids_and_paths_get_nothing(web_case, client, tmp_path):
    case, _ = web_case
    login(client, "rita")
    other = Case.init(tmp_path / "other", "someone")  # another case's object: never served here
    obj = other.store.put_stream(__import__("io").BytesIO(b"another case's secret footage"))
    for sha in (obj.sha256, "../../custodes.db", "..%2F..%2Fcustodes.db", "A" * 64, "0" * 63):
        assert client.get(f"/media/{sha}").status_code == 404
        assert client.get(f"/api/items/{sha}").status_code == 404
    assert client.get("/static/../../store/db.py").status_code == 404
    assert client.get("/reports/../custodes.db").status_code == 404


def test_viewer_cannot_annotate(web_case):
    case, _ = web_case
    c = TestClient(create_app(case), client=("127.0.0.2", 1))
    login(c, "vera")
    sha = c.get("/api/queue").json()[0]["sha256"]
    r = c.post(f"/items/{sha}/annotations", data={"label": "beating", "start_s": "1", "end_s": "2",
                                                   "csrf": session_csrf(c)})
    assert r.status_code == 403


def test_range_requests_and_playback_audit(web_case, client):
    case, _ = web_case
    login(client, "rita")
    sha = client.get("/api/queue").json()[0]["sha256"]
    data = case.store.path_for(sha).read_bytes()
    r = client.get(f"/media/{sha}", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = client.get(f"/media/{sha}", headers={"Range": "bytes=-50"})
    assert r.content == data[-50:]
    assert client.get(f"/media/{sha}", headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    full = client.get(f"/media/{sha}")
    assert full.status_code == 200 and hashlib.sha256(full.content).hexdigest() == sha
    plays = [e for e in case.ledger.entries() if e["action"] == "playback" and e["subject"] == sha
             and e["actor"] == "rita"]
    assert len(plays) >= 1


def test_concurrent_edits_keep_both(web_case):
    case, _ = web_case
    a = TestClient(create_app(case), client=("127.0.0.3", 1))
    b = TestClient(create_app(case), client=("127.0.0.4", 1))
    login(a, "rita")
    login(b, "ivan")  # an investigator may edit a reviewer's annotation (tests/web/test_hardening.py)
    sha = a.get("/api/queue").json()[0]["sha256"]
    base = {"label": "beating", "start_s": "3", "end_s": "9", "note": "first"}
    a.post(f"/items/{sha}/annotations", data={**base, "csrf": session_csrf(a)})
    first = a.get(f"/api/items/{sha}").json()["annotations"][-1]["id"]
    # both edit the same annotation at once
    a.post(f"/items/{sha}/annotations", data={**base, "note": "edit by rita", "supersedes": str(first),
                                              "csrf": session_csrf(a)})
    b.post(f"/items/{sha}/annotations", data={**base, "note": "edit by ivan", "supersedes": str(first),
                                              "csrf": session_csrf(b)})
    notes = {x["note"]: x for x in a.get(f"/api/items/{sha}").json()["annotations"]}
    assert notes["edit by rita"]["current"] and notes["edit by ivan"]["current"]
    assert not notes["first"]["current"]


def test_openapi_lists_json_endpoints(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/queue", "/api/items/{sha256}", "/media/{sha256}"} <= set(paths)


def test_queue_filters(web_case, client):
    case, _ = web_case
    login(client, "rita")
    everything = client.get("/api/queue", params={"limit": 1000}).json()
    high = client.get("/api/queue", params={"min_score": 0.8}).json()
    assert all(r["score"] >= 0.8 for r in high) and len(high) <= len(everything)
    with case.sessions() as s:
        assert len(everything) == len(list(s.scalars(select(Segment))))


def test_thumbnails_and_contact_sheet(web_case, client):
    login(client, "rita")
    sha = client.get("/api/queue").json()[0]["sha256"]
    r = client.get(f"/thumbs/{sha}.jpg", params={"t": 3.0})
    assert r.status_code == 200 and r.content[:3] == b"\xff\xd8\xff"
    sheet = client.get(f"/thumbs/{sha}.jpg", params={"sheet": "true"})
    assert sheet.status_code == 200 and len(sheet.content) > len(r.content)
    assert client.get("/thumbs/" + "0" * 64 + ".jpg").status_code == 404
    anon = TestClient(create_app(web_case[0]))
    assert anon.get(f"/thumbs/{sha}.jpg").status_code == 401


def test_complaints_page_and_gap_on_the_player(web_case, client):
    import hashlib

    case, truth = web_case
    login(client, "rita")
    page = client.get("/complaints").text
    assert "K-7" in page and "recording missing during the complaint window" in page
    drive_file = next(p for p in case.store.root.glob("??/*")
                      if p.parent.name + p.name == hashlib.sha256(p.read_bytes()).hexdigest())
    assert drive_file  # the store is intact
    # the CAM-02 recording just before the deleted interval says so on its page
    rows = client.get("/api/queue", params={"camera": "CAM-02", "limit": 1000}).json()
    before_gap = [r for r in rows if r["clock"] and r["clock"] < truth.gap["start"].replace("T", " ")]
    assert before_gap
    item = client.get(f"/items/{before_gap[0]['sha256']}").text
    assert "Recording missing on CAM-02 after this file" in item
    assert 'class="track"' in item


def test_redaction_review_lists_frames_to_check(web_case, client):
    from custodes.redact.derive import redact_item

    case, _ = web_case
    login(client, "rita")
    sha = client.get("/api/queue").json()[0]["sha256"]
    doc = redact_item(case, sha[:12], "editor", faces="solid", start_s=0, end_s=4)
    page = client.get("/redactions").text
    assert doc["derivative"][:12] in page and "least confident" in page
    for c in doc["lowest_confidence_frames"][:2]:
        assert f"/thumbs/{doc['derivative']}.jpg?t={c['t']}" in page


def test_an_item_shows_where_its_picture_cuts(web_case, client):
    """Scene cuts inside one file (an edit is evidence) are listed on the item, each a link to its moment."""
    from sqlalchemy import delete

    from custodes.store.db import Signal

    case, _ = web_case
    login(client, "rita")
    sha = client.get("/api/queue").json()[0]["sha256"]
    with case.sessions() as s:
        s.add_all([Signal(sha256=sha, analyzer="scene cuts", version="cuts-2", kind="scene_cut", start_s=t, end_s=t,
                          value=1.0, data={"found_by": how}) for t, how in ((4.6, "frames"), (9.0, "keyframes"))])
        s.commit()
    try:
        assert client.get(f"/api/items/{sha}").json()["cuts"] == [{"t": 4.6, "found_by": "frames"},
                                                                  {"t": 9.0, "found_by": "keyframes"}]
        page = client.get(f"/items/{sha}").text
        assert 'class="seek cut" data-t="4.6"' in page and 'data-t="9.0"' in page
        assert "found between keyframes" in page
    finally:
        with case.sessions() as s:
            s.execute(delete(Signal).where(Signal.sha256 == sha, Signal.kind == "scene_cut", Signal.version == "cuts-2",
                                           Signal.start_s.in_([4.6, 9.0])))
            s.commit()


def test_a_resent_annotation_form_is_saved_once_with_one_event(web_case):
    """A retry after a reset or a 500, or a double click, sends the same form again: one row, one annotate event,
    and the event is in the ledger with the row (appended before its commit)."""
    case, _ = web_case
    c = TestClient(create_app(case), client=("127.0.0.9", 1))
    login(c, "otto")
    sha = c.get("/api/queue").json()[0]["sha256"]
    form = {"label": "threats", "start_s": "11", "end_s": "12.5", "note": "sent twice", "person": "P-9",
            "person_role": "victim"}
    for _ in range(2):
        assert c.post(f"/items/{sha}/annotations", data={**form, "csrf": session_csrf(c)},
                      follow_redirects=False).status_code == 303
    rows = [a for a in c.get(f"/api/items/{sha}").json()["annotations"] if a["note"] == "sent twice"]
    assert len(rows) == 1
    events = [e for e in case.ledger.entries() if e["action"] == "annotate" and
              e["details"].get("annotation") == rows[0]["id"]]
    assert len(events) == 1 and events[0]["actor"] == "otto"

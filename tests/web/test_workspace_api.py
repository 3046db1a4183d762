"""The workspace's JSON API and pages on a small real case: review states (sealed, signed), next/previous across
files, background annotations (duplicates refused, clock time accepted), safe-viewing settings, plain reasons,
HTML error pages, /api/docs without a CDN, non-video and redacted items shown as what they are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from custodes.store.db import MediaProbe, Recording, Segment
from custodes.store.verify import verify_case
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.conftest import run_cli
from tests.web.conftest import PASSWORD, login, session_csrf

REASONS = [{"signal": "p_visual", "value": 0.97, "text": "motion pattern like fights in training data (p=0.97)"},
           {"signal": "audio:gunshot", "value": 0.6, "text": "audio event: gunshot (0.60)"}]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("workspace")
    drive = root / "drive"
    drive.mkdir()
    for cam, minute in (("CAM-07", 4), ("CAM-08", 9)):
        write_clip(drive / f"{cam}.mp4", ClipSpec(cam, datetime(2026, 1, 2, 3, minute, 5), 6, fps=10, size=(320, 180)))
    (drive / "notes.txt").write_text("a document, <b>not</b> a video")
    case = Case.init(root / "case", "tester", title="workspace")
    Ingestor(case, "tester").run([drive])
    with case.sessions() as s:
        probes = list(s.scalars(select(MediaProbe)))
        videos = sorted(m.sha256 for m in probes if m.status == "ok")
        doc = next(m.sha256 for m in probes if m.status == "not_media")
        now = datetime.now(UTC)
        # two files, segments interleaved by score: the queue goes a(0.95) b(0.9) a(0.5) b(0.4)
        for sha, start, score in ((videos[0], 0.0, 0.95), (videos[1], 1.0, 0.9), (videos[0], 3.0, 0.5),
                                  (videos[1], 4.0, 0.4)):
            s.add(Segment(sha256=sha, start_s=start, end_s=start + 2, score=score, reasons=REASONS,
                          model_version="test", created_at=now))
        s.add(Recording(sha256=videos[0], camera_id="CAM-07", start_at=datetime(2026, 1, 2, 3, 4, 5),
                        end_at=datetime(2026, 1, 2, 3, 4, 11), source="overlay", confidence=1.0, version="test",
                        data={}))
        s.commit()
    for name, role in (("rita", "reviewer"), ("otto", "reviewer"), ("vera", "viewer")):
        add_user(case, name, role, PASSWORD, "tester")
    return case, videos, doc


def client_for(case: Case, user: str) -> TestClient:
    c = TestClient(create_app(case), client=("127.0.0.1", 41000))
    assert login(c, user).status_code == 303
    c.headers["X-CSRF-Token"] = session_csrf(c)
    return c


def segments(case: Case) -> list[Segment]:
    with case.sessions() as s:
        return list(s.scalars(select(Segment).order_by(Segment.score.desc(), Segment.id)))


def test_next_and_previous_cross_files_in_queue_order(ws):
    case, videos, _ = ws
    c = client_for(case, "rita")
    order = segments(case)
    assert [g.sha256 for g in order] == [videos[0], videos[1], videos[0], videos[1]]
    n = c.get("/api/queue/neighbour", params={"segment": order[0].id}).json()
    assert n["segment"] == order[1].id and n["sha256"] == videos[1] and n["url"].startswith(f"/items/{videos[1]}")
    p = c.get("/api/queue/neighbour", params={"segment": order[2].id, "direction": "previous"}).json()
    assert p["segment"] == order[1].id
    assert c.get("/api/queue/neighbour", params={"segment": order[-1].id}).json() == {"segment": None}
    assert c.get("/api/queue/neighbour", params={"segment": 999999}).status_code == 404


def test_review_states_are_counted_sealed_signed_and_an_edit_is_caught(ws):
    case, videos, _ = ws
    rita, otto = client_for(case, "rita"), client_for(case, "otto")
    first, second = segments(case)[:2]
    assert c_progress(rita)["counts"]["unreviewed"] == 4
    r = rita.post(f"/api/segments/{first.id}/review", json={"state": "nothing of concern"})
    assert r.status_code == 200 and r.json()["progress"]["counts"]["nothing of concern"] == 1
    assert r.json()["progress"]["percent"] == 25.0
    # a second review is someone else's
    r = rita.post(f"/api/segments/{first.id}/review", json={"state": "confirmed"})
    assert r.status_code == 422 and "someone else" in r.json()["detail"]
    assert otto.post(f"/api/segments/{first.id}/review", json={"state": "confirmed"}).status_code == 200
    assert rita.post(f"/api/segments/{second.id}/review", json={"state": "nonsense"}).status_code == 422
    assert rita.post(f"/api/segments/{second.id}/review", json={"state": "second review wanted"},
                     headers={"X-CSRF-Token": "forged"}).status_code == 403
    viewer = client_for(case, "vera")
    assert viewer.post(f"/api/segments/{second.id}/review", json={"state": "nothing of concern"}).status_code == 403
    queue = {row["id"]: row for row in rita.get("/api/queue").json()}
    assert queue[first.id]["state"] == "confirmed" and queue[second.id]["state"] == "unreviewed"
    assert [row["id"] for row in rita.get("/api/queue", params={"state": "unreviewed"}).json()] == \
        [g.id for g in segments(case)[1:]]
    page = rita.get("/").text
    assert "25.0%" in page and "confirmed: <strong>1</strong>" in page
    events = [e for e in case.ledger.entries() if e["action"] == "review"]
    assert [(e["actor"], e["details"]["state"]) for e in events[-2:]] == [("rita", "nothing of concern"),
                                                                          ("otto", "confirmed")]
    assert not verify_case(case).problems
    with case.engine.begin() as conn:
        conn.execute(text("UPDATE reviews SET state = 'nothing of concern' WHERE state = 'confirmed'"))
    try:
        assert ("record.mismatch", f"reviews:{videos[0]}") in {(p.kind, p.where) for p in verify_case(case).problems}
        proc = run_cli("verify", str(case.root))  # what an investigator runs
        assert proc.returncode != 0 and f"reviews:{videos[0]}" in proc.stdout + proc.stderr
    finally:
        with case.engine.begin() as conn:
            conn.execute(text("UPDATE reviews SET state = 'confirmed' WHERE author = 'otto'"))
    assert not verify_case(case).problems


def c_progress(c: TestClient) -> dict:
    return c.get("/api/progress").json()


def test_background_annotation_refuses_a_duplicate_takes_clock_time_and_marks_segments(ws):
    case, videos, _ = ws
    c = client_for(case, "rita")
    sha = videos[0]
    body = {"label": "threats", "start_s": "03:04:08", "end_s": "03:04:09.5", "note": "shouted at",
            "people": [{"pseudonym": "P-1", "role": "victim"}, {"pseudonym": "O-2", "role": "perpetrator"}]}
    r = c.post(f"/api/items/{sha}/annotations", json=body)
    assert r.status_code == 201, r.text
    a = r.json()["annotation"]
    assert (a["start_s"], a["end_s"]) == (3.0, 4.5) and len(a["people"]) == 2
    assert r.json()["message"] == f"Saved as annotation #{a['id']}."
    # the segment at 3-5 s is now annotated
    states = {g["start_s"]: g["state"] for g in r.json()["segments"]}
    assert states[3.0] == "annotated"
    again = c.post(f"/api/items/{sha}/annotations", json=body)
    assert again.status_code == 409 and f"already saved as #{a['id']}" in again.json()["detail"]
    for bad, why in (({**body, "label": ""}, "Choose a label"), ({**body, "end_s": "03:09:00"}, "outside"),
                     ({**body, "start_s": "25:00"}, "not a clock time"),
                     ({**body, "people": [{"pseudonym": "P-1", "role": "boss"}]}, "victim, perpetrator or witness")):
        r = c.post(f"/api/items/{sha}/annotations", json=bad)
        assert r.status_code == 422 and why in r.json()["detail"], r.text
    # a file without an overlay clock says so
    r = c.post(f"/api/items/{videos[1]}/annotations", json={**body, "people": []})
    assert r.status_code == 422 and "no clock" in r.json()["detail"]
    assert c.post(f"/api/items/{sha}/annotations", json=body, headers={"X-CSRF-Token": ""}).status_code == 403


def test_safe_viewing_settings_are_separate_and_remembered(ws):
    case, videos, _ = ws
    c = client_for(case, "otto")
    page = c.get(f"/items/{videos[0]}").text
    assert "safe-blur safe-grey safe-mute" in page and " muted " in page
    assert c.post("/api/prefs", json={"blur": False}).json()["safe"] == {"blur": False, "grey": True, "mute": True}
    again = client_for(case, "otto")  # a new session remembers it
    page = again.get("/").text
    assert "safe-grey safe-mute" in page and "safe-blur" not in page
    r = again.post("/settings", data={"csrf": session_csrf(again), "grey": "1"}, follow_redirects=False)
    assert r.status_code == 303
    page = again.get(f"/items/{videos[0]}").text
    assert "safe-grey" in page and "safe-mute" not in page and " muted " not in page
    assert client_for(case, "rita").post("/api/prefs", json={"grey": False}).json()["safe"]["blur"] is True


def test_russian_interface_is_chosen_per_user(ws):
    case, videos, _ = ws
    c = client_for(case, "vera")
    assert c.post("/api/prefs", json={"lang": "fr"}).status_code == 422
    assert c.post("/api/prefs", json={"lang": "ru"}).json()["lang"] == "ru"
    queue = c.get("/").text
    assert '<html lang="ru">' in queue and "Очередь просмотра" in queue and "не просмотрен" in queue
    page = c.get(f"/items/{videos[0]}").text
    assert "Дальше (n)" in page and "Фрагменты (g)" in page and "Review queue" not in page
    assert "Очередь" not in client_for(case, "rita").get("/").text  # only hers
    r = c.post("/settings", data={"csrf": session_csrf(c), "lang": "en", "blur": "1"}, follow_redirects=False)
    assert r.status_code == 303 and '<html lang="en">' in c.get("/").text


def test_reasons_are_plain_language(ws):
    case, videos, _ = ws
    c = client_for(case, "rita")
    row = c.get("/api/queue").json()[0]
    assert row["reasons"] == ["movement strongly like a fight", "sounds like a bang or impact"]
    page = c.get("/").text + c.get(f"/items/{videos[0]}").text
    assert "p=0.97" not in page and "gunshot" not in page and "training data" not in page


def test_error_pages_api_docs_and_a_document_shown_as_text(ws):
    case, videos, doc = ws
    c = client_for(case, "rita")
    html = {"Accept": "text/html,application/xhtml+xml"}
    for path in ("/items/" + "0" * 64, "/no-such-page", "/items/nothex"):
        r = c.get(path, headers=html)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), path
        assert '"detail"' not in r.text and "no such page or item" in r.text
    r = c.get("/items/" + videos[0], params={"t": "soon"}, headers=html)
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "The value of “t” must be a number, like 0.5 (got &#39;soon&#39;)." in r.text
    assert c.get("/items/" + "0" * 64).json()["detail"].startswith("There is no such page")  # a script: JSON
    docs = c.get("/api/docs")
    assert docs.status_code == 200 and "/api/segments/{segment_id}/review" in docs.text
    import re

    assert re.findall(r'<script[^>]*src="([^"]*)"', docs.text) == ["/static/app.js"]  # nothing from elsewhere
    page = c.get(f"/items/{doc}").text
    assert 'id="text-item"' in page and "a document, &lt;b&gt;not&lt;/b&gt; a video" in page
    assert "<video" not in page
    raw = c.get(f"/raw/{doc}")
    assert raw.headers["content-disposition"].startswith("attachment")
    assert raw.content == b"a document, <b>not</b> a video"
    assert "default-src 'self'" in raw.headers["content-security-policy"]


def test_a_redacted_copy_is_titled_and_bannered(ws):
    from custodes.redact.derive import redact_item

    case, videos, _ = ws
    doc = redact_item(case, videos[0][:12], "tester", faces="solid", start_s=0, end_s=2)
    c = client_for(case, "rita")
    page = c.get(f"/items/{doc['derivative']}").text
    name = case.display_names({videos[0]})[videos[0]]
    assert f"<title>redacted copy of {name}" in page, page[:400]
    assert 'id="derived-banner"' in page and f'href="/items/{videos[0]}"' in page

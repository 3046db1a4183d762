"""Review states belong to the stretch they judged (sha256 + start/end in the row and the signed event): triage run
again (new segment ids) keeps them, a segment over another stretch never takes them; and the four-eyes rule: once
someone else confirmed or disputed, the first reviewer cannot record another state over it (an investigator can,
recorded as overriding it)."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from custodes.store.db import Review, Segment
from custodes.store.verify import verify_case
from custodes.triage.runner import run_triage, store_result
from custodes.triage.score import SegmentRow, VideoResult
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.web.conftest import login, one_clip_case, session_csrf


@pytest.fixture(scope="module")
def triaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    (root / "drive").mkdir()
    write_clip(root / "drive" / "cam01.mp4", ClipSpec("CAM-01", datetime(2026, 3, 1, 10, 0, 0), 8, fps=8,
                                                      size=(320, 180), struggles=[(2, 5)], seed=1))
    case = Case.init(root / "case", "tester", title="spans")
    Ingestor(case, "tester").run([root / "drive"])
    run_triage(case, "tester", workers=1)
    for name, role in (("rita", "reviewer"), ("otto", "reviewer"), ("ivan", "investigator")):
        add_user(case, name, role, "correct horse battery", "tester")
    assert segments(case), "the synthetic struggle was not flagged"
    return case


def segments(case: Case) -> list[Segment]:
    with case.sessions() as s:
        return list(s.scalars(select(Segment).order_by(Segment.score.desc(), Segment.id)))


def client_for(case: Case, user: str) -> TestClient:
    c = TestClient(create_app(case), client=("127.0.0.1", 42000))
    assert login(c, user).status_code == 303
    c.headers["X-CSRF-Token"] = session_csrf(c)
    return c


def states(c: TestClient) -> dict[int, str]:
    return {row["id"]: row["state"] for row in c.get("/api/queue").json()}


def test_review_states_survive_re_triage_and_never_land_on_another_stretch(triaged):
    case = triaged
    rita, otto = client_for(case, "rita"), client_for(case, "otto")
    g = segments(case)[0]
    assert rita.post(f"/api/segments/{g.id}/review", json={"state": "nothing of concern"}).status_code == 200
    assert otto.post(f"/api/segments/{g.id}/review", json={"state": "confirmed"}).status_code == 200
    with case.sessions() as s:
        rows = list(s.scalars(select(Review).order_by(Review.id)))
    assert [(r.sha256, r.start_s, r.end_s) for r in rows[-2:]] == [(g.sha256, g.start_s, g.end_s)] * 2
    events = [e for e in case.ledger.entries() if e["action"] == "review"][-2:]
    assert all(e["subject"] == g.sha256 and (e["details"]["start_s"], e["details"]["end_s"]) == (g.start_s, g.end_s)
               for e in events)

    run_triage(case, "tester", workers=1, force=True)  # `custodes triage CASE --force`: new segment ids
    again = segments(case)
    new = next(x for x in again if (x.start_s, x.end_s) == (g.start_s, g.end_s))
    # (a new row: on PostgreSQL a new id; SQLite may give the freed id again, to whatever stretch comes first)
    assert states(rita)[new.id] == "confirmed"
    assert rita.get("/api/progress").json()["counts"]["confirmed"] == 1
    assert [row["id"] for row in rita.get("/api/queue", params={"state": "confirmed"}).json()] == [new.id]
    assert new.id not in [row["id"] for row in rita.get("/api/queue", params={"reviewed": "no"}).json()]
    item = rita.get(f"/api/items/{g.sha256}/strip").json()
    assert {x["id"]: x["state"] for x in item["segments"]}[new.id] == "confirmed"
    # the second review still counts after re-triage: rita cannot override it on the new segment either
    assert rita.post(f"/api/segments/{new.id}/review", json={"state": "nothing of concern"}).status_code == 403
    assert not verify_case(case).problems

    # a triage that flags another stretch (shifted past half its length): the old verdict does not land on it
    length = g.end_s - g.start_s
    res = VideoResult(ok=True, duration_s=8.0, segments=[
        SegmentRow(start_s=g.end_s - 0.3 * length, end_s=g.end_s + 0.7 * length, score=0.9, reasons=[])])
    store_result(case, g.sha256, res)
    shifted = segments(case)[0]
    assert states(rita)[shifted.id] == "unreviewed"
    assert rita.get("/api/progress").json()["counts"]["confirmed"] == 0
    assert not verify_case(case).problems
    run_triage(case, "tester", workers=1, force=True)  # and back: the verdict is there again
    assert "confirmed" in states(rita).values()


def test_the_first_reviewer_cannot_override_a_second_review(triaged):
    case = triaged
    rita, otto, ivan = client_for(case, "rita"), client_for(case, "otto"), client_for(case, "ivan")
    # a stretch nobody has reviewed yet, next to what triage flagged
    flagged = segments(case)
    store_result(case, flagged[0].sha256, VideoResult(ok=True, duration_s=8.0, segments=[
        *(SegmentRow(start_s=x.start_s, end_s=x.end_s, score=x.score, reasons=x.reasons) for x in flagged),
        SegmentRow(start_s=7.0, end_s=7.9, score=0.2, reasons=[])]))
    g = segments(case)[-1]
    assert (g.start_s, g.end_s) == (7.0, 7.9)
    assert rita.post(f"/api/segments/{g.id}/review", json={"state": "second review wanted"}).status_code == 200
    assert otto.post(f"/api/segments/{g.id}/review", json={"state": "disputed", "note": "no"}).status_code == 200
    for state in ("nothing of concern", "annotated", "second review wanted"):
        r = rita.post(f"/api/segments/{g.id}/review", json={"state": state, "note": "mine"})
        assert r.status_code == 403 and "otto gave this segment a second review (disputed)" in r.json()["detail"]
    assert rita.post(f"/api/segments/{g.id}/review", json={"state": "confirmed"}).status_code == 422
    # an annotation over it does not turn the disputed verdict into "annotated" either
    assert rita.post(f"/api/items/{g.sha256}/annotations", json={
        "label": "other", "start_s": str(g.start_s), "end_s": str(g.end_s), "note": "x"}).status_code == 201
    assert states(rita)[g.id] == "disputed"
    # an investigator may, and the signed event names the verdict it overrides
    r = ivan.post(f"/api/segments/{g.id}/review", json={"state": "nothing of concern", "note": "checked"})
    assert r.status_code == 200 and states(rita)[g.id] == "nothing of concern"
    last = [e for e in case.ledger.entries() if e["action"] == "review"][-1]
    assert last["actor"] == "ivan" and last["details"]["overrides_state"] == "disputed" \
        and last["details"]["overrides_author"] == "otto"
    assert rita.post(f"/api/segments/{g.id}/review", json={"state": "annotated"}).status_code == 403
    assert not verify_case(case).problems
    with case.engine.begin() as conn:
        conn.execute(text("UPDATE reviews SET author = 'rita' WHERE author = 'ivan'"))
    assert ("record.mismatch", f"reviews:{g.sha256}") in {(p.kind, p.where) for p in verify_case(case).problems}


def test_nothing_of_concern_cannot_unsay_a_reviewers_annotation(tmp_path):
    """x pressed out of habit after annotating a beating: refused with a sentence while a current annotation lies
    in the segment; after the annotation is superseded by one outside it, or for an investigator, it is recorded."""
    case, sha = one_clip_case(tmp_path, "cam02.mp4", ClipSpec("CAM-02", datetime(2026, 3, 1, 11, 0, 0), 8, fps=8,
                                                              size=(320, 180), seed=2), "habit")
    store_result(case, sha, VideoResult(ok=True, duration_s=8.0, segments=[
        SegmentRow(start_s=2.0, end_s=5.0, score=0.9, reasons=[])]))
    for name, role in (("rita", "reviewer"), ("ivan", "investigator")):
        add_user(case, name, role, "correct horse battery", "tester")
    rita, ivan = client_for(case, "rita"), client_for(case, "ivan")
    (g,) = segments(case)
    made = rita.post(f"/api/items/{sha}/annotations", json={"label": "beating", "start_s": "3.2", "end_s": "4.5",
                                                             "note": "blows to the head"})
    assert made.status_code == 201
    r = rita.post(f"/api/segments/{g.id}/review", json={"state": "nothing of concern"})
    assert r.status_code == 409 and "it is not 'nothing of concern'" in r.json()["detail"]
    assert states(rita)[g.id] == "annotated"
    # moved out of the segment by a correction: nothing current is inside it any more
    moved = rita.post(f"/api/items/{sha}/annotations", json={
        "label": "beating", "start_s": "6.0", "end_s": "7.0", "note": "blows to the head",
        "supersedes": str(made.json()["annotation"]["id"])})
    assert moved.status_code == 201, moved.text
    assert rita.post(f"/api/segments/{g.id}/review", json={"state": "nothing of concern"}).status_code == 200
    assert rita.post(f"/api/items/{sha}/annotations", json={"label": "threats", "start_s": "2.5", "end_s": "3.0",
                                                             "note": "shouting"}).status_code == 201
    assert rita.post(f"/api/segments/{g.id}/review", json={"state": "nothing of concern"}).status_code == 409
    assert ivan.post(f"/api/segments/{g.id}/review", json={"state": "nothing of concern",
                                                           "note": "shouting, no threat"}).status_code == 200
    assert not verify_case(case).problems

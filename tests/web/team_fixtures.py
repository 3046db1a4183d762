"""Two cases on one team server, for the tests/web/test_team_*.py tests.

Case B is the shared web test case (the demo drive, triaged: items, segments); its own account ``ivan``
(investigator) logs in at the server with that case's password and so becomes the server user ivan, member of
B only. Case A is a fresh case with one small real clip and its own admin account ``alma``."""

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import EvidenceObject, Segment
from custodes.web.team import TeamStore, create_team_app
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD

A, B = "a-block", "b-block"


def team_login(client: TestClient, user: str, password: str = PASSWORD):
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": user, "password": password, "csrf": csrf},
                       follow_redirects=False)


def csrf_of(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def make_team(web_case, small_clip, tmp_path):
    """(team app, server store, case A, case B); each test file makes it its ``team_cases`` fixture."""
    case_b, _ = web_case
    case_a = Case.init(tmp_path / A, "tester", title="A block (cells 1-9)")
    Ingestor(case_a, "tester").run([small_clip])
    add_user(case_a, "alma", "admin", PASSWORD, "tester")
    store = TeamStore(tmp_path / "server")
    app = create_team_app({A: case_a, B: case_b}, store)
    return app, store, case_a, case_b


def b_ids(case_b) -> dict[str, object]:
    """IDs that exist in case B: a video with segments, its first segment."""
    with case_b.sessions() as s:
        seg = s.scalars(select(Segment).order_by(Segment.score.desc(), Segment.id)).first()
        assert seg is not None, "case B has no segments: triage did not run"
        objects = [o.sha256 for o in s.scalars(select(EvidenceObject))]
    return {"sha256": seg.sha256, "segment_id": seg.id, "objects": objects}


def change_password(client: TestClient, current: str, new: str, again: str | None = None, csrf: str | None = None):
    """The /password form, as a browser sends it."""
    token = csrf if csrf is not None else csrf_of(client, "/password")
    return client.post("/password", data={"csrf": token, "current": current, "new": new,
                                          "again": new if again is None else again}, follow_redirects=False)

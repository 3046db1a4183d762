"""No case's data is reachable from another case's membership on a team server.

The routes come from the case app's own ``routes`` (FastAPI), so a route added later is covered without
touching this test; a route with a path parameter this test cannot fill with an ID of case B fails it. Each is
requested with IDs that exist in case B (every item, a segment, an annotation, a review) by a member of case A
only: the answer is 404, byte for byte the answer for a case that does not exist, and names nothing of B. The
same requests by a member of B are answered (not 404), so the IDs are real and the test could fail. A's own
routes given B's IDs are 404 as well."""

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Mount, Route

from custodes.store.db import EvidenceObject
from custodes.web.team import NOT_FOUND
from tests.web.team_fixtures import A, B, b_ids, csrf_of, make_team, team_login

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def team_cases(web_case, small_clip, tmp_path):
    return make_team(web_case, small_clip, tmp_path)


def filled(route, ids: dict, sha: str) -> str:
    """The route's path with B's IDs in its parameters; a parameter nobody knows fails the test."""
    if isinstance(route, Mount):
        return route.path + "/app.css"  # the static files: served to members only, like everything else
    values = {"sha256": sha, "segment_id": ids["segment_id"]}
    unknown = set(route.param_convertors) - set(values)
    assert not unknown, f"{route.path}: add IDs of case B for {sorted(unknown)} to this test"
    path = route.path_format
    for k, val in values.items():
        path = path.replace("{" + k + "}", str(val))
    return path


def app_routes(routes):
    """The app's routes, an included router's among them (FastAPI 0.165 keeps those in a route of their own)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is None:
            yield route
            continue
        assert not route.include_context.prefix, "an included router with a prefix: give this test its paths"
        yield from app_routes(inner.routes)


def requests_for(case_app, ids: dict, extra: dict) -> list[tuple[str, str, dict]]:
    """(method, path with query, request kwargs) for every route of the case app."""
    query = (f"?seg={ids['segment_id']}&segment={ids['segment_id']}&t=1&q=CAM&sheet=false&mine=1")
    out = []
    for route in app_routes(case_app.routes):
        if isinstance(route, Mount):
            out.append(("GET", filled(route, ids, ids["sha256"]), {}))
            continue
        assert isinstance(route, (APIRoute, Route)), f"a route of a kind this test does not know: {route!r}"
        shas = ids["objects"] if "sha256" in route.param_convertors else [ids["sha256"]]
        for method in sorted(set(route.methods or ()) & set(METHODS)):
            for sha in shas:
                kwargs: dict = {}
                if method != "GET":
                    kwargs = {"json": {"state": "nothing of concern", "label": "other", "start_s": "0", "end_s": "1",
                                       "supersedes": extra["annotation"], "review": extra["review"],
                                       "user": "ivan", "items": [sha]}}
                out.append((method, filled(route, ids, sha) + query, kwargs))
    return out


def test_a_member_of_one_case_gets_404_for_every_route_and_id_of_another(team_cases):
    app, _, case_a, case_b = team_cases
    ids = b_ids(case_b)
    alma = TestClient(app, client=("127.0.0.1", 51001))  # admin of A (her own account there), nothing in B
    ivan = TestClient(app, client=("127.0.0.1", 51002))  # investigator in B (his own account there)
    assert team_login(alma, "alma").status_code == 303
    assert team_login(ivan, "ivan").status_code == 303
    with case_a.sessions() as s:
        a_objects = set(s.scalars(select(EvidenceObject.sha256)))
    assert not a_objects & set(ids["objects"]), "the two cases must not share a file for this test"

    # an annotation and a review in B, so that their IDs exist too
    token = csrf_of(ivan, f"/c/{B}/")
    saved = ivan.post(f"/c/{B}/api/items/{ids['sha256']}/annotations", headers={"X-CSRF-Token": token},
                      json={"label": "other", "start_s": "0", "end_s": "1", "note": "team isolation test"})
    assert saved.status_code in (201, 409), saved.text
    reviewed = ivan.post(f"/c/{B}/api/segments/{ids['segment_id']}/review", headers={"X-CSRF-Token": token},
                         json={"state": "second review wanted", "note": ""})
    assert reviewed.status_code == 200, reviewed.text
    extra = {"annotation": saved.json().get("annotation", {}).get("id", 1), "review": reviewed.json()["review"]}

    case_app = app.state.case_apps[B]
    reqs = requests_for(case_app, ids, extra)
    paths = {p.split("?")[0] for _, p, _ in reqs}
    assert {f"/items/{ids['sha256']}", f"/media/{ids['sha256']}", f"/thumbs/{ids['sha256']}.jpg",
            f"/api/segments/{ids['segment_id']}/review", "/search", "/timeline", "/api/queue",
            "/static/app.css"} <= paths, "the route list is not the app's"
    assert len(reqs) >= 60
    title_b = str(case_b.meta["title"])
    for method, path, kwargs in reqs:
        for accept in ("text/html", "application/json"):
            headers = {"accept": accept}
            r = alma.request(method, f"/c/{B}{path}", headers=headers, follow_redirects=False, **kwargs)
            assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
            none = alma.request(method, f"/c/no-such-case{path}", headers=headers, follow_redirects=False,
                                **kwargs)
            assert (r.status_code, r.text) == (none.status_code, none.text), f"{path}: B's 404 differs from none"
            assert title_b not in r.text and ids["sha256"] not in r.text
        # the member of B is answered: the route and the IDs are real
        mine = ivan.request(method, f"/c/{B}{path}", headers={"accept": "application/json"},
                            follow_redirects=False, **kwargs)
        # (a thumbnail of a document is a 404 of its own: "not a video"; never the not-found of the case)
        assert mine.status_code != 404 or mine.json()["detail"] != NOT_FOUND, (method, path, mine.text[:200])

    # A's own routes with B's IDs: nothing of B behind them either
    a_app = app.state.case_apps[A]
    a_token = csrf_of(alma, f"/c/{A}/")
    checked = 0
    for method, path, kwargs in requests_for(a_app, ids, extra):
        bare = path.split("?")[0]
        if not any(x in bare for x in [*ids["objects"], f"/{ids['segment_id']}/"]):
            continue
        if method != "GET" and not bare.startswith("/api/"):
            continue  # a browser form: refused for its missing fields before any ID is looked at
        r = alma.request(method, f"/c/{A}{path}", headers={"accept": "application/json", "x-csrf-token": a_token},
                         follow_redirects=False, **kwargs)
        assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
        checked += 1
    assert checked >= 40
    r = alma.get(f"/c/{A}/api/queue/neighbour?segment={ids['segment_id']}")
    assert r.status_code == 404

    # and nothing of B on A's pages that list things: queue, search, timeline
    for path in ("/", "/search?q=CAM", "/timeline", "/api/queue", "/complaints", "/redactions"):
        r = alma.get(f"/c/{A}{path}")
        assert r.status_code == 200 and not any(sha in r.text for sha in ids["objects"]), path
        assert title_b not in r.text


def test_a_case_is_not_reachable_before_login_and_the_answer_does_not_say_whether_it_exists(team_cases):
    app, *_ = team_cases
    anon = TestClient(app)
    for case in (B, "no-such-case"):
        r = anon.get(f"/c/{case}/", follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/login")
        r = anon.get(f"/c/{case}/api/queue", follow_redirects=False)
        assert r.status_code == 401 and r.json() == {"detail": "log in first"}

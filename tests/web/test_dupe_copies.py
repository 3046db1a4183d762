"""Issues 22 and 27 in the review app: a near-duplicate cluster is one row of the queue (the source's, with
"+N copies"); a review of one member covers the aligned stretch of the others (counts, progress and n/p skip
it; derived at read time, no review row written); the workspace page lists the copies with their offsets and
shows matched frame pairs side by side. Real clips: fight-surv fi005, a cut of it and a mirrored copy."""

import shutil
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from custodes.dupes.index import clusters, hash_videos
from custodes.dupes.store import load_clusters
from custodes.dupes.variants import make_variants
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import Review, Segment
from custodes.store.verify import verify_case
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login, session_csrf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, fight_surv):
    d = tmp_path_factory.mktemp("dupeweb")
    drive = d / "drive"
    (drive / "orig").mkdir(parents=True)
    shutil.copy2(fight_surv / "fight" / "fi005.mp4", drive / "orig")
    make_variants(fight_surv / "fight" / "fi005.mp4", drive / "copies", ("cut", "flip"))
    case = Case.init(d / "case", "tester", title="dupes")
    Ingestor(case, "tester").run([drive])
    hash_videos(case)
    clusters(case, actor="tester")
    sha = {n: s for s, n in case.display_names().items()}
    with case.sessions() as s:
        cl = load_clusters(s)
    cut = sha["fi005_cut.mp4"]
    src = cl.members[cut].source
    flip = next(x for x in (sha["fi005.mp4"], sha["fi005_flip.mp4"]) if x != src)
    off = cl.aligned(cut, src, 0.0)
    now = datetime.now(UTC)
    with case.sessions() as s:  # the same flagged stretch in all three files, at each one's own time
        for x, t0 in ((src, off + 0.2), (cut, 0.2), (flip, cl.aligned(src, flip, off + 0.2))):
            s.add(Segment(sha256=x, start_s=t0, end_s=t0 + 1.5, score=0.9 if x == src else 0.8,
                          reasons=[{"text": "struggle"}], model_version="t", created_at=now))
        s.commit()
    add_user(case, "rita", "reviewer", PASSWORD, "tester")
    return case, {"src": src, "cut": cut, "flip": flip}, off


def client_for(case, user):
    c = TestClient(create_app(case), client=("127.0.0.1", 42100))
    assert login(c, user).status_code == 303
    c.headers["X-CSRF-Token"] = session_csrf(c)
    return c


def seg_of(case, sha):
    with case.sessions() as s:
        return s.scalars(select(Segment).where(Segment.sha256 == sha)).one()


def test_a_cluster_is_one_row_and_one_review_covers_its_copies(cluster):
    case, x, off = cluster
    rita = client_for(case, "rita")
    rows = rita.get("/api/queue").json()
    assert [r["sha256"] for r in rows] == [x["src"]]  # the copies' rows collapsed into the source's
    assert {c["sha256"] for c in rows[0]["copies"]} == {x["cut"], x["flip"]}
    assert rita.get("/api/progress").json()["counts"]["unreviewed"] == 3
    page = rita.get("/").text
    assert "+2 copies" in page and "fi005_cut.mp4 (clip)" in page

    g = seg_of(case, x["src"])
    assert rita.post(f"/api/segments/{g.id}/review", json={"state": "nothing of concern"}).status_code == 200
    prog = rita.get("/api/progress").json()
    assert prog["counts"]["nothing of concern"] == 3 and prog["counts"]["unreviewed"] == 0
    assert prog["covered"] == 2 and prog["percent"] == 100.0
    with case.sessions() as s:  # covering is derived: the one review is the only review row
        assert s.scalar(select(func.count()).select_from(Review)) == 1
    assert rita.get("/api/queue?reviewed=no").json() == []

    item = rita.get(f"/api/items/{x['cut']}").json()
    cov = item["segments"][0]["covered_by"]
    assert cov["sha256"] == x["src"] and abs(cov["at"] - round(off + 0.2, 1)) < 0.05
    html = rita.get(f"/items/{x['cut']}").text
    assert "covered by review of" in html
    assert verify_case(case).ok


def test_navigation_skips_what_a_copy_covers(cluster):
    case, x, _ = cluster
    rita = client_for(case, "rita")
    g = seg_of(case, x["src"])
    assert rita.get(f"/api/queue/neighbour?segment={g.id}&direction=next").json()["segment"] is None
    cut = seg_of(case, x["cut"])
    assert rita.get(f"/api/queue/neighbour?segment={cut.id}&direction=previous").json()["segment"] == g.id


def test_the_workspace_lists_the_copies_with_matched_frames_side_by_side(cluster):
    case, x, off = cluster
    rita = client_for(case, "rita")
    item = rita.get(f"/api/items/{x['cut']}").json()
    by = {c["sha256"]: c for c in item["copies"]}
    assert set(by) == {x["src"], x["flip"]}
    assert abs(by[x["src"]]["offset_s"] - off) < 0.01 and by[x["src"]]["pairs"]
    flip_words = " ".join(w for c in rita.get(f"/api/items/{x['src']}").json()["copies"] for w in c["transforms"])
    assert "mirrored" in flip_words
    html = rita.get(f"/items/{x['cut']}").text
    assert 'id="copies-panel"' in html
    p = by[x["src"]]["pairs"][0]
    for sha, t in ((x["cut"], p["here"]), (x["src"], p["there"])):
        assert f'/thumbs/{sha}.jpg?t={t:.1f}"' in html  # both files' frames, as blurred thumbnails
        r = rita.get(f"/thumbs/{sha}.jpg?t={t:.1f}")
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
    assert f'href="/items/{x["src"]}?t={max(off, 0):.1f}"' in html


def test_a_dupes_run_on_a_case_made_before_adds_its_table(tmp_path, small_clip):
    """A case created before the table existed: opening it migrates, and the run stores (here: no) matches."""
    from sqlalchemy import text

    case = Case.init(tmp_path / "old", "tester")
    Ingestor(case, "tester").run([small_clip])
    with case.engine.begin() as conn:  # as a case at schema 0015 had it
        conn.execute(text("DROP TABLE dupe_matches"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0015'"))
    case = Case(case.root)
    hash_videos(case)  # opens the schema: migrates to 0016
    assert case.schema_revision() == "0016"
    assert clusters(case)["matches"] == 0
    assert verify_case(case).ok

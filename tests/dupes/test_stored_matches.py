"""Issues 22 and 27: ``custodes dupes`` stores its matches as a sealed finding; an edit of a stored match is named
by ``verify``; a re-run replaces the previous run's matches with a signed event; the stored matches give the
clusters, the aligned time maps and the side-by-side frame pairs the review app shows. On a real CCTV clip
(fight-surv fi005) and two copies of it (a cut and a mirrored re-encode)."""

import shutil

import pytest
from sqlalchemy import select, text

from custodes.dupes.index import clusters, hash_videos
from custodes.dupes.store import load_clusters, member_panel
from custodes.dupes.variants import make_variants
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import DupeMatch
from custodes.store.verify import verify_case

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def copies(tmp_path_factory, fight_surv):
    d = tmp_path_factory.mktemp("copies")
    drive = d / "drive"
    (drive / "orig").mkdir(parents=True)
    shutil.copy2(fight_surv / "fight" / "fi005.mp4", drive / "orig")
    make_variants(fight_surv / "fight" / "fi005.mp4", drive / "copies", ("cut", "flip"))
    case = Case.init(d / "case", "tester")
    Ingestor(case, "tester").run([drive])
    hash_videos(case)
    doc = clusters(case, actor="tester")
    names = case.display_names()
    sha = {n: s for s, n in names.items()}
    return case, doc, sha


def test_matches_are_stored_and_sealed(copies):
    case, doc, sha = copies
    with case.sessions() as s:
        rows = list(s.scalars(select(DupeMatch)))
    assert rows and {r.run_id for r in rows} == {doc["run"]}
    pairs = {frozenset((r.a, r.b)) for r in rows}
    assert frozenset((sha["fi005_cut.mp4"], sha["fi005.mp4"])) in pairs
    flip = next(r for r in rows if sha["fi005_flip.mp4"] in (r.a, r.b))
    assert any("mirrored" in t for t in flip.transforms) and flip.frames
    rep = verify_case(case)
    assert rep.ok, rep.problems


def test_an_edited_match_fails_verify(copies, tmp_path):
    case, _, sha = copies
    clone_root = tmp_path / "clone"
    shutil.copytree(case.root, clone_root)
    clone = Case(clone_root)
    with clone.engine.begin() as conn:  # an insider moves the copy's offset, past the application
        conn.execute(text("UPDATE dupe_matches SET offset_s = offset_s + 30 WHERE a = :a"), {"a": sha["fi005_cut.mp4"]})
    found = {(p.kind, p.where) for p in verify_case(clone).problems}
    assert ("record.mismatch", f"dupe_matches:{sha['fi005_cut.mp4']}") in found


def test_a_rerun_replaces_the_previous_run_in_the_ledger(copies):
    case, doc, _ = copies
    again = clusters(case, actor="tester")
    assert again["run"] != doc["run"]
    with case.sessions() as s:
        assert {r for (r,) in s.execute(select(DupeMatch.run_id).distinct())} == {again["run"]}
    runs = [e for e in case.ledger.entries() if e["action"] == "dupes.run"]
    assert runs[-1]["details"]["run"] == again["run"]
    assert {"run": doc["run"], "matches": doc["matches"]} in runs[-1]["details"]["replaced"]
    rep = verify_case(case)
    assert rep.ok, rep.problems


def test_clusters_map_times_and_give_frame_pairs(copies):
    case, _, sha = copies
    with case.sessions() as s:
        cl = load_clusters(s)
    src, cut = sha["fi005.mp4"], sha["fi005_cut.mp4"]
    assert cl.members[cut].source == src and cl.members[cut].relation == "clip"
    m = next(r for r in cl.matches if {r.a, r.b} == {cut, src})
    f = m.frames[len(m.frames) // 2]
    assert abs(cl.aligned(cut, src, f["a_t"] if m.a == cut else f["b_t"])
               - (f["b_t"] if m.a == cut else f["a_t"])) < 0.5
    panel = member_panel(cl, cut, case.display_names())
    row = next(p for p in panel if p["sha256"] == src)
    assert row["pairs"] and row["offset_s"] > 0.5  # the cut starts some seconds into its source

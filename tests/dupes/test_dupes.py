"""Near-duplicates on real CCTV clips: re-encode, 360p copy, cut clip and greyscale copy
cluster with their source; unrelated clips do not."""

import re
import shutil

import pytest

from custodes.dupes.index import clusters, hash_videos
from custodes.dupes.variants import VARIANTS, make_variants
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from tests.conftest import cli_json


def source_of(name):
    return re.sub(r"_(reencode|360p|cut|grey)$", "", name.rsplit(".", 1)[0])


@pytest.fixture(scope="module")
def dupes_case(tmp_path_factory, fight_surv):
    d = tmp_path_factory.mktemp("dupes")
    drive = d / "drive"
    # sources from different YouTube videos (fi001: video 1, fi005: video 2, fi013: video 3)
    sources = [fight_surv / "fight" / n for n in ("fi001.mp4", "fi005.mp4", "fi013.mp4")]
    unrelated = [fight_surv / "noFight" / n for n in ("nofi010.mp4", "nofi050.mp4", "nofi100.mp4")]
    for f in sources + unrelated:
        (drive / "orig").mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, drive / "orig" / f.name)
    for f in sources:
        make_variants(f, drive / "copies")
    case = Case.init(d / "case", "tester")
    Ingestor(case, "tester").run([drive])
    hash_videos(case)
    return case, [s.stem for s in sources], [u.stem for u in unrelated]


def test_every_variant_clusters_with_its_source_and_nothing_else(dupes_case):
    case, sources, unrelated = dupes_case
    doc = clusters(case)
    groups = [sorted(n for m in c["members"] for n in m["names"]) for c in doc["clusters"]]
    for src in sources:
        mine = [g for g in groups if f"{src}.mp4" in g]
        assert len(mine) == 1, (src, groups)
        assert sorted(mine[0]) == sorted([f"{src}.mp4"] + [f"{src}_{v}.mp4" for v in VARIANTS])
    clustered = {n for g in groups for n in g}
    assert not clustered & {f"{u}.mp4" for u in unrelated}


def test_cut_clip_offset_is_where_it_was_cut(dupes_case):
    case, sources, _ = dupes_case
    for c in clusters(case)["clusters"]:
        by_name = {n: m for m in c["members"] for n in m["names"]}
        src = next(n for n in by_name if re.fullmatch(r"fi\d+\.mp4", n))
        cut = by_name[src.replace(".mp4", "_cut.mp4")]
        assert cut["relation"] == "clip"
        expected = 0.2 * by_name[src]["duration_s"]  # make_variants cuts from 20 % in
        assert cut["offset_in_source_s"] == pytest.approx(expected, abs=0.35)


def test_dupes_cli_json(dupes_case):
    case, *_ = dupes_case
    doc = cli_json("dupes", str(case.root))
    assert len(doc["clusters"]) == 3
    m = doc["clusters"][0]["members"][0]
    assert set(m) >= {"sha256", "names", "relation", "offset_in_source_s", "duration_s", "resolution"}


def test_tmk_video_fingerprints_agree_with_the_frame_alignment(dupes_case):
    """The TMK video-level score finds the cut clip's offset independently of the frame index."""
    from custodes.dupes.index import tmk_scores

    case, sources, unrelated = dupes_case
    doc = clusters(case)
    for c in doc["clusters"]:
        for m in c["matches"]:
            t = m["tmk"]
            assert t is not None and t["tmk_level2"] > 0.5
            assert abs(t["tmk_offset_s"] - m["offset_s"]) <= 0.5
    names = case.display_names()
    by = {n: sha for sha, n in names.items()}
    unrel = tmk_scores(case, by[f"{sources[0]}.mp4"], by[f"{unrelated[0]}.mp4"], 5.0)
    same = tmk_scores(case, by[f"{sources[0]}_grey.mp4"], by[f"{sources[0]}.mp4"], 5.0)
    assert same["tmk_level2"] > unrel["tmk_level2"] + 0.2

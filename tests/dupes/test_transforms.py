"""Near-duplicates that survive what a leak does to a video, on a real CCTV clip (fight-surv fi005) and
the 13 variants ``custodes.dupes.variants`` makes of it; other moments of the same camera must not pair.

fi005-fi012 and nofi150 are cut from one YouTube recording of one fixed camera (the data set's
videos.txt): the same room, the same light, different moments."""

import json
import shutil

import numpy as np
import pytest

from custodes.analyze import pdq
from custodes.dupes import verify as vf
from custodes.dupes.index import clusters, hash_videos
from custodes.dupes.variants import ALL_VARIANTS, make_variants
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

SOURCE = "fi005"
SAME_CAMERA = ("fi006", "fi009", "nofi150")


@pytest.fixture(scope="module")
def leak(tmp_path_factory, fight_surv):
    d = tmp_path_factory.mktemp("leak")
    drive = d / "drive"
    (drive / "orig").mkdir(parents=True)
    for n in (SOURCE, *SAME_CAMERA, "nofi010"):
        shutil.copy2(fight_surv / ("noFight" if n.startswith("nofi") else "fight") / f"{n}.mp4", drive / "orig")
    make_variants(fight_surv / "fight" / f"{SOURCE}.mp4", drive / "copies", ALL_VARIANTS)
    case = Case.init(d / "case", "tester")
    Ingestor(case, "tester").run([drive])
    hash_videos(case)
    doc = clusters(case)
    names = case.display_names()
    return case, doc, names


def _cluster_of(doc, name):
    for c in doc["clusters"]:
        if any(name in m["names"] for m in c["members"]):
            return c
    return None


def _matches_of(doc, names, variant):
    c = _cluster_of(doc, f"{SOURCE}_{variant}.mp4")
    assert c is not None, variant
    return [m for m in c["matches"] if f"{SOURCE}_{variant}.mp4" in (names[m["a"]], names[m["b"]])]


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_every_transformation_clusters_with_its_source(leak, variant):
    case, doc, names = leak
    c = _cluster_of(doc, f"{SOURCE}.mp4")
    assert c is not None
    assert f"{SOURCE}_{variant}.mp4" in {n for m in c["members"] for n in m["names"]}


def test_other_moments_of_the_same_camera_do_not_pair(leak):
    case, doc, names = leak
    clustered = {n for c in doc["clusters"] for m in c["members"] for n in m["names"]}
    assert not clustered & {f"{n}.mp4" for n in (*SAME_CAMERA, "nofi010")}
    assert len(doc["clusters"]) == 1


@pytest.mark.parametrize(("variant", "words"), [
    ("flip", "mirrored"), ("crop80", "cropped to 80 %"), ("crop60", "cropped to 60 %"),
    ("pad916", "letterbox"), ("pad", "borders"), ("text", "overlay"), ("rotate3", "rotated 3 degrees"),
    ("speed125", "1.25x"), ("screen", "perspective"), ("grey", "greyscale"),
])
def test_each_match_says_what_was_done(leak, variant, words):
    case, doc, names = leak
    said = [t for m in _matches_of(doc, names, variant) for t in m["transforms"]]
    assert any(words in t for t in said), (variant, said)


def test_matches_carry_their_evidence_and_offset(leak):
    case, doc, names = leak
    (m,) = [m for m in _matches_of(doc, names, "cut") if {names[m["a"]], names[m["b"]]} ==
            {f"{SOURCE}.mp4", f"{SOURCE}_cut.mp4"}] or _matches_of(doc, names, "cut")[:1]
    members = {n: x for x in _cluster_of(doc, f"{SOURCE}.mp4")["members"] for n in x["names"]}
    expected = 0.2 * members[f"{SOURCE}.mp4"]["duration_s"]
    assert members[f"{SOURCE}_cut.mp4"]["offset_in_source_s"] == pytest.approx(expected, abs=0.3)
    assert len(m["frames"]) >= 3
    for f in m["frames"]:
        assert f["b_t"] == pytest.approx(m["rate"] * f["a_t"] + m["offset_s"], abs=0.5)
    v = m["verification"]
    assert v["ok"] and v["motion_corr"] > 0.5 and v["inliers"] >= vf.MIN_INLIERS


def test_dupes_json_is_strict_and_explains(leak):
    case, *_ = leak
    proc = run_cli("dupes", str(case.root), "--json")
    assert proc.returncode == 0, proc.stderr

    def refuse(c):
        raise ValueError(c)

    doc = json.loads(proc.stdout, parse_constant=refuse)  # no NaN, no Infinity
    m = doc["clusters"][0]["matches"][0]
    assert {"transforms", "frames", "verification", "margin_bits", "rate", "views"} <= set(m)


def test_verification_refuses_another_moment_of_the_same_camera(fight_surv):
    """Forced onto the pixels directly: fi009 and fi010 (consecutive moments of one camera) look alike
    (same room) but what moves differs; fi009 against its own re-encode passes."""
    ref9, ref10 = fight_surv / "fight" / "fi009.mp4", fight_surv / "fight" / "fi010.mp4"
    ts = [0.3, 0.8, 1.3, 1.8]
    a = vf.grab("fi009", ref9, 2.9, ts, None)
    a2 = vf.grab("fi009", ref9, 2.9, [t + vf.MOTION_DT for t in ts], None)
    b = vf.grab("fi010", ref10, 3.4, ts, None)
    b2 = vf.grab("fi010", ref10, 3.4, [t + vf.MOTION_DT for t in ts], None)
    other = vf.verify(a, a2, b, b2, mirrored=False, view_scales=(1.0, 1.0))
    assert other.inliers >= vf.MIN_INLIERS  # the same room: the pictures register
    assert not other.ok, other
    same = vf.verify(a, a2, a, a2, mirrored=False, view_scales=(1.0, 1.0))
    assert same.ok and same.motion_corr > 0.9


def test_borders_are_found_over_the_clip():
    rng = np.random.default_rng(1)
    frames = np.zeros((6, 100, 60), np.uint8)
    frames[:, 20:80, :] = rng.integers(0, 255, size=(6, 60, 60))  # picture in a 9:16-style letterbox
    assert pdq.find_borders(frames) == (20, 20, 0, 0)
    assert pdq.find_borders(np.zeros((3, 40, 40), np.uint8)) == (0, 0, 0, 0)  # all flat: no borders


@pytest.mark.parametrize("variant", ("reencode", "360p", "cut", "grey", "crop80", "flip", "text", "speed125"))
def test_a_copy_not_filmed_off_a_screen_is_not_said_to_be(leak, variant):
    """A re-encode, a downscale or a cut registers with a few per cent of spurious keystone; calling that a
    screen recording would be a false statement about how the evidence was copied."""
    case, doc, names = leak
    said = [t for m in _matches_of(doc, names, variant) for t in m["transforms"]]
    assert not any("perspective" in t for t in said), (variant, said)

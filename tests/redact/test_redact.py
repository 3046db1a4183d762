"""Face redaction on real faces composited into real CCTV: every face frame covered, original untouched."""

import hashlib
import json

import cv2
import numpy as np
import pytest

from custodes.export.package import export_package, verify_package
from custodes.ingest.pipeline import Ingestor
from custodes.redact.derive import redact_item
from custodes.redact.faces import apply_mask, redact_video
from custodes.redact.testclips import box_mask, composite_face_clip, covered, mask_figures
from custodes.store.case import Case
from custodes.store.verify import verify_case

skimage_data = pytest.importorskip("skimage.data")  # the real face; a dev dependency


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, fight_surv):
    d = tmp_path_factory.mktemp("faces")
    clip = d / "face.mp4"
    truth = composite_face_clip(fight_surv / "noFight" / "nofi020.mp4", clip)
    return clip, truth


def test_every_face_frame_is_covered(face_clip, tmp_path):
    clip, truth = face_clip
    res = redact_video(clip, tmp_path / "out.mp4", keep_masks=True)
    assert res.frames == len(truth)
    hits = [covered(m, b) for m, b in zip(res.masks, truth, strict=True)]
    assert all(hits), f"faces not covered in frames {[i for i, h in enumerate(hits) if not h]}"
    # tracked, not the union of the boxes around each frame: the mask stays on the face
    fig = mask_figures([box_mask(m, 640, 360) for m in res.masks], truth)
    assert fig["faces_under_90pct"] == 0 and fig["outside_over_face_area"] < 3, fig


def test_redacted_pixels_do_not_resemble_the_face():
    face = skimage_data.astronaut()[30:230, 130:300].copy()
    for mode in ("blur", "pixelate", "solid"):
        out = apply_mask(face, [(0, 0, face.shape[1], face.shape[0])], mode)
        corr = np.corrcoef(out.astype(float).ravel(), face.astype(float).ravel())[0, 1]
        assert np.isnan(corr) or corr < 0.9, mode
        if mode == "pixelate":  # all that is left: 6 x 6 flat blocks
            assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 36
        else:  # no facial edges survive
            assert cv2.Canny(out, 100, 200).mean() < 0.1 * cv2.Canny(face, 100, 200).mean(), mode


def test_redact_item_makes_a_linked_derivative_and_exports(tmp_path, face_clip):
    clip, _ = face_clip
    case = Case.init(tmp_path / "case", "tester")
    Ingestor(case, "tester").run([clip])
    original = hashlib.sha256(clip.read_bytes()).hexdigest()
    before = case.store.path_for(original).read_bytes()
    doc = redact_item(case, original[:10], "editor", faces="pixelate", audio="remove")
    assert doc["original"] == original and doc["derivative"] != original
    assert case.store.path_for(original).read_bytes() == before  # the original is never touched
    assert doc["frames_with_faces"] == doc["frames"] and doc["lowest_confidence_frames"]
    ev = [e for e in case.ledger.entries() if e["action"] == "redact"]
    assert ev[0]["subject"] == original and ev[0]["details"]["derivative"] == doc["derivative"]
    assert verify_case(case).ok
    # asked for again (a rerun after a kill, a second click): the copy already made, no second derivative
    again = redact_item(case, original[:10], "editor", faces="pixelate", audio="remove")
    assert again["derivative"] == doc["derivative"] and again["already_made"]
    assert [e["action"] for e in case.ledger.entries()].count("redact") == 1
    # Content Credentials: the original is the parent ingredient, named by its hash
    from custodes.redact.credentials import read_credentials

    cred = read_credentials(case.store.path_for(doc["derivative"]))
    ing = cred["manifest"]["ingredients"]
    assert [i["relationship"] for i in ing] == ["parentOf"] and ing[0]["instance_id"] == f"sha256:{original}"
    custom = {a["label"]: a["data"] for a in cred["manifest"]["assertions"]}
    assert custom["org.custodes.original"]["sha256"] == original
    actions = [a.get("parameters", {}).get("description", "") for a in custom["c2pa.actions.v2"]["actions"]]
    assert any("faces pixelate" in a for a in actions) and "audio removed" in actions
    assert cred["validation_state"] == "Valid"  # signed by the case CA, which readers mark as untrusted
    pkg = tmp_path / "pkg"
    export_package(case, pkg, "editor", items=[doc["derivative"][:12]])
    assert verify_package(pkg).ok
    items = json.loads((pkg / "items.json").read_text())
    assert items[0]["derived_from"]["original"] == original

"""Pose: landmarks from real CCTV through the isolated MediaPipe environment, the person-down and strike
rules on tracks with known motion, and the second look at the top of a case's queue."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from custodes.analyze import pose
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.store.db import AnalysisRun, Job
from custodes.triage.runner import queue_rows, run_pose, run_triage

needs_pose = pytest.mark.skipif(not pose.available(), reason="pose environment missing (make pose)")


def _track(seconds: float, torso_deg: float, wrist_speed: float) -> pose.PoseTrack:
    """A person whose torso is at ``torso_deg`` from upright and whose right wrist moves at ``wrist_speed``
    torso lengths per second (left and right alternate), sampled at pose.FPS."""
    n = int(seconds * pose.FPS)
    t = np.arange(n) / pose.FPS
    lm = np.zeros((n, 33, 4), np.float32)
    lm[:, :, 3] = 0.9
    a = np.radians(torso_deg)
    hip = np.array([0.5, 0.6])
    sh = hip + 0.2 * np.array([np.sin(a), -np.cos(a)])
    for i, p in ((pose.L_HIP, hip), (pose.R_HIP, hip), (pose.L_SH, sh), (pose.R_SH, sh), (pose.NOSE, sh),
                 (pose.L_WR, hip), (pose.L_AN, hip), (pose.R_AN, hip)):
        lm[:, i, :2] = p
    step = wrist_speed * 0.2 / pose.FPS
    lm[:, pose.R_WR, 0] = 0.5 + step * (np.arange(n) % 2)
    lm[:, pose.R_WR, 1] = 0.4
    return pose.PoseTrack(t, lm)


def test_person_on_the_floor_and_strikes_are_found():
    assert pose.signals(_track(3, 0, 0)) == []  # standing still
    down = pose.signals(_track(3, 85, 0))
    assert [k for k, *_ in down] == ["pose_down"] and down[0][2] - down[0][1] >= 2.9
    assert {k for k, *_ in pose.signals(_track(2, 5, 12))} == {"pose_strike"}
    assert pose.signals(_track(0.5, 85, 0)) == []  # a bend, not a fall: under a second
    f = pose.clip_features(_track(2, 85, 12))
    assert f.shape == (len(pose.FEATURE_NAMES),) and np.isfinite(f).all()
    assert dict(zip(pose.FEATURE_NAMES, f, strict=True))["pose_down_frac"] == 1.0


@needs_pose
def test_real_cctv_is_tracked(fight_surv):
    tr = pose.track(fight_surv / "fight" / "fi001.mp4")
    assert len(tr.times) >= 15
    # CCTV people are small: the single-person model finds one in about a third of these frames
    assert np.isfinite(tr.landmarks[:, 0, 0]).mean() > 0.2
    assert np.isfinite(pose.clip_features(tr)).all()


@needs_pose
def test_second_look_adds_reasons_and_skips_what_is_current(tmp_path, fight_surv):
    src = tmp_path / "src"
    src.mkdir()
    (src / "fi001.mp4").write_bytes((fight_surv / "fight" / "fi001.mp4").read_bytes())
    case = Case.init(tmp_path / "case", "tester")
    Ingestor(case, "tester").run([src])
    run_triage(case, "tester")
    before = {r["score"] for r in queue_rows(case)["segments"]}
    rep = run_pose(case, "tester", top=5, min_score=0.0)
    assert rep.videos == 1 and rep.segments >= 1 and rep.strikes >= 1 and not rep.failed
    rows = queue_rows(case)["segments"]
    assert {r["score"] for r in rows} == before  # reasons, not scores
    assert any("fast strike" in t for r in rows for t in r["reasons"])
    again = run_pose(case, "tester", top=5, min_score=0.0)
    assert again.videos == 0 and again.skipped_current == 1
    with case.sessions() as s:
        jobs = list(s.scalars(select(Job).where(Job.kind == "pose")))
        run = s.scalars(select(AnalysisRun).where(AnalysisRun.analyzer == "pose")).one()
    assert [j.status for j in jobs] == ["done", "done"] and run.job_id in {j.id for j in jobs}

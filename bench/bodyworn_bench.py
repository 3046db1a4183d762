"""Body-worn cameras: the violence score on calm footage that moves because its wearer does.

Two rows (``CUSTODES_BENCH_ONLY=bodyworn``; also part of the full ``make bench``):

1. The robustness protocol (``robustness_bench.run``: LightGBM trained as shipped, on the clean clips of
   fight-surv folds and the same clips with the training draw of wearer motion, grouped 5-fold, scored on the
   held-out clips with the bench's own draw) with the simulated wearer motion of
   ``triage/wearer_motion.py``, all of it and
   each part alone (the parts on the calm clips only: what each adds to their mean p), so the table shows
   what hurts.
2. False alarms per hour: calm clips, each with its own wearer motion, concatenated into one video of at
   least 10 minutes (H.264, libx264 veryfast, each clip at its own frame times), analysed by the real
   triage (``score.analyze_video``, what ``custodes triage`` runs per video), against the same clips without
   wearer motion in the same run. A segment is a stretch scoring >= ``score.SEGMENT_THRESHOLD`` (the
   "best window" that triage keeps for every video is not counted unless it reaches the threshold).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import robustness_bench

from custodes.analyze import motion
from custodes.media.decode import gray_frames
from custodes.triage import wearer_motion as bodyworn

LONG_SIZE = (480, 360)  # the calm video's size: twice the analysed one (most clips are 480x360 or larger)
MIN_LONG_S = 600.0  # at least 10 minutes of footage
PARTS_EVERY = 2
BENCH = ("violence model on body-worn footage (simulated wearer motion; LightGBM trained as shipped, on clean clips "
         "and another draw of wearer motion, tested moved; grouped 5-fold)")
FALSE_ALARMS = "false alarms per hour of calm footage with simulated wearer motion (real triage)"


def _clip_frames(path: Path, name: str, moved: bool) -> Iterator[tuple[float, np.ndarray]]:
    frames = gray_frames(path, fps=motion.FPS, size=LONG_SIZE)
    return bodyworn.apply(frames, name) if moved else frames


def write_calm_video(clips: list[Path], dst: Path, moved: bool, min_s: float = MIN_LONG_S) -> dict:
    """The clips one after another in one H.264 file at ``LONG_SIZE`` (grey), each at its own frame times,
    repeated (each repeat with new wearer motion: the name is suffixed with the pass) until ``min_s``."""
    ms = Fraction(1, 1000)
    offset, passes, n_clips = 0.0, 0, 0
    with av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height = LONG_SIZE
        vs.pix_fmt = "yuv420p"
        vs.time_base = ms
        vs.codec_context.time_base = ms
        vs.options = {"preset": "veryfast", "crf": "23"}
        last_pts = -1
        while offset < min_s:
            for clip in clips:
                times: list[float] = []
                for t, g in _clip_frames(clip, f"{clip.stem}#{passes}", moved):
                    times.append(t)
                    pts = max(last_pts + 1, round((offset + t - times[0]) * 1000))
                    frame = av.VideoFrame.from_ndarray(g, format="gray").reformat(format="yuv420p")
                    frame.pts, frame.time_base, last_pts = pts, ms, pts
                    out.mux(vs.encode(frame))
                if not times:
                    continue
                step = times[-1] - times[-2] if len(times) > 1 else 1 / motion.FPS
                offset += times[-1] - times[0] + step
                n_clips += 1
            passes += 1
        out.mux(vs.encode(None))
    return {"clips": n_clips, "passes": passes, "footage_s": round(offset, 1)}


def false_alarms(clips: list[Path], work: Path, label: str, min_s: float = MIN_LONG_S) -> dict:
    """Segments per hour of ``clips`` concatenated, with and without wearer motion, by ``analyze_video``."""
    import cv2

    from custodes.triage import score

    cv2.setNumThreads(1)  # one core, as one triage worker
    out: dict = {"calm_clips": label}
    for moved in (False, True):
        key = "with_wearer_motion" if moved else "without_wearer_motion"
        path = work / f"calm-{'moved' if moved else 'still'}.mp4"
        made = write_calm_video(clips, path, moved, min_s)
        t0 = time.process_time()
        res = score.analyze_video(path)
        cpu = time.process_time() - t0
        if not res.ok:
            out[key] = {"error": res.error, **made}
            continue
        segs = [s for s in res.segments if s.score >= score.SEGMENT_THRESHOLD]
        p_visual = [s.value for s in res.signals if s.kind == "p_visual"]
        hours = res.duration_s / 3600
        out[key] = {**made, "duration_s": round(res.duration_s, 1), "analysed_s": round(res.analysed_s, 1),
                    "windows": res.stats.get("windows", 0),
                    "windows_over_threshold": sum(1 for s in res.signals if s.kind == "score"
                                                  and s.value >= score.SEGMENT_THRESHOLD),
                    "segments": len(segs), "segments_per_hour": round(len(segs) / hours, 1),
                    "flagged_s": round(sum(s.end_s - s.start_s for s in segs), 1),
                    "flagged_share": round(sum(s.end_s - s.start_s for s in segs) / res.duration_s, 4),
                    "peak_score": round(res.peak, 3),
                    "mean_p_visual": round(float(np.mean(p_visual)), 3) if p_visual else None,
                    "analysis_cpu_s": round(cpu, 1)}
    return out


def _trained_on() -> str:
    from custodes.triage import cell_cnn, score, video_check

    lgb = json.loads((score.MODEL_DIR / f"{score.LGB_MODEL_NAME}.json").read_text())
    cnn = json.loads((score.MODEL_DIR / f"{cell_cnn.MODEL_NAME}.json").read_text())
    head = json.loads((video_check.MODEL_DIR / f"{video_check.MODEL_NAME}.json").read_text())
    return (f"{score.LGB_MODEL_NAME}: {lgb.get('data')}; {cell_cnn.MODEL_NAME}: {cnn.get('data')}; "
            f"{video_check.MODEL_NAME}: {head.get('data')}")


def run(data: Path, workers: int = 2, cnn_folds: list[list] | None = None, hockey: Path | None = None,
        work: Path | None = None) -> list[dict]:
    """Both rows (see the module's docstring); ``hockey``: a Hockey Fights folder whose calm clips make a
    second calm video (a broadcast camera)."""
    from custodes.triage import score

    parts = [c for c in robustness_bench.BODYWORN_PARTS if c != robustness_bench.BODYWORN]
    hand = [c for c in parts if robustness_bench.BODYWORN_PARTS[c] == ("hand",)]
    calm = sorted((data / "noFight").glob("*.mp4"))
    with_hand = {f.stem for f in calm if bodyworn.wearer_for(f.stem).hand is not None}
    # the parts alone on every PARTS_EVERY-th calm clip (the hand on the calm clips that have one), each beside
    # the clean mean p of the same clips: what each part adds, at a fraction of a full condition's cost
    some = {f.stem for f in calm[::PARTS_EVERY]}
    table = robustness_bench.run(data, workers, cnn_folds, conditions=[robustness_bench.BODYWORN, *parts],
                                 only_clips={c: with_hand if c in hand else some for c in parts}, bench=BENCH,
                                 train_with_wearer_motion=True)
    table["wearer_motion"] = (f"{bodyworn.VERSION} (triage/wearer_motion.py), per clip seeded by its name: bob 2-4 px "
                              "at 1.5-2 Hz, sway 1.5-3 px and roll 1-3 deg at half that, walk zoom 2-5 %/s, a "
                              "turn of 30-90 deg/s peak over 0.5-0.9 s, a hand over the lens in about a third of "
                              "clips, fisheye k 0.2-0.35 (px at 240x180)")
    table["parts_alone"] = (f"each part alone on {len(some)} calm clips (every {PARTS_EVERY}nd), the hand on the "
                            f"{len(with_hand)} calm clips that have one: calm clips' mean p beside the clean mean p "
                            "of the same clips (no AUC)")
    with tempfile.TemporaryDirectory(dir=work) as d:
        fa = false_alarms(calm, Path(d), f"fight-surv noFight ({len(calm)} clips)")
        fa["bench"] = FALSE_ALARMS
        fa["models"] = score.TRIAGE_VERSION
        fa["trained_on"] = _trained_on()
        fa["caveat"] = ("both sources' calm clips were seen, still, in training by every model named in trained_on (an "
                        "optimistic figure: the wearer motion is what they never saw)")
        fa["segment_threshold"] = score.SEGMENT_THRESHOLD
        if hockey is not None and (hockey / "noFight").is_dir():
            hc = sorted((hockey / "noFight").glob("*.mp4"))
            fa["hockey"] = false_alarms(hc, Path(d), f"Hockey Fights noFight ({len(hc)} clips)")
    return [table, fa]


def summary(rows: list[dict]) -> str:
    t, fa = rows
    lines = [t["bench"] + ": ROC AUC (calm clips' mean p) " + "; ".join(
        f"{k} {t['roc_auc'].get(k, '-')} ({v})" for k, v in t["calm_clips_mean_p"].items())]
    for c, v in t.get("calm_clips_subset", {}).items():
        lines.append(f"  {c}: {v['clips']} calm clips, mean p {v['mean_p']} (clean {v['clean_mean_p_same_clips']})")
    if "visual_score_roc_auc" in t:
        lines.append("  visual score: " + "; ".join(
            f"{k} {t['visual_score_roc_auc'].get(k, '-')} ({v})"
            for k, v in t["visual_score_calm_clips_mean_p"].items()))
    for src in (fa, fa.get("hockey")):
        if not src:
            continue
        cells = []
        for key in ("without_wearer_motion", "with_wearer_motion"):
            r = src[key]
            cells.append(f"{key.replace('_', ' ')}: " + (r["error"] if "error" in r else
                         f"{r['segments_per_hour']} segments/h ({r['segments']} in {r['duration_s']} s, "
                         f"{r['flagged_share']:.1%} of the time flagged, peak {r['peak_score']})"))
        lines.append(f"{fa['bench']}, {src['calm_clips']}: " + "; ".join(cells))
    return "\n".join(lines)

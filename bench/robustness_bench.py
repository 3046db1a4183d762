"""How the violence model holds up when the footage is worse than its training clips.

The model is trained on clean fight-surv clips. Here each held-out fold is shown degraded the way
detention footage often is — a low-resolution source, underexposure, heavy compression, a 10 fps
camera, a grainy night camera whose footage was then H.264 encoded, and (harsher than any encoder
leaves it) white noise on the analysed frames themselves — and scored by the model trained on the other
folds' *clean* clips (grouped by source video, as in ``make bench``'s cross-validation). The drop from
the clean AUC is what a user should expect on such footage before any retraining. The noisy conditions
run twice, with and without ``analyze.motion``'s noise smoothing, so that the remedy is measured
against its own baseline in the same run.

A body-worn camera's wearer motion (``triage/wearer_motion.py``: bob, sway, roll, walk zoom, turns, a hand over
the lens, fisheye) is a condition here too (``BODYWORN``, and each part alone, ``BODYWORN_PARTS``), measured
by ``bench/bodyworn_bench.py`` (its own part of ``make bench``: ``CUSTODES_BENCH_ONLY=bodyworn``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from custodes.analyze import motion
from custodes.analyze.motion import FPS, SIZE
from custodes.engine.local import worker_pool
from custodes.media.decode import gray_frames
from custodes.triage import wearer_motion as bodyworn

Frames = Iterator[tuple[float, np.ndarray]]


def _low_res(frames: Frames) -> Frames:  # an 80x60 source (a distant, old camera), scaled up as the pipeline would
    for t, f in frames:
        yield t, cv2.resize(cv2.resize(f, (80, 60), interpolation=cv2.INTER_AREA), SIZE, interpolation=cv2.INTER_LINEAR)


def _noisy(frames: Frames, sigma: float = 8.0) -> Frames:  # white noise on the analysed frames themselves
    rng = np.random.default_rng(0)
    for t, f in frames:
        yield t, np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8)


def night_copy(src: str, dst: str, sigma: float = 20.0, crf: int = 28) -> None:
    """``src`` as a grainy night camera records it: grey, noise of std ``sigma`` at the source's own
    resolution, H.264 at CRF ``crf`` (the encoder removes much of the grain, as a real one does). At the
    analysed 240x180 what is left reads as noise of std ~2-6 (motion.noise_sigma)."""
    rng = np.random.default_rng(2)
    with av.open(src) as c, av.open(dst, "w") as out:
        vs = c.streams.video[0]
        os_ = out.add_stream("libx264", rate=vs.average_rate or 25)
        os_.width, os_.height = vs.codec_context.width // 2 * 2, vs.codec_context.height // 2 * 2
        os_.pix_fmt = "yuv420p"
        os_.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in c.decode(vs):
            g = frame.to_ndarray(format="gray")[:os_.height, :os_.width]
            g = np.clip(g + rng.normal(0, sigma, g.shape), 0, 255).astype(np.uint8)
            out.mux(os_.encode(av.VideoFrame.from_ndarray(g, format="gray").reformat(format="yuv420p")))
        out.mux(os_.encode(None))


def _dark(frames: Frames) -> Frames:  # underexposed: a quarter of the light, quantised, a little noise
    rng = np.random.default_rng(1)
    for t, f in frames:
        yield t, np.clip(np.round(f * 0.25) + rng.normal(0, 2.0, f.shape), 0, 255).astype(np.uint8)


def _compressed(frames: Frames) -> Frames:  # blocky, smeared: JPEG quality 15 on every frame
    for t, f in frames:
        ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 15])
        yield t, cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


CONDITIONS: dict[str, Callable[[Frames], Frames]] = {
    "low resolution (80x60 source)": _low_res, "underexposed (x0.25)": _dark,
    "heavy compression (JPEG q15)": _compressed,
    "white noise on analysed frames (sigma 4)": lambda frames: _noisy(frames, 4.0),
    "white noise on analysed frames (sigma 8)": _noisy,
}
TEN_FPS = "10 fps camera"
NIGHT = "night camera (grain sigma 20 at source, H.264 CRF 28)"
BODYWORN = "body-worn (simulated wearer motion: bob, sway, turns, hand occlusion, fisheye)"
# each part of the wearer motion alone (the camera-motion parts on a slightly zoomed frame, as in BODYWORN)
BODYWORN_PARTS: dict[str, tuple[str, ...]] = {
    BODYWORN: bodyworn.PARTS,
    "body-worn, bob and sway only (translation)": ("bob",),
    "body-worn, roll and walk zoom only": ("roll",),
    "body-worn, turn only (fast pan)": ("turn",),
    "body-worn, hand occlusion only": ("hand",),
    "body-worn, fisheye only": ("fisheye",),
}
# the draw of wearer motion the shipped LightGBM model trains on (dataset.WEARER_SEED + the clip's name), not the
# one it is tested on: with train_with_wearer_motion, each training fold's clips are added moved that way
TRAINING_DRAW = "training draw of wearer motion"
UNSMOOTHED = ", without noise smoothing"  # the remedy's baseline: no smoothing (so also the clean-footage flow window)


Tracked = tuple[np.ndarray | None, np.ndarray]  # LightGBM features, normalised CNN cells


def _features(args: tuple[str, str]) -> Tracked:
    path, condition = args
    cv2.setNumThreads(1)
    floor = motion.NOISE_FLOOR
    if condition.endswith(UNSMOOTHED):
        condition = condition.removesuffix(UNSMOOTHED)
        motion.NOISE_FLOOR = float("inf")
    try:
        return _degraded_features(path, condition)
    finally:
        motion.NOISE_FLOOR = floor


def _tracked(frames: Frames) -> Tracked:
    from custodes.triage.cell_cnn import normalise
    from custodes.triage.dataset import features_and_cells

    feats, cells = features_and_cells(frames)
    return feats, normalise(cells)


def _degraded_features(path: str, condition: str) -> Tracked:
    if condition == TEN_FPS:  # frames come 0.1 s apart, as from a 10 fps source
        frames: Frames = gray_frames(Path(path), fps=10.0, size=SIZE)
    elif condition == NIGHT:
        with tempfile.TemporaryDirectory() as tmp:
            night_copy(path, f"{tmp}/night.mp4")
            return _tracked(gray_frames(Path(f"{tmp}/night.mp4"), fps=FPS, size=SIZE))
    elif condition == TRAINING_DRAW:
        from custodes.triage.dataset import WEARER_SEED

        frames = bodyworn.apply(gray_frames(Path(path), fps=FPS, size=SIZE), WEARER_SEED + Path(path).stem)
    elif condition in BODYWORN_PARTS:  # each clip moves its own way, seeded by its name
        frames = bodyworn.apply(gray_frames(Path(path), fps=FPS, size=SIZE), Path(path).stem,
                                BODYWORN_PARTS[condition])
    else:
        frames = gray_frames(Path(path), fps=FPS, size=SIZE)
        if condition:
            frames = CONDITIONS[condition](frames)
    return _tracked(frames)


def run(data: Path, workers: int = 2, cnn_folds: list[list] | None = None, conditions: list[str] | None = None,
        calm_only: tuple[str, ...] = (), only_clips: dict[str, set[str]] | None = None,
        bench: str = "violence model on degraded footage (trained clean, tested degraded; grouped 5-fold)",
        train_with_wearer_motion: bool = False) -> dict:
    """``cnn_folds``: the CNN networks of each fold of shuffle 0 (from the cross-validation stage, whose
    splits these are); with them the visual score triage uses (mean of LightGBM and CNN) is measured too.

    ``conditions``: which to measure (the clean footage, "", always; default: every degradation above but the
    body-worn ones). Those in ``calm_only`` are measured on the calm clips only (their calm clips' mean p, no
    AUC: half the cost), and those in ``only_clips`` on the calm clips of those names only (their mean p
    beside the clean mean p of the same clips: a hand that covers the lens in some clips).

    ``train_with_wearer_motion``: LightGBM is trained as the shipped model is, on each training fold's clean
    clips and the same clips with the training draw of wearer motion (``TRAINING_DRAW``)."""
    import lightgbm as lgb
    from sklearn.model_selection import StratifiedGroupKFold

    from custodes.triage.dataset import clip_files, source_groups, with_moved_copies
    from custodes.triage.metrics import roc_auc
    from custodes.triage.train import PARAMS, ROUNDS

    files, labels = clip_files(data)
    y = np.asarray(labels)
    groups = source_groups(data, [Path(f).stem for f in files])
    if conditions is None:
        noisy = [c for c in CONDITIONS if "noise" in c] + [NIGHT]
        conditions = ["", *CONDITIONS, TEN_FPS, NIGHT, *(c + UNSMOOTHED for c in noisy)]
    conditions = ["", *(c for c in conditions if c)]
    measured = conditions + [TRAINING_DRAW] * train_with_wearer_motion
    only_clips = only_clips or {}
    subset = {c: np.ones(len(y), bool) for c in measured}
    for c in calm_only:
        subset[c] = y == 0
    for c, names in only_clips.items():
        subset[c] = (y == 0) & np.isin([Path(f).stem for f in files], sorted(names))
    feats: dict[str, np.ndarray] = {}
    cells: dict[str, list[np.ndarray]] = {}
    with worker_pool(workers) as ex:
        for c in measured:
            todo = np.flatnonzero(subset[c])
            rows = list(ex.map(_features, [(files[i], c) for i in todo], chunksize=4))
            width = next(len(r) for r, _ in rows if r is not None)
            got = np.stack([r if r is not None else np.full(width, np.nan, np.float32) for r, _ in rows])
            # clips not measured in a condition keep their clean rows (they are not reported under it)
            feats[c] = feats[""].copy() if c else got
            feats[c][todo] = got
            if cnn_folds is not None and c != TRAINING_DRAW:
                # a clip too short to track scores as a blank one (two still pairs)
                tracked = [x if x.shape[1] else np.zeros((5, 2, *motion.GRID), np.float32) for _, x in rows]
                cells[c] = list(cells[""]) if c else tracked
                for i, x in zip(todo, tracked, strict=True):
                    cells[c][i] = x
    pred = {c: np.zeros(len(y)) for c in conditions}
    visual = {c: np.zeros(len(y)) for c in conditions}
    splits = StratifiedGroupKFold(5, shuffle=True, random_state=0).split(feats[""], y, groups)
    for k, (tr, te) in enumerate(splits):
        # the clean clips, and their moved copies where the shipped model has them
        rows = with_moved_copies(feats[""], y, tr, feats[TRAINING_DRAW] if train_with_wearer_motion else None)
        model = lgb.train(PARAMS, lgb.Dataset(*rows), ROUNDS)
        for c in conditions:
            pred[c][te] = model.predict(feats[c][te])
            if cnn_folds is not None:
                from custodes.triage.train_cnn import predict

                visual[c][te] = (pred[c][te] + predict(cnn_folds[k], [cells[c][i] for i in te])) / 2
    full = [c for c in conditions if c not in calm_only and c not in only_clips]

    def calm(p: dict[str, np.ndarray]) -> dict[str, float]:
        return {(c or "clean"): round(float(p[c][(y == 0) & subset[c]].mean()), 3) for c in conditions}

    def same_clips(p: dict[str, np.ndarray]) -> dict[str, dict[str, float | int]]:
        return {c: {"clips": int(subset[c].sum()), "mean_p": round(float(p[c][subset[c]].mean()), 3),
                    "clean_mean_p_same_clips": round(float(p[""][subset[c]].mean()), 3)} for c in only_clips}

    out: dict = {"bench": bench, "roc_auc": {(c or "clean"): round(roc_auc(y, pred[c]), 3) for c in full},
                 # false alarms: how far calm footage rises towards "fight" when degraded
                 "calm_clips_mean_p": calm(pred)}
    if only_clips:
        out["calm_clips_subset"] = same_clips(pred)
    if cnn_folds is not None:
        out["visual_score_roc_auc"] = {(c or "clean"): round(roc_auc(y, visual[c]), 3) for c in full}
        out["visual_score_calm_clips_mean_p"] = calm(visual)
        if only_clips:
            out["visual_score_calm_clips_subset"] = same_clips(visual)
    return out

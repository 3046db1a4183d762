"""Per-video analysis: signals, window scores and review segments.

``analyze_video`` is a pure function of one file (it runs in worker
processes and writes nothing); the caller stores what it returns.

1. Fast pass (no video decoding): bytes per second from demuxed packets (a
   motion proxy) and audio loudness per 0.5 s.
2. Candidate spans: the whole video when short, otherwise the seconds whose
   bitrate or loudness stands out from that video's own median, padded.
3. Full pass over candidate spans only: optical-flow motion per 2 s window
   (1 s hop) scored by two learned models, LightGBM on the motion features and
   a small CNN on the motion cell grids (``cell_cnn``), p_visual = their mean;
   audio events from YAMNet over the same spans. Scene cuts: keyframes over
   the whole video (fast), frame pairs inside the spans (``analyze.scene_cuts``).
   A second look (``video_check``): a pretrained video network (MC3-18) scores
   the video's best windows again and can raise their visual score.
4. Window score = 1 − (1 − 0.8·p_visual)(1 − 0.7·p_audio_event)(1 − loud_bonus),
   a fixed, documented combination (only p_visual is learned: the training
   data's audio comes from YouTube uploads and is not representative).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from custodes.analyze import audio_events, motion, scene_cuts
from custodes.media.decode import (
    DecodeError,
    audio_envelope,
    audio_samples,
    gray_frames,
    keyframe_cuts,
    packet_timeline,
)
from custodes.media.source import MediaRef
from custodes.triage import cell_cnn, video_check

MODEL_DIR = Path(__file__).parent / "models"
LGB_MODEL_NAME = "violence-motion-7-lgb-3"
# the visual score's models: each errs on other clips, and their mean ranks fight-surv better than either
# (grouped CV: LightGBM 0.89, CNN 0.86, mean 0.90-0.91)
MOTION_MODELS = f"{LGB_MODEL_NAME}+{cell_cnn.MODEL_NAME.removeprefix(f'violence-{motion.VERSION}-')}"
# what p_visual comes from: the motion models, and the video network's head where it checked a window.
# Versions are stored in columns of 64 characters (tests/triage/test_video_check.py checks they fit)
MODEL_NAME = f"{MOTION_MODELS}+{video_check.MODEL_NAME.removeprefix('violence-')}"
TRIAGE_VERSION = f"triage-6/{MODEL_NAME}/{audio_events.VERSION}"
DIFF_COLUMN = motion.PAIR_NAMES.index("frame_diff")
FULL_ANALYSIS_MAX_S = 180.0  # shorter videos are analysed end to end
PAD_S = motion.WINDOW_S  # one analysis window either side of every second that stands out
SEGMENT_THRESHOLD = 0.5
# a lull this short inside one event (a beating pauses, the camera turns away) does not split it in two
MERGE_GAP_S = motion.WINDOW_S
GAP_NOTE_S = 60.0  # a stretch this long without any video packet (a jump in the timestamps) is reported
BITRATE_FACTOR = 1.6  # seconds spending this many times the video's median inter-frame bits are candidates
LOUDNESS_OVER_MEDIAN_DB = 10.0
VISUAL_WEIGHT = 0.8
# grain (grey-level std at motion.SIZE) from which the queue says the visual score is less reliable: more
# than the training clips had, so frames were smoothed (a night camera after H.264 reads 2-6)
GRAINY_NOISE = motion.NOISE_FLOOR
AUDIO_WEIGHT = 0.7
# frames decoded in a row before their flow is computed: the decoder and the flow each keep their working
# set in cache for a while instead of evicting each other's every frame (decoding the spans took ~10 % less
# CPU; 32 small frames are 1.4 MB)
DECODE_BATCH = 32


class MotionModel:
    """The LightGBM model on motion features, its probabilities tempered by the temperature in its metadata
    (``triage.train.fit_temperature``: fitted across sources, so that unseen footage does not pile up at 1)."""

    def __init__(self, booster: Any, temperature: float) -> None:
        self.booster, self.temperature = booster, temperature

    def num_feature(self) -> int:
        return int(self.booster.num_feature())

    def predict(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.booster.predict(X, raw_score=True) / self.temperature))


@functools.lru_cache(maxsize=1)
def load_model() -> MotionModel:
    import lightgbm as lgb

    meta = json.loads((MODEL_DIR / f"{LGB_MODEL_NAME}.json").read_text())
    if meta["features"] != motion.FEATURE_NAMES:
        raise RuntimeError(f"model {LGB_MODEL_NAME} was trained on other features than {motion.VERSION}")
    return MotionModel(lgb.Booster(model_file=str(MODEL_DIR / f"{LGB_MODEL_NAME}.txt")),
                       float(meta.get("temperature", 1.0)))


def load_models() -> tuple[MotionModel, cell_cnn.CellCNN]:
    return load_model(), cell_cnn.load()


@dataclass
class SignalRow:
    analyzer: str
    version: str
    kind: str
    start_s: float
    end_s: float
    value: float
    data: dict[str, Any] | None = None


@dataclass
class SegmentRow:
    start_s: float
    end_s: float
    score: float
    reasons: list[dict[str, Any]]


@dataclass
class VideoResult:
    ok: bool
    error: str = ""
    duration_s: float = 0.0
    analysed_s: float = 0.0
    signals: list[SignalRow] = field(default_factory=list)
    segments: list[SegmentRow] = field(default_factory=list)
    peak: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


def _spans_from_mask(mask: np.ndarray, step: float, pad: float, duration: float,
                     at: np.ndarray | None = None) -> list[tuple[float, float]]:
    """Padded, merged spans of the steps ``mask`` selects: step ``i`` starts at ``i * step``, or at
    ``at[i] * step`` when ``at`` is given (the steps that hold something, sparse)."""
    spans: list[tuple[float, float]] = []
    for i in np.flatnonzero(mask):
        k = float(at[i]) if at is not None else float(i)
        a, b = max(0.0, k * step - pad), min(duration, (k + 1) * step + pad)
        if spans and a <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


def candidate_spans(duration: float, bitrate: np.ndarray, loud_db: np.ndarray | None,
                    loud_step: float, seconds: np.ndarray | None = None) -> list[tuple[float, float]]:
    """The spans worth decoding. ``bitrate``: video bytes per second, dense, or, with ``seconds``, only for
    the seconds that hold video (``PacketTimeline.seconds``). A video whose timestamps claim more than
    ``FULL_ANALYSIS_MAX_S`` but whose packets fill no more seconds than that (a jump in its timestamps) is
    analysed end to end where it has video: the runs of seconds that hold packets."""
    if duration <= FULL_ANALYSIS_MAX_S:
        return [(0.0, duration)]
    if seconds is not None and 0 < len(seconds) <= FULL_ANALYSIS_MAX_S:
        return _spans_from_mask(np.ones(len(seconds), bool), 1.0, 0.0, duration, seconds)
    med = float(np.median(bitrate[bitrate > 0])) if np.any(bitrate > 0) else 0.0
    mask_v = bitrate > BITRATE_FACTOR * med if med > 0 else bitrate > 0
    spans = _spans_from_mask(mask_v, 1.0, PAD_S, duration, seconds)
    if loud_db is not None and len(loud_db):
        mask_a = loud_db > float(np.median(loud_db)) + LOUDNESS_OVER_MEDIAN_DB
        spans += _spans_from_mask(mask_a, loud_step, PAD_S, duration)
    spans.sort()
    merged: list[tuple[float, float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _windows(a: float, b: float) -> list[tuple[float, float]]:
    if b - a <= motion.WINDOW_S + 0.5:
        return [(a, b)]
    out = []
    t = a
    while t + motion.WINDOW_S <= b + 1e-6:
        out.append((t, t + motion.WINDOW_S))
        t += 1.0
    return out


def _in_batches(frames: Iterator[tuple[float, np.ndarray]], n: int) -> Iterator[list[tuple[float, np.ndarray]]]:
    """``frames`` in lists of ``n``; when decoding fails, the frames decoded before it come first."""
    batch: list[tuple[float, np.ndarray]] = []
    try:
        for item in frames:
            batch.append(item)
            if len(batch) == n:
                yield batch
                batch = []
    except DecodeError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _audio_events(path: MediaRef, a: float, b: float) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """Patch start times and group probabilities over [a, b), in 60 s chunks (bounded memory)."""
    model = audio_events.AudioEventModel.load()
    times: list[np.ndarray] = []
    groups: dict[str, list[np.ndarray]] = {}
    buf = np.zeros(0, dtype=np.float32)
    buf_t0 = a
    chunk_len = int(60 * audio_events.RATE)
    hop = int(audio_events.HOP_S * audio_events.RATE)
    got = False

    def flush(final: bool) -> None:
        nonlocal buf, buf_t0
        if len(buf) < int(audio_events.PATCH_S * audio_events.RATE) and not final:
            return
        if len(buf) == 0:
            return
        probs = model.scores(buf)
        g = model.groups(probs)
        times.append(buf_t0 + np.arange(len(probs)) * audio_events.HOP_S)
        for k, v in g.items():
            groups.setdefault(k, []).append(v)
        used = len(probs) * hop
        buf_t0 += used / audio_events.RATE
        buf = buf[used:] if not final else np.zeros(0, dtype=np.float32)

    for chunk in audio_samples(path, audio_events.RATE, a, b):
        got = True
        buf = np.concatenate([buf, chunk])
        if len(buf) >= chunk_len:
            flush(False)
    if not got:
        return None
    flush(True)
    if not times:
        return None
    return np.concatenate(times), {k: np.concatenate(v) for k, v in groups.items()}


def analyze_video(path: MediaRef, with_audio_events: bool = True, with_video_check: bool = True) -> VideoResult:
    """The fast pass, candidate spans and windows of one video. Running out of memory on it (a hostile file
    the bounds here do not foresee) fails this video with a sentence, not an empty ``MemoryError``."""
    try:
        return _analyze_video(path, with_audio_events, with_video_check)
    except MemoryError:
        return VideoResult(ok=False, error="analysis ran out of memory (MemoryError) on this file: it may be "
                                           "built to exhaust memory; the stored file is unchanged, not analysed")


def _analyze_video(path: MediaRef, with_audio_events: bool = True, with_video_check: bool = True) -> VideoResult:
    res = VideoResult(ok=True)
    try:
        pt = packet_timeline(path)
    except DecodeError as exc:
        return VideoResult(ok=False, error=str(exc))
    if not pt.has_video:
        return VideoResult(ok=False, error="no video stream")
    res.duration_s = duration = pt.duration_s
    errors: list[str] = []
    if pt.declared_s and pt.declared_s > duration + 2.0:
        errors.append(f"video data ends at {duration:.1f}s of a declared {pt.declared_s:.1f}s: truncated; "
                      "decoding stopped there")
    for a, b in pt.gaps(GAP_NOTE_S):
        errors.append(f"the video's timestamps jump from {a:.1f}s to {b:.1f}s: no video in those "
                      f"{b - a:,.0f}s, nothing there to analyse")
    v = "fast-1"
    # one row per second that holds video: a jump in the timestamps is a hole without rows, not millions of 0s
    vb = pt.video_bytes
    med_rate = float(np.median(vb[vb > 0])) if np.any(vb > 0) else 1.0
    for sec, bps in zip(pt.seconds, vb, strict=True):
        res.signals.append(SignalRow("bitrate", v, "bitrate_ratio", float(sec), float(min(sec + 1, duration)),
                                     round(float(bps) / max(med_rate, 1.0), 3)))
    env = None
    try:
        env = audio_envelope(path)
    except DecodeError:
        env = None
    loud_med = 0.0
    if env is not None and len(env.rms_db):
        loud_med = float(np.median(env.rms_db))
        for i, db in enumerate(env.rms_db):
            res.signals.append(SignalRow("loudness", v, "loudness_db", i * env.step_s, (i + 1) * env.step_s,
                                         round(float(db), 2)))
    try:
        key_cuts = keyframe_cuts(path)
    except DecodeError:
        key_cuts = []
    frame_cuts: list[float] = []
    spans = candidate_spans(duration, pt.video_bytes, env.rms_db if env else None,
                            env.step_s if env else 0.5, pt.seconds)
    for a, b in spans:
        res.signals.append(SignalRow("candidates", v, "candidate_span", a, b, 1.0))
    booster, cnn = load_models()
    window_rows: list[dict[str, Any]] = []
    for a, b in spans:
        tr = motion.MotionTrack()
        try:
            for batch in _in_batches(gray_frames(path, a, b, fps=motion.FPS, size=motion.SIZE), DECODE_BATCH):
                for t, frame in batch:
                    tr.add_frame(t, frame)
        except DecodeError as exc:
            errors.append(f"video decoding stopped at {tr.times[-1] if tr.times else a:.1f}s: {exc}")
        if not tr.times:
            continue
        frame_cuts += scene_cuts.between_frames(tr.times, [float(r[DIFF_COLUMN]) for r in tr.rows], tr.similarity)
        res.analysed_s += (tr.times[-1] - tr.times[0]) if len(tr.times) > 1 else 0.0
        # the last frame lasts until the next would have come (at the source's rate, up to motion.FPS)
        span_end = min(b, tr.times[-1] + (tr.times[-1] - tr.times[-2] if len(tr.times) > 1 else 1.0 / motion.FPS))
        feats, wins = [], []
        for wa, wb in _windows(a, span_end):
            f = tr.window_features(wa, wb)
            if f is not None:
                feats.append(f)
                wins.append((wa, wb))
        if not feats:
            continue
        p_lgb = booster.predict(np.stack(feats))
        steps = cnn.step_stats(tr.cells)  # the span once; each window pools its own steps
        p_cnn = np.array([cnn.window_prob(steps, *tr.pair_range(wa, wb)) for wa, wb in wins])
        ev = None
        if with_audio_events:
            try:
                ev = _audio_events(path, a, span_end)
            except DecodeError:
                ev = None
        for (wa, wb), f, pl, pc in zip(wins, feats, p_lgb, p_cnn, strict=True):
            w: dict[str, Any] = {"start": wa, "end": wb, "p_visual": float(pl + pc) / 2, "p_lgb": float(pl),
                                 "p_cnn": float(pc), "noise": tr.noise_level(wa, wb),
                                 "motion": float(f[motion.FEATURE_NAMES.index("local_mean_mean")]),
                                 "vif": float(f[motion.FEATURE_NAMES.index("vif_change_mean_mean")])}
            if env is not None and len(env.rms_db):
                i0, i1 = int(wa / env.step_s), max(int(wa / env.step_s) + 1, int(math.ceil(wb / env.step_s)))
                seg = env.rms_db[i0:i1]
                w["loud_over_median_db"] = float(seg.max() - loud_med) if len(seg) else 0.0
            if ev is not None:
                et, eg = ev
                sel = (et + audio_events.PATCH_S > wa) & (et < wb)
                if sel.any():
                    w["audio"] = {g: float(vals[sel].max()) for g, vals in eg.items()}
            window_rows.append(w)
    for t, found_by in scene_cuts.merge(key_cuts, frame_cuts, pt.keyframes):
        res.signals.append(SignalRow("scene cuts", scene_cuts.VERSION, "scene_cut", t, t, 1.0, {"found_by": found_by}))
    if errors:
        res.stats["errors"] = errors
    if not window_rows:
        if errors:
            return VideoResult(ok=False, error="; ".join(errors), duration_s=duration, signals=res.signals)
        return VideoResult(ok=False, error="no analysable frames", duration_s=duration, signals=res.signals)
    if with_video_check:
        try:
            note = video_check.check(path, window_rows, res.analysed_s)
        except Exception as exc:  # a second look that fails must not lose the motion models' scores
            note = (f"video-network check failed ({type(exc).__name__}: {str(exc).strip() or 'no message'}); "
                    "windows not yet checked keep their motion score")
        if note:
            res.stats["video_check"] = note
    for w in window_rows:
        w["score"], w["reasons"] = combine(w)
        res.signals.append(SignalRow("motion", motion.VERSION, "motion_local", w["start"], w["end"],
                                     round(w["motion"], 4)))
        res.signals.append(SignalRow("motion", motion.VERSION, "vif", w["start"], w["end"], round(w["vif"], 4)))
        res.signals.append(SignalRow("violence", MODEL_NAME, "p_visual", w["start"], w["end"],
                                     round(w["p_visual"], 4),
                                     {"lightgbm": round(w["p_lgb"], 4), "cnn": round(w["p_cnn"], 4),
                                      **({"motion": round(w["p_motion"], 4), "video_net": round(w["p_video"], 4)}
                                         if "p_video" in w else {})}))
        res.signals.append(SignalRow("motion", motion.VERSION, "sensor_noise", w["start"], w["end"],
                                     round(w["noise"], 2)))
        if "audio" in w:
            top = max((g for g in audio_events.VIOLENT_GROUPS if g in w["audio"]), key=lambda g: w["audio"][g],
                      default=None)
            if top is not None:
                res.signals.append(SignalRow("audio_events", audio_events.VERSION, "audio_violent",
                                             w["start"], w["end"], round(w["audio"][top], 4),
                                             {k: round(x, 3) for k, x in w["audio"].items()}))
            if "speech" in w["audio"]:
                res.signals.append(SignalRow("audio_events", audio_events.VERSION, "speech", w["start"], w["end"],
                                             round(w["audio"]["speech"], 4)))
        res.signals.append(SignalRow("triage", TRIAGE_VERSION, "score", w["start"], w["end"], round(w["score"], 4)))
    res.segments = make_segments(window_rows)
    res.peak = max(w["score"] for w in window_rows)
    res.stats.update({"windows": len(window_rows), "spans": len(spans), "analysed_s": round(res.analysed_s, 1),
                      "duration_s": round(duration, 1)})
    return res


def combine(w: dict[str, Any]) -> tuple[float, list[dict[str, Any]]]:
    p = w["p_visual"]
    reasons: list[dict[str, Any]] = []
    if p >= 0.5:
        reasons.append({"signal": "p_visual", "value": round(p, 3),
                        "text": f"motion pattern like fights in training data (p={p:.2f})"})
    checked = video_check.reason(w)
    if checked:
        reasons.append(checked)
    a_val, a_group = 0.0, None
    for g in audio_events.VIOLENT_GROUPS:
        val = w.get("audio", {}).get(g, 0.0)
        if val > a_val:
            a_val, a_group = val, g
    if a_group and a_val >= 0.3:
        reasons.append({"signal": f"audio:{a_group}", "value": round(a_val, 3),
                        "text": f"audio event: {a_group} ({a_val:.2f})"})
    loud = w.get("loud_over_median_db", 0.0)
    loud_bonus = float(np.clip((loud - 10.0) / 20.0, 0.0, 1.0)) * 0.3
    if loud >= 12:
        reasons.append({"signal": "loudness", "value": round(loud, 1),
                        "text": f"loud: {loud:.0f} dB above this video's median"})
    if w.get("vif", 0) > 0.9:
        reasons.append({"signal": "vif", "value": round(w["vif"], 3), "text": "abrupt, widespread motion changes"})
    noise = w.get("noise", 0.0)
    if reasons and noise > GRAINY_NOISE:  # a caveat on what fired, not a reason of its own
        reasons.append({"signal": "caveat:sensor_noise", "value": round(noise, 1),
                        "text": f"grainy footage (noise {noise:.1f} grey levels): frames were smoothed before motion "
                                "analysis; grain can still read as motion, so the visual score is less reliable"})
    # no single signal reaches the top alone: motion that sounds like violence outranks motion alone
    score = 1.0 - (1.0 - VISUAL_WEIGHT * p) * (1.0 - AUDIO_WEIGHT * a_val) * (1.0 - loud_bonus)
    return float(score), reasons


def make_segments(windows: list[dict[str, Any]]) -> list[SegmentRow]:
    """Merge windows above the threshold that overlap or lie within ``MERGE_GAP_S`` of each other;
    always keep each video's best window."""
    ws = sorted(windows, key=lambda w: w["start"])
    segs: list[SegmentRow] = []
    for w in ws:
        if w["score"] < SEGMENT_THRESHOLD:
            continue
        if segs and w["start"] <= segs[-1].end_s + MERGE_GAP_S:
            s = segs[-1]
            s.end_s = max(s.end_s, w["end"])
            if w["score"] > s.score:
                s.score = w["score"]
                s.reasons = w["reasons"]
        else:
            segs.append(SegmentRow(w["start"], w["end"], w["score"], list(w["reasons"])))
    if not segs:
        best = max(ws, key=lambda w: w["score"])
        segs.append(SegmentRow(best["start"], best["end"], best["score"], list(best["reasons"])))
    for s in segs:
        s.start_s, s.end_s, s.score = round(s.start_s, 2), round(s.end_s, 2), round(s.score, 4)
    return segs

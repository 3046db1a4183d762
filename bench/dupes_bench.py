"""Near-duplicate recall per transformation and pair precision on fight-surv clips and their variants.

The bench makes the variant set itself (``custodes.dupes.variants``: re-encode at 100 kb/s, downscale,
60 % sub-clip, greyscale, 80 % and 60 % centre crop, black border, pad to 9:16, horizontal flip, caption
and logo overlay, rotation by 3 degrees, speed 1.25x, a screen recording with perspective and moiré) from
``n_sources`` fight clips, adds ``n_unrelated`` calm clips and, for precision on one fixed camera, the
other clips cut from the same recordings as the sources (different moments of the same camera, which
must not pair). Recall of a variant: the share of sources whose variant ends in the source's cluster.

Measured 2026-12-02 evening, the same 357 videos re-clustered after the centre coarse view: 20/20 on every
variant, precision 0.999 (1 false pair), clustering 1,110 s at load ~10; vPDQ over the same files: rotate3
0/20, screen 0/20, precision 0.925; TMK: rotate3 20/20, screen 0/20, precision 0.733.

Measured 2026-12-02 morning (20 sources, 260 variants, 77 other clips of which 53 from the sources' cameras; 357
videos): recall 1.0 on every variant but crop80 0.95, screen 0.85, rotate3 0.80; pair precision 0.999 (the
one false pair, fi019/fi020, shares 0.7 s of footage in the data set's own cut list); clustering 236 s on
two loaded cores (pixel verification dominates).

The same files are also run through ThreatExchange's reference tools, at their own thresholds, and scored
the same way (clusters = connected matched pairs): vPDQ 0.2.5 (``reference_vpdq``) and TMK+PDQF through
tmkpy 0.1.1 (``reference_tmk``). They compare every pair (brute force, as their reference matchers do) and are
bench-only packages (``make bench`` installs them); when one is missing its row in ``tools`` says so and the
bench goes on. ``table(result)`` prints the rows as the Markdown table of issue 27.

Run alone: ``python bench/dupes_bench.py [n_sources] [n_unrelated]`` (default 20 and 40), or
``CUSTODES_BENCH_ONLY=dupes make bench``.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from custodes.analyze import pdq
from custodes.dupes.index import _connected, clusters, hash_videos
from custodes.dupes.variants import ALL_VARIANTS, make_variants
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case

TARGET_RECALL = 0.9
TARGET_PRECISION = 0.99


def recordings(data: Path) -> dict[str, str]:
    """Clip stem → the recording (YouTube video) it was cut from, from the data set's videos.txt."""
    out: dict[str, str] = {}
    url = ""
    listing = data / "videos.txt"
    if not listing.is_file():
        return out
    for line in listing.read_text().splitlines():
        line = line.strip()
        if line.startswith("http"):
            url = line
        elif ":" in line and url:
            out[line.split(":", 1)[0].strip()] = url
    return out


def truth(name: str) -> str:
    return re.sub("_(" + "|".join(ALL_VARIANTS) + ")$", "", name.rsplit(".", 1)[0])


def run(work: Path, data: Path, n_sources: int = 20, n_unrelated: int = 40) -> dict:
    drive = work / "dupes-drive"
    sources, unrelated, same_camera, t_make = make_drive(drive, data, n_sources, n_unrelated)
    return evaluate(work, drive, data, sources, unrelated, same_camera, t_make)


def make_drive(drive: Path, data: Path, n_sources: int, n_unrelated: int) -> tuple[list[Path], list[Path],
                                                                                   list[Path], float]:
    fights = sorted((data / "fight").glob("*.mp4"))
    calm = sorted((data / "noFight").glob("*.mp4"))
    sources = fights[:: max(1, len(fights) // n_sources)][:n_sources]
    unrelated = calm[:: max(1, len(calm) // n_unrelated)][:n_unrelated]
    rec = recordings(data)
    src_rec = {rec.get(s.stem) for s in sources} - {None}
    chosen = {p.stem for p in sources + unrelated}
    # other moments of the sources' cameras: up to two more clips of each source's recording
    same_camera: list[Path] = []
    for r in src_rec:
        others = [p for p in fights + calm if rec.get(p.stem) == r and p.stem not in chosen]
        same_camera += others[:2]
    (drive / "orig").mkdir(parents=True)
    for f in sources + unrelated + same_camera:
        shutil.copy2(f, drive / "orig" / f.name)
    t0 = time.perf_counter()
    for f in sources:
        make_variants(f, drive / "copies", ALL_VARIANTS)
    return sources, unrelated, same_camera, time.perf_counter() - t0


def evaluate(work: Path, drive: Path, data: Path, sources: list[Path], unrelated: list[Path],
             same_camera: list[Path], t_make: float) -> dict:
    rec = recordings(data)
    case = Case.init(work / "dupes-case", "bench")
    Ingestor(case, "bench", probe_media=True).run([drive])
    t0 = time.perf_counter()
    hash_videos(case)
    t_hash = time.perf_counter() - t0
    t0 = time.perf_counter()
    doc = clusters(case)
    t_cluster = time.perf_counter() - t0
    label: dict[str, str] = {}
    for c_i, c in enumerate(doc["clusters"]):
        for m in c["members"]:
            for n in m["names"]:
                label[Path(n).name] = f"c{c_i}"
    files = sorted((drive / "orig").iterdir()) + sorted((drive / "copies").iterdir())
    names = [p.name for p in files]
    ours = score(label, names, sources, same_camera, rec)
    per_variant = {v: round(k / len(sources), 3) for v, k in ours["found"].items()}
    tools = [_row("custodes dupes", ours, len(sources))]
    timings: dict[str, float | str] = {}
    for tool, fn in (("vPDQ", reference_vpdq), ("TMK", reference_tmk)):
        try:
            t0 = time.perf_counter()
            ref = fn(files)
        except ReferenceMissing as exc:
            tools.append({"tool": tool, "skipped": str(exc)})
            timings[tool] = f"skipped: {exc}"
            continue
        timings[tool] = round(time.perf_counter() - t0, 1)
        tools.append(_row(ref.pop("tool"), score(ref["label"], names, sources, same_camera, rec), len(sources),
                          ref["pairs"]))
    return {"bench": "near-duplicates (PDQ views, band index, alignment, pixel verification) on fight-surv variants",
            "sources": len(sources), "variants_per_source": len(ALL_VARIANTS), "unrelated": len(unrelated),
            "same_camera_other_moments": len(same_camera), "same_camera_false_pairs": ours["same_camera_false"],
            "recall_per_variant": per_variant, "pair_precision": ours["precision"],
            "pair_recall": ours["recall"], "false_pairs": ours["false_pairs"],
            "false_pair_names": ours["false_pair_names"],
            "target": f"recall >= {TARGET_RECALL} on every variant at precision >= {TARGET_PRECISION}",
            "target_met": min(per_variant.values()) >= TARGET_RECALL and ours["precision"] >= TARGET_PRECISION,
            "make_variants_s": round(t_make, 1), "hash_s": round(t_hash, 1), "cluster_s": round(t_cluster, 1),
            "reference_tools_s": timings, "videos": len(names), "tools": tools}


def score(label: dict[str, str], names: list[str], sources: list[Path], same_camera: list[Path],
          rec: dict[str, str]) -> dict[str, Any]:
    """One tool's clusters (file name → cluster id; unclustered names absent) scored against the truth: every
    pair of names, and per variant how many sources have that variant in their own cluster."""
    tp = fp = fn = 0
    same_camera_false = 0
    false_names: list[str] = []
    cam = {p.name for p in same_camera}
    for a, b in itertools.combinations(names, 2):
        same_true = truth(a) == truth(b)
        same_pred = a in label and label.get(a) == label.get(b)
        tp += same_true and same_pred
        fp += (not same_true) and same_pred
        if same_pred and not same_true and len(false_names) < 20:
            false_names.append(f"{a} ~ {b}")
        fn += same_true and not same_pred
        if same_pred and not same_true and (a in cam or b in cam or rec.get(truth(a)) == rec.get(truth(b))):
            same_camera_false += 1
    found = {v: sum(1 for s in sources if s.name in label and label.get(f"{s.stem}_{v}.mp4") == label[s.name])
             for v in ALL_VARIANTS}
    return {"found": found, "precision": round(tp / max(tp + fp, 1), 3), "recall": round(tp / max(tp + fn, 1), 3),
            "false_pairs": fp, "same_camera_false": same_camera_false, "false_pair_names": false_names}


def _row(tool: str, s: dict[str, Any], n: int, matched_pairs: int | None = None) -> dict[str, Any]:
    """A row of the comparison table: found/n per variant, then pair precision and recall over the clusters."""
    row: dict[str, Any] = {"tool": tool}
    row.update({v: f"{k}/{n}" for v, k in s["found"].items()})
    row.update({"precision": s["precision"], "recall": s["recall"], "false_pairs": s["false_pairs"]})
    if matched_pairs is not None:
        row["pairs_matched"] = matched_pairs
    return row


def table(result: dict[str, Any]) -> str:
    """The comparison as a Markdown table (one row per tool, as in issue 27)."""
    rows = result.get("tools") or []
    cols = ["tool", *ALL_VARIANTS, "precision", "recall", "false_pairs"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['tool']} | skipped: {r['skipped']} |" + " |" * (len(cols) - 2))
        else:
            out.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


# --- the reference tools, run over the same files --------------------------------------------------------------
# ThreatExchange's own thresholds (python-threatexchange, extensions/vpdq/vpdq_util.py; tmk/cpp/algo/tmkfv.h
# DEFAULT_LEVEL_1_THRESHOLD / DEFAULT_LEVEL_2_THRESHOLD).
VPDQ_QUALITY = 50
VPDQ_DISTANCE = 31
VPDQ_QUERY_MATCH_PERCENT = 80.0
VPDQ_INDEX_MATCH_PERCENT = 0.0
TMK_LEVEL1 = 0.7
TMK_LEVEL2 = 0.7
TMK_FPS = 15  # TMK's resampling rate (TMK_DEFAULT_RESAMPLE_FPS)
TMK_SIZE = 64  # PDQF's frame size for TMK


class ReferenceMissing(Exception):
    """A reference tool is not installed (bench-only packages: ``make bench`` installs them)."""


def _groups(n: int, pairs: list[tuple[int, int]], names: list[str]) -> dict[str, str]:
    label: dict[str, str] = {}
    for root, members in _connected([(names[a], names[b]) for a, b in pairs]).items():
        for m in members:
            label[m] = root
    return label


def reference_vpdq(files: list[Path]) -> dict[str, Any]:
    """vPDQ 0.2.5 as ThreatExchange uses it: one PDQ hash a second (``computeHash`` defaults), features deduped
    and those under quality 50 left out, a frame matching at Hamming distance <= 31; a pair of videos matches
    when either, queried against the other, has >= 80 % of its frames matched (and the other >= 0 %). Every
    pair is compared (brute force, as its reference matcher does)."""
    try:
        import vpdq  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ReferenceMissing(f"vpdq is not installed ({exc}); make bench installs vpdq==0.2.5") from exc
    hashes = []
    for f in files:
        seen: dict[str, int] = {}
        for feat in vpdq.computeHash(str(f)):
            if feat.quality >= VPDQ_QUALITY and feat.hex not in seen:
                seen[feat.hex] = 1
        hashes.append(pdq.as_words([bytes.fromhex(h) for h in seen]))
    pairs = []
    for a, b in itertools.combinations(range(len(files)), 2):
        ha, hb = hashes[a], hashes[b]
        if not len(ha) or not len(hb):
            continue
        d = pdq.hamming(ha, hb) <= VPDQ_DISTANCE
        a_in_b, b_in_a = 100.0 * d.any(1).mean(), 100.0 * d.any(0).mean()
        if (a_in_b >= VPDQ_QUERY_MATCH_PERCENT and b_in_a >= VPDQ_INDEX_MATCH_PERCENT) or \
                (b_in_a >= VPDQ_QUERY_MATCH_PERCENT and a_in_b >= VPDQ_INDEX_MATCH_PERCENT):
            pairs.append((a, b))
    names = [f.name for f in files]
    return {"tool": f"vPDQ {getattr(vpdq, '__version__', '0.2.5')} (distance 31, quality 50, query 80 %)",
            "label": _groups(len(files), pairs, names), "pairs": len(pairs)}


def _tmk_features(path: Path, tmkpy: Any) -> Any:
    """TMK+PDQF feature vectors of one video: frames resampled to 15 a second and scaled to 64×64 (what
    tmk-hash-video asks the ffmpeg program for; here decoded with PyAV, as no ffmpeg program is installed),
    PDQF of each fed to tmkpy's own TMKFeatureVectors."""
    import av
    import pdqhash  # type: ignore[import-not-found]
    from av.video.reformatter import Interpolation

    fv = tmkpy.TMKFeatureVectors(tmkpy.TMKFramewiseAlgorithm_PDQ_FLOAT, TMK_FPS,
                                 tmkpy.TMKFeatureVectors_makePoullotPeriods(),
                                 tmkpy.TMKFeatureVectors_makePoullotFourierCoefficients(), 256)
    k = 0
    last = None
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
        for frame in c.decode(vs):
            if frame.time is None:
                continue
            t = frame.time - t0
            img = frame.reformat(width=TMK_SIZE, height=TMK_SIZE, format="rgb24",
                                 interpolation=Interpolation.BICUBIC).to_ndarray()
            # constant-rate resampling: output frame k (at k/15 s) shows the newest input frame at or before it
            while last is not None and k / TMK_FPS < t - 1e-6:
                fv.ingestFrameFeature(last, k)
                k += 1
            vec, _ = pdqhash.compute_float(img)
            last = [float(x) for x in vec]
        if last is not None:
            end = (c.duration or 0) / 1e6
            while k == 0 or k / TMK_FPS < end - 1e-6:
                fv.ingestFrameFeature(last, k)
                k += 1
    fv.finishFrameFeatureIngest()
    return fv


def reference_tmk(files: list[Path]) -> dict[str, Any]:
    """TMK+PDQF through tmkpy 0.1.1 at TMK's default thresholds: a pair matches when its level-1 score
    (cosine of the mean features) is >= 0.7 and its level-2 score (the temporal kernel at the best offset)
    is >= 0.7. Every pair is compared."""
    try:
        import tmkpy  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ReferenceMissing(f"tmkpy is not installed ({exc}); make bench installs tmkpy==0.1.1") from exc
    fvs = [_tmk_features(f, tmkpy) for f in files]
    pairs = []
    for a, b in itertools.combinations(range(len(files)), 2):
        if tmkpy.TMKFeatureVectors_computeLevel1Score(fvs[a], fvs[b]) >= TMK_LEVEL1 and \
                tmkpy.TMKFeatureVectors_computeLevel2Score(fvs[a], fvs[b]) >= TMK_LEVEL2:
            pairs.append((a, b))
    names = [f.name for f in files]
    return {"tool": "TMK+PDQF, tmkpy 0.1.1 (level 1 >= 0.7, level 2 >= 0.7)",
            "label": _groups(len(files), pairs, names), "pairs": len(pairs)}


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    fs = Path(os.environ.get("CUSTODES_FIGHT_SURV", "/work/shared/data/fight-surv"))
    with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
        result = run(Path(d), fs, *(int(x) for x in sys.argv[1:3]))
        print(json.dumps(result, indent=2))
        print(table(result))

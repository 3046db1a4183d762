"""``make bench``: speed targets as ratios against baselines measured in the same run.

Ingest throughput is compared with ``sha256sum`` over the same files (one read
pass each, page cache warmed first for both). Results are printed and written
to ``bench/out/results.json`` and merged into ``docs/benchmarks.json``, from which ``docs/benchmarks.md`` is
rendered (``bench/report.py``).

``CUSTODES_BENCH_ONLY=small-files`` runs only the rows of many small files (300 real fight-surv clips, a
5,000-member zip: ingest's per-file durable work, grouped); ``CUSTODES_BENCH_ONLY=ingest`` every ingest row;
``export``, ``dupes``, ``web``, ``image``, ``speech``, ``redact``, ``cross-source`` (the violence models
trained on one source and scored on another), ``throughput`` (triage on a 1-hour video against a plain
decode) and ``bodyworn`` (simulated wearer motion: the robustness table and false alarms per hour of calm
footage; ``CUSTODES_BENCH_WORKERS`` sets its worker processes, default 2) one part each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import report  # noqa: E402  (bench/report.py, found through the path above)

FIGHT_SURV = Path(os.environ.get("CUSTODES_FIGHT_SURV", REPO.parent / "shared" / "data" / "fight-surv"))
HOCKEY = Path(os.environ.get("CUSTODES_HOCKEY", REPO.parent / "shared" / "data" / "hockey"))
console = Console()


def _timeit(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _warm(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(8 << 20):
                pass


def _sha256sum(files: list[Path]) -> None:
    # xargs keeps the command line short for thousands of files
    subprocess.run(["xargs", "-0", "sha256sum"], input=b"\0".join(str(f).encode() for f in files),
                   stdout=subprocess.DEVNULL, check=True)


def bench_ingest(work: Path, probe: bool, files: list[Path], label: str,
                 secret: str | None = None) -> dict[str, float | str]:
    from custodes.ingest.pipeline import Ingestor
    from custodes.store.case import Case

    total = sum(f.stat().st_size for f in files)
    _warm(files)
    base = min(_timeit(lambda: _sha256sum(files)) for _ in range(2))
    times = []
    src = files[0].parent
    for i in range(2):
        case = Case.init(work / f"case-{label}-{i}", "bench", secret=secret)
        times.append(_timeit(lambda c=case: Ingestor(c, "bench", probe_media=probe).run([src])))
    t = min(times)
    return {"bench": f"ingest ({label})", "files": len(files), "bytes": total,
            "sha256sum_s": round(base, 3), "ingest_s": round(t, 3),
            "ingest_MB_s": round(total / t / 1e6, 1), "ratio_vs_sha256sum": round(base / t, 3)}


def bench_small_files(work: Path) -> list[dict[str, float | str]]:
    """Many small files, where the cost is per file (fsyncs, seals, ledger appends), not per byte: 300 real
    fight-surv clips (~300 KB each) and one zip of 5,000 small members, each against ``sha256sum`` over the
    same bytes (the clips; the zip file), measured in the same run. Target: >= 0.5 for the clips."""
    import random
    import zipfile

    rows: list[dict[str, float | str]] = []
    if (FIGHT_SURV / "fight").is_dir():
        clips = work / "small-clips"
        clips.mkdir()
        for f in sorted((FIGHT_SURV / "fight").glob("*.mp4")) + sorted((FIGHT_SURV / "noFight").glob("*.mp4")):
            shutil.copy2(f, clips / f.name)
        with console.status("ingest of many small files: 300 real CCTV clips…"):
            row = bench_ingest(work, False, sorted(clips.iterdir()), "300 fight-surv clips, many small files")
        row["target"] = ">= 0.5 x sha256sum"
        rows.append(row)
    else:
        console.print(f"[yellow]{FIGHT_SURV} not found: the 300-clip row is skipped[/]")
    rnd = random.Random(5000)
    zdir = work / "zip-5000"
    zdir.mkdir()
    with zipfile.ZipFile(zdir / "members.zip", "w", zipfile.ZIP_STORED) as zf:
        for i in range(5000):
            zf.writestr(f"export/dir{i // 500:02d}/doc_{i:05d}.txt", rnd.randbytes(rnd.randint(200, 4000)))
    with console.status("ingest of many small files: a 5,000-member zip…"):
        row = bench_ingest(work, False, [zdir / "members.zip"], "zip of 5,000 small members")
    row["members"] = 5000
    row["ingest_members_per_s"] = round(5000 / float(row["ingest_s"]), 1)
    rows.append(row)
    return rows


def _print_ingest(results: list[dict]) -> None:
    t = Table(title="Custodes benchmarks (ratios against baselines measured in this run)")
    for col in ("bench", "files", "MB", "baseline s", "custodes s", "MB/s", "ratio"):
        t.add_column(col)
    for r in results:
        t.add_row(str(r["bench"]), str(r["files"]), f"{int(r['bytes']) / 1e6:.0f}", str(r["sha256sum_s"]),
                  str(r["ingest_s"]), str(r["ingest_MB_s"]), str(r["ratio_vs_sha256sum"]))
    console.print(t)
    console.print("Targets: ingest (store only) >= 0.8 x sha256sum throughput on large files; >= 0.5 on the 300 "
                  "fight-surv clips (many small files).")


def _print_export(r: dict) -> None:
    console.print(f"{r['bench']}: export {r['export_s']} s = {r['export_vs_copy']}x copying the files and "
                  f"sha256sum ({r['copy_and_sha256sum_s']} s; the PDF alone {r['of_which_pdf_s']} s, "
                  f"{r['pdf_pages']} pages); checked with "
                  f"sha256sum -c in {r['sha256sum_c_s']} s ({'OK' if r['sha256sum_c_ok'] else 'FAILED'}), "
                  f"verify-package in {r['verify_package_s']} s ({'OK' if r['verify_package_ok'] else 'FAILED'})")


def _print_dupes(r: dict | None, scales: list[dict] | None) -> None:
    if r:
        console.print(f"{r['bench']}: {r['videos']} videos, pair precision {r['pair_precision']} "
                      f"({r['false_pairs']} false pairs, {r['same_camera_false_pairs']} of them other moments of a "
                      f"source's camera), pair recall {r['pair_recall']} (hashing {r['hash_s']} s, clustering "
                      f"{r['cluster_s']} s). Recall per variant: " +
                      ", ".join(f"{k} {v}" for k, v in r["recall_per_variant"].items()) + f". Target: {r['target']}")
    for scale in scales or []:
        console.print(f"{scale['bench']}: {scale['videos']} videos, {scale['frames']} frames: search "
                      f"{scale['search_s']} s, {scale['planted_found']}/{scale['planted_copies']} planted copies "
                      f"found, {scale['false_matches']} false. Target: {scale['target']}")


def main() -> int:
    results: list[dict] = []
    triage_results: list[dict] = []
    dupes_result: dict | None = None
    robustness_result: dict | None = None
    speech_result: dict | None = None
    web_result: dict | None = None
    redact_result: dict | None = None
    scale_result: dict | None = None
    dupes_scale: list[dict] = []
    export_result: dict | None = None
    cross_result: dict | None = None
    bodyworn_rows: list[dict] = []
    image_rows: list[dict] = []
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    only = os.environ.get("CUSTODES_BENCH_ONLY", "")
    if only in ("small-files", "ingest"):
        with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
            results = bench_small_files(Path(d))
        _print_ingest(results)
        report.write(results, out)
        if only == "small-files":
            return 0
    elif only == "export":
        import export_bench

        with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
            export_result = export_bench.run(Path(d), FIGHT_SURV)
        _print_export(export_result)
        report.write([export_result], out)
        return 0
    elif only == "dupes":  # near-duplicates alone: the variant set and the archive-scale search
        import dupes_bench
        import dupes_scale_bench

        with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
            rows = [dupes_bench.run(Path(d), FIGHT_SURV), *dupes_scale_bench.run_sizes(Path(d))]
        console.print(dupes_bench.table(rows[0]))
        _print_dupes(rows[0], rows[1:])
        report.write(rows, out)
        return 0
    elif only == "web":  # the review app alone: latency under 20 users, and the JS+CSS budget
        import web_bench

        with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
            web_result = web_bench.run(Path(d))
        console.print_json(json.dumps(web_result))
        report.write([web_result], out)
        return 0
    elif only == "image":  # a 4 GiB card image against sha256sum; overlays of 16 clips against decoding them
        import image_bench

        with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
            rows = image_bench.run(Path(d), FIGHT_SURV)
        console.print_json(json.dumps(rows))
        report.write(rows, out)
        return 0
    elif only == "speech":  # transcription time and word error rate against faster-whisper run directly
        import speech_bench

        with console.status("speech: word error rate on synthesised English and Russian…"):
            rows = [speech_bench.run()]
        console.print_json(json.dumps(rows))
        report.write(rows, out)
        return 0
    elif only == "redact":  # face redaction against deface on the same frames
        import redact_bench

        with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
            rows = [redact_bench.run(Path(d), FIGHT_SURV)]
        console.print(redact_bench.summary(rows[0]))
        report.write(rows, out)
        return 0
    elif only == "cross-source":  # violence models trained on one source, scored on the other, and grouped CV
        import cross_source_bench

        with console.status("violence models across sources (fight-surv <-> hockey; features cached)…"):
            rows = [cross_source_bench.run()]
        console.print(cross_source_bench.summary(rows[0]))
        report.write(rows, out)
        return 0
    elif only == "throughput":  # triage's fast and full pass on a 1-hour 720p video against a plain decode
        import triage_bench

        with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
            rows = triage_bench.throughput(Path(d))
        console.print_json(json.dumps(rows))
        report.write(rows, out)
        return 0
    elif only == "bodyworn":  # body-worn camera motion: robustness rows and false alarms per hour of calm footage
        import bodyworn_bench

        with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
            rows = bodyworn_bench.run(FIGHT_SURV, int(os.environ.get("CUSTODES_BENCH_WORKERS", "2")),
                                      hockey=HOCKEY, work=Path(d))
        console.print(bodyworn_bench.summary(rows))
        report.write(rows, out)
        return 0
    elif only:
        console.print(f"[red]CUSTODES_BENCH_ONLY={only!r}: known are 'small-files', 'ingest', 'export', "
                      "'dupes', 'web', 'image', 'speech', 'redact', 'cross-source', 'throughput' and 'bodyworn'[/]")
        return 2
    with tempfile.TemporaryDirectory(dir=os.environ.get("CUSTODES_BENCH_DIR")) as d:
        work = Path(d)
        big = work / "big"
        big.mkdir()
        for i in range(6):
            (big / f"bodycam_{i:02d}.bin").write_bytes(os.urandom(128 << 20))
        files = sorted(big.iterdir())
        with console.status("ingest throughput: large files (hash + copy + fsync)…"):
            results.append(bench_ingest(work, False, files, "6 x 128 MiB, store only"))
        with console.status("ingest throughput: large files into an encrypted case…"):
            results.append(bench_ingest(work, False, files, "6 x 128 MiB, encrypted case", secret="bench passphrase"))
        if (FIGHT_SURV / "fight").is_dir():
            clips = work / "clips"
            clips.mkdir()
            for f in sorted((FIGHT_SURV / "fight").glob("*.mp4")) + sorted((FIGHT_SURV / "noFight").glob("*.mp4")):
                shutil.copy2(f, clips / f.name)
            cfiles = sorted(clips.iterdir())
            with console.status("ingest throughput: 300 real CCTV clips…"):
                results.append(bench_ingest(work, False, cfiles, "300 fight-surv clips, store only"))
                results.append(bench_ingest(work, True, cfiles, "300 fight-surv clips, with media probe"))
        if not only:
            results += bench_small_files(work)
            import image_bench

            with console.status("disk images: a 4 GiB card image against sha256sum; overlays of 16 clips "
                                "(alone: CUSTODES_BENCH_ONLY=image)…"):
                image_rows = image_bench.run(work, FIGHT_SURV)
            console.print_json(json.dumps(image_rows))
        if only == "ingest":
            _print_ingest(results)
            report.write(results, out)
            return 0
        import triage_bench

        with console.status("triage throughput on a 1-hour 720p video (generating it takes a minute)…"):
            tp = triage_bench.throughput(work)
        triage_results = tp
        cnn_folds = None
        if (FIGHT_SURV / "fight").is_dir():
            # the CNN's CV shuffles (each ~25 min of training on two cores): CUSTODES_BENCH_CNN_SHUFFLES=0,1,2
            # for the three the LightGBM figure uses; empty to skip the CNN
            shuffles = tuple(int(x) for x in os.environ.get("CUSTODES_BENCH_CNN_SHUFFLES", "0").split(",") if x)
            with console.status(f"violence models: grouped cross-validation on fight-surv (the CNN: "
                                f"{len(shuffles)} shuffle(s), ~25 min each on two cores)…"):
                cv_result, cnn_folds = triage_bench.cross_validation(FIGHT_SURV, shuffles)
                triage_results.append(cv_result)
            import robustness_bench

            with console.status("violence model on degraded footage (noise, darkness, low resolution, 10 fps)…"):
                robustness_result = robustness_bench.run(FIGHT_SURV, cnn_folds=cnn_folds)
            import bodyworn_bench

            with console.status("body-worn camera motion: robustness and false alarms per hour (alone: "
                                "CUSTODES_BENCH_ONLY=bodyworn)…"):
                bodyworn_rows = bodyworn_bench.run(FIGHT_SURV, cnn_folds=cnn_folds, hockey=HOCKEY, work=work)
            console.print(bodyworn_bench.summary(bodyworn_rows))
            import cross_source_bench

            with console.status("violence models across sources (fight-surv <-> hockey)…"):
                cross_result = cross_source_bench.run()
            console.print(cross_source_bench.summary(cross_result))
            import redact_bench

            with console.status("face redaction vs deface: real faces over real CCTV, 1,200 frames "
                                "(alone: python bench/redact_bench.py)…"):
                redact_result = redact_bench.run(work, FIGHT_SURV)
            import dupes_bench

            with console.status("near-duplicates: precision and recall on fight-surv variants…"):
                dupes_result = dupes_bench.run(work, FIGHT_SURV)
            import export_bench

            with console.status("export: a 50-clip package against copying its files…"):
                export_result = export_bench.run(work, FIGHT_SURV)
        import dupes_scale_bench

        with console.status("near-duplicates at archive scale: 10,000 and 100,000 videos of frame hashes…"):
            dupes_scale = dupes_scale_bench.run_sizes(work)
        import web_bench

        with console.status("review app: load test on loopback (30 s; alone: CUSTODES_BENCH_ONLY=web)…"):
            web_result = web_bench.run(work)
        try:
            import ray  # noqa: F401
            import scale_bench

            with console.status("scale-out: triage with 1 and 2 Ray workers on a local cluster…"):
                scale_result = scale_bench.run(work)
        except ImportError:
            console.print("[yellow]Ray not installed: scale-out bench skipped (pip install 'custodes[ray]')[/]")
        import speech_bench

        with console.status("speech: word error rate on synthesised English and Russian…"):
            speech_result = speech_bench.run()
    _print_ingest(results)
    for r in triage_results:
        if "full_pipeline" in r:
            tt = Table(title=r["bench"], show_header=False)
            for k in ("fast_pass_x_realtime_per_core", "motion_vector_pass_x_realtime_per_core",
                      "full_x_realtime_per_core", "full_vs_plain_decode_cpu",
                      "footage_h_per_cpu_h", "peak_rss_mb_full"):
                tt.add_row(k, str(r[k]))
            tt.add_row("plain decode cpu s / full pipeline cpu s",
                       f"{r['plain_decode']['cpu_s']} / {r['full_pipeline']['cpu_s']}")
            tt.add_row("cpu s in run order", ", ".join(f"{k} {v}" for k, v in r["cpu_s_in_run_order"]))
            tt.add_row("fast pass selected for full analysis", f"{r['fast_pass']['candidate_s']} s")
            tt.add_row(*[(k, str(v)) for k, v in r.items() if k.startswith("planted")][0])
            tt.add_row("targets", r["targets"])
            console.print(tt)
        else:
            if r.get("visual_score_grouped"):
                v = r["visual_score_grouped"]
                console.print(f"visual score (mean of LightGBM and the cell CNN), grouped CV over "
                              f"{len(v['per_shuffle'])} shuffle(s): ROC AUC {v['roc_auc']:.3f} (runs "
                              f"{v['roc_auc_range'][0]:.3f}-{v['roc_auc_range'][1]:.3f}), AP "
                              f"{v['average_precision']:.3f}; on the same splits the CNN alone "
                              f"{v['cnn_alone']:.3f}, LightGBM alone {v['lightgbm_alone']:.3f}. Target: {r['target']}")
            g = r["grouped_by_source_video"]
            console.print(f"{r['bench']} ({r['clips']} clips): grouped ROC AUC {g['roc_auc']:.3f} "
                          f"± {g['roc_auc_std']:.3f} (runs {g['roc_auc_range'][0]:.3f}-{g['roc_auc_range'][1]:.3f}), "
                          f"AP {g['average_precision']:.3f}, recall at 10% reviewed "
                          f"{g['recall_at_10pct']:.3f}; ungrouped (optimistic) AUC "
                          f"{r['ungrouped_for_comparison']['roc_auc']:.3f} (LightGBM alone)")
            if "leave_one_source_video_out" in r:
                lo = r["leave_one_source_video_out"]
                console.print(f"  leave one source video out ({lo['folds']} folds): ROC AUC {lo['roc_auc']:.3f}")
            if "whole_frame_features_only" in r:
                console.print(f"  whole-frame features only (no per-cell direction features): grouped ROC AUC "
                              f"{r['whole_frame_features_only']['roc_auc']:.3f}")
            if "with_pose_features" in r:
                console.print(f"  with pose features added: grouped ROC AUC {r['with_pose_features']['roc_auc']:.3f}")
    if robustness_result:
        console.print(robustness_result["bench"] + ": ROC AUC (calm clips' mean p) " + "; ".join(
            f"{k} {v} ({robustness_result['calm_clips_mean_p'][k]})" for k, v in robustness_result["roc_auc"].items()))
        if "visual_score_roc_auc" in robustness_result:
            console.print("  the visual score (mean of LightGBM and CNN) on the same footage: " + "; ".join(
                f"{k} {v} ({robustness_result['visual_score_calm_clips_mean_p'][k]})"
                for k, v in robustness_result["visual_score_roc_auc"].items()))
    _print_dupes(dupes_result, None)
    if export_result:
        _print_export(export_result)
    if speech_result:
        console.print(f"{speech_result['bench']}: English {speech_result.get('en')}, Russian {speech_result.get('ru')}")
    if web_result:
        console.print(web_result["bench"] + ": " + "; ".join(
            f"{k}: p50 {v['p50_ms']} ms, p95 {v['p95_ms']} ms ({v['requests']} requests)"
            for k, v in web_result.items() if isinstance(v, dict) and "p95_ms" in v) +
            f"; JS+CSS {web_result['assets']['gzip_kb']} KB gzip. Target: {web_result['target']}")
    if redact_result:
        console.print(redact_bench.summary(redact_result))
    _print_dupes(None, dupes_scale)
    if scale_result:
        r = scale_result
        console.print(f"{r['bench']}: {r['videos']} videos, {r['footage_min']} min; seconds {r['seconds']}; "
                      f"2 vs 1 Ray workers {r['scaling_2_vs_1_workers']}x (efficiency {r['parallel_efficiency']}), "
                      f"Ray 1 worker vs local {r['ray_1_vs_local_1']}x; {r['x_realtime_per_core']}x real time per "
                      "core")
        for p in r["projection_100k_hours"]:
            console.print(f"  100,000 h of footage on {p['machines']} x {p['cores_each']} cores: "
                          f"{p['hours']} h ({p['days']} days)")
    extra = [r for r in (robustness_result, *bodyworn_rows, cross_result, dupes_result, *dupes_scale, speech_result,
                         web_result, redact_result, scale_result, export_result) if r]
    report.write(results + triage_results + image_rows + extra, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

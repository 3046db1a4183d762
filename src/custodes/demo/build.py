"""``custodes demo``: a synthetic leaked drive, ingested into a fresh case.

The drive imitates what an investigator actually receives: three cameras over
one night shift, files named by the device, nested folders, an export zip, a
copy of one file in another folder (exact duplicate), a smaller re-encode of
another (near duplicate), one truncated file and one that is not video at
all, and one camera whose recording between 02:01 and 02:02 is missing (the
deleted interval). One clip holds a 20-second struggle with shouting.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from custodes.media.synth import ClipSpec, Speech, transcode, write_clip
from custodes.progress import counting, footage, step

SHIFT_START = datetime(2026, 3, 14, 2, 0, 0)
DEMO_USER = "demo"
DEMO_PASSWORD = "custodes-demo"


@dataclass
class DemoTruth:
    """What the demo drive contains, for tests and for checking later stages."""

    cameras: list[str]
    struggle: dict[str, Any]  # file, camera, start/end (seconds into file and wall clock)
    gap: dict[str, str]  # camera, start, end (wall clock)
    exact_duplicate: list[str]
    near_duplicate: list[str]
    corrupt: list[str]
    not_media: list[str]
    archive: str
    clips: dict[str, dict[str, Any]]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def build_drive(drive: Path, seconds: int = 60) -> DemoTruth:
    """Write the synthetic drive into ``drive`` (created). ``seconds`` per clip."""
    drive.mkdir(parents=True, exist_ok=True)
    s0 = SHIFT_START
    sec = timedelta(seconds=seconds)
    clips: dict[str, ClipSpec] = {
        "bodycam/CAM-01/CAM01_20260314_020000.mp4": ClipSpec(
            "CAM-01", s0, seconds, seed=1, scene=0,
            speech=[Speech(3, "Cell check, block B. All quiet.")]),
        "bodycam/CAM-01/CAM01_20260314_020100.mp4": ClipSpec(
            "CAM-01", s0 + sec, seconds, seed=2, scene=0,
            struggles=[(seconds * 0.4, seconds * 0.4 + min(20, seconds * 0.5))],
            speech=[Speech(2, "Open cell fourteen.")]),
        "bodycam/CAM-01/CAM01_20260314_020200.mp4": ClipSpec(
            "CAM-01", s0 + 2 * sec, seconds, seed=3, scene=0),
        "bodycam/CAM-02/CAM02_20260314_020000.mp4": ClipSpec(
            "CAM-02", s0, seconds, seed=4, scene=1,
            speech=[Speech(5, "Проверка камеры, всё спокойно.", voice="ru")]),
        # CAM-02 02:01–02:02 is missing: deleted from the archive.
        "bodycam/CAM-02/CAM02_20260314_020200.mp4": ClipSpec(
            "CAM-02", s0 + 2 * sec, seconds, seed=5, scene=1),
        "cctv/corridor/CAM-03_0200.mp4": ClipSpec(
            "CAM-03", s0, seconds, seed=6, scene=2),
        "cctv/corridor/CAM-03_0201.mp4": ClipSpec(
            "CAM-03", s0 + sec, seconds, seed=7, scene=2),
    }
    paths: dict[str, Path] = {}
    for rel, spec in clips.items():
        paths[rel] = write_clip(drive / rel, spec)

    # An export zip of CCTV clips as a facility might hand it over (clips moved into it).
    archive_rel = "exports/cctv_export_0200-0202.zip"
    (drive / "exports").mkdir(exist_ok=True)
    with zipfile.ZipFile(drive / archive_rel, "w", compression=zipfile.ZIP_STORED) as zf:
        for rel in ("cctv/corridor/CAM-03_0200.mp4", "cctv/corridor/CAM-03_0201.mp4"):
            zf.write(drive / rel, arcname="export/" + Path(rel).name)
    shutil.rmtree(drive / "cctv")

    dup_rel = "copies/from_usb/CAM01_20260314_020000 (1).mp4"
    (drive / dup_rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(paths["bodycam/CAM-01/CAM01_20260314_020000.mp4"], drive / dup_rel)

    near_rel = "copies/whatsapp/VID-20260315-WA0007.mp4"
    transcode(paths["bodycam/CAM-01/CAM01_20260314_020100.mp4"], drive / near_rel, 320, 180, crf=34)

    corrupt_rel = "bodycam/CAM-02/CAM02_20260314_020300.mp4"
    tmp = drive / "tmp_full.mp4"
    write_clip(tmp, ClipSpec("CAM-02", s0 + 3 * sec, seconds, seed=8, scene=1))
    data = tmp.read_bytes()
    (drive / corrupt_rel).write_bytes(data[: len(data) * 2 // 5])  # truncated: moov atom lost
    tmp.unlink()
    (drive / "notes.txt").write_text("Received 2026-03-20 from source K. Drive label: 'B-block March'.\n")

    struggle_rel = "bodycam/CAM-01/CAM01_20260314_020100.mp4"
    st = clips[struggle_rel]
    a, b = st.struggles[0]
    return DemoTruth(
        cameras=["CAM-01", "CAM-02", "CAM-03"],
        struggle={"file": struggle_rel, "camera": "CAM-01", "start_s": a, "end_s": b,
                  "start": _iso(st.start + timedelta(seconds=a)), "end": _iso(st.start + timedelta(seconds=b))},
        gap={"camera": "CAM-02", "start": _iso(s0 + sec), "end": _iso(s0 + 2 * sec)},
        exact_duplicate=["bodycam/CAM-01/CAM01_20260314_020000.mp4", dup_rel],
        near_duplicate=[struggle_rel, near_rel],
        corrupt=[corrupt_rel],
        not_media=["notes.txt"],
        archive=archive_rel,
        clips={rel: {"camera": s.camera_id, "start": _iso(s.start),
                     "end": _iso(s.start + timedelta(seconds=s.duration_s))} for rel, s in clips.items()},
    )


def build_demo(directory: Path, console: Console | None = None, force: bool = False,
               seconds: int = 60) -> tuple[Path, DemoTruth, Any]:
    """Build drive + case; returns (case dir, truth, ingest report)."""
    from custodes.ingest.summary import ingest_with_progress
    from custodes.store.case import Case

    console = console or Console(stderr=True)
    directory = directory.resolve()
    drive = directory.parent / (directory.name + "-source")
    for d in (directory, drive):
        if d.exists():
            if not force:
                raise RuntimeError(f"{d} already exists; use --force to rebuild the demo")
            _rmtree_readonly(d)
    with step(console, "Generating a synthetic body-camera archive (3 cameras, 1 night shift)…"):
        truth = build_drive(drive, seconds=seconds)
    (drive.parent / (directory.name + "-truth.json")).write_text(json.dumps(asdict(truth), indent=2) + "\n")
    console.print(f"Synthetic drive written to {drive}")
    case = Case.init(directory, "demo-investigator", title="Demo: B-block, night of 14 March 2026")
    report = ingest_with_progress(case, [drive], "demo-investigator", "Synthetic drive from source K (demo)",
                                  console)
    _summarise(console, case, report, truth)
    _triage(console, case, truth, drive)
    _timeline(console, case, truth)
    _dupes(console, case)
    _speech(console, case)
    _complaints(console, case, directory, truth)
    from custodes.web.users import add_user

    add_user(case, DEMO_USER, "investigator", DEMO_PASSWORD, "demo-investigator")
    return directory, truth, report


def _complaints(console: Console, case: Any, directory: Path, truth: DemoTruth) -> None:
    from custodes.timeline.complaints import complaints_report, import_csv

    gap0 = datetime.fromisoformat(truth.gap["start"])
    gap_s = (datetime.fromisoformat(truth.gap["end"]) - gap0).total_seconds()
    s0 = datetime.fromisoformat(truth.struggle["start"])
    reg = directory.parent / (directory.name + "-complaints.csv")
    fmt = "%Y-%m-%d %H:%M:%S"
    reg.write_text(
        "ref,start,end,facility,unit,person,text,camera\n"
        f"K-101,{gap0 + timedelta(seconds=gap_s / 3):{fmt}},{gap0 + timedelta(seconds=gap_s * 5 / 6):{fmt}},"
        "IK-7,Block B corridor,"
        "P-3,Dragged out of cell 14 and beaten in the corridor,CAM-02\n"
        f"K-102,{s0:{fmt}},{s0 + timedelta(seconds=20):{fmt}},IK-7,Block B cell 14,P-5,"
        "Struck repeatedly after the door was opened,CAM-01\n")
    import_csv(case, reg, "demo-investigator")
    for r in complaints_report(case):
        cover = ", ".join(f"{c['camera']} {c['name']}" for c in r["covered_by"]) or "no recording"
        flag = f" [bold red]{'; '.join(r['flags'])}[/]" if r["flags"] else ""
        console.print(f"Complaint {r['ref']} ({r['start'][11:19]}–{r['end'][11:19]}, {r['camera']}): {cover}.{flag}")


def _speech(console: Console, case: Any) -> None:
    from custodes.search.index import search
    from custodes.search.transcribe import transcribe_case

    with counting(console, "Transcribing speech (Whisper base, offline; Russian and English)") as advance:
        doc = transcribe_case(case, progress=advance)
    console.print(f"Speech: {doc['segments']} segment(s) in {doc['transcribed']} video(s).")
    for q in ("quiet", "спокойно"):
        hits = search(case, q, limit=1, kind="transcript")
        if hits:
            h = hits[0]
            console.print(f"  custodes search … {q!r} → {h['name']} at {h['start_s']:.1f} s: {escape(h['snippet'])}")


def _dupes(console: Console, case: Any) -> None:
    from custodes.dupes.index import clusters, hash_videos

    with counting(console, "Fingerprinting frames (PDQ) to find near-duplicates") as advance:
        hash_videos(case, progress=advance)
    for c in clusters(case)["clusters"]:
        parts = [f"{', '.join(m['names'])} ({m['relation']}, {m['resolution']}"
                 + (f", at {m['offset_in_source_s']:+.1f} s" if m["relation"] == "clip" else "") + ")"
                 for m in c["members"]]
        console.print("Near-duplicates: " + " ≈ ".join(parts))


def _timeline(console: Console, case: Any, truth: DemoTruth) -> None:
    from custodes.timeline.build import build_timeline, read_recordings, write_svg

    with counting(console, "Reading burnt-in overlays (camera ID, clock) for per-camera timelines") as advance:
        read_recordings(case, progress=advance)
    doc = build_timeline(case)
    svg = write_svg(doc, case.reports / "timeline.svg")
    for c in doc["cameras"]:
        console.print(f"{c['camera']}: {len(c['recordings'])} recording(s), "
                      + ", ".join(f"{cv['start']:%H:%M:%S}–{cv['end']:%H:%M:%S}" for cv in c["coverage"]))
    for g in doc["gaps"]:
        console.print(f"[bold red]GAP[/] {g['camera']} {g['start']:%Y-%m-%d %H:%M:%S} – {g['end']:%H:%M:%S} "
                      f"({g['duration_s']:.0f} s with no recording)")
    planted = truth.gap
    hit = any(g["camera"] == planted["camera"] and abs((g["start"] - datetime.fromisoformat(planted["start"]))
              .total_seconds()) <= 1 and abs((g["end"] - datetime.fromisoformat(planted["end"])).total_seconds()) <= 1
              for g in doc["gaps"])
    if hit:
        console.print(f"[green]The deleted interval ({planted['camera']} {planted['start']} – {planted['end']}) "
                      f"is reported as a gap.[/] Timeline plot: {svg}")
    else:
        console.print("[bold red]The deleted interval was not found.[/]")


def _triage(console: Console, case: Any, truth: DemoTruth, drive: Path) -> None:
    import hashlib

    from custodes.triage.runner import queue_rows, run_triage

    with footage(console, "Triage (motion, audio events, the violence model)") as progress:
        rep = run_triage(case, "demo-investigator", workers=2, progress=progress)
    doc = queue_rows(case, limit=5)
    t = Table(title=f"Review queue, top 5 of {rep.segments} segments")
    for col in ("#", "score", "video", "from–to (s)", "why"):
        t.add_column(col)
    for r in doc["segments"]:
        t.add_row(str(r["rank"]), f"{r['score']:.2f}", r["name"], f"{r['start_s']:.0f}–{r['end_s']:.0f}",
                  "; ".join(r["reasons"]) or "-")
    console.print(t)
    struggle_sha = hashlib.sha256((drive / truth.struggle["file"]).read_bytes()).hexdigest()
    near_sha = hashlib.sha256((drive / truth.near_duplicate[1]).read_bytes()).hexdigest()
    top = doc["segments"][0] if doc["segments"] else None
    if top and top["sha256"] in (struggle_sha, near_sha) and \
            top["start_s"] < truth.struggle["end_s"] and top["end_s"] > truth.struggle["start_s"]:
        console.print(f"[green]The planted struggle ({truth.struggle['file']}, {truth.struggle['start_s']:.0f}–"
                      f"{truth.struggle['end_s']:.0f} s) tops the queue.[/]")
    else:
        console.print("[bold red]The planted struggle does not top the queue.[/]")


def _rmtree_readonly(path: Path) -> None:
    def onerror(func: Any, p: str, _exc: Any) -> None:
        import os
        import stat

        os.chmod(Path(p).parent, stat.S_IRWXU)
        os.chmod(p, stat.S_IRWXU)
        func(p)

    shutil.rmtree(path, onerror=onerror)


def _summarise(console: Console, case: Any, report: Any, truth: DemoTruth) -> None:
    from custodes.ingest.summary import print_summary

    print_summary(console, report)
    t = Table(title="What the demo drive deliberately contains")
    t.add_column("planted")
    t.add_column("where")
    t.add_row("struggle (20 s, shouting)", f"{truth.struggle['file']} at {truth.struggle['start_s']:.0f}s")
    t.add_row("deleted interval", f"{truth.gap['camera']} {truth.gap['start']} – {truth.gap['end']}")
    t.add_row("exact duplicate", " = ".join(truth.exact_duplicate))
    t.add_row("near duplicate (re-encode 320x180)", truth.near_duplicate[1])
    t.add_row("truncated file", truth.corrupt[0])
    t.add_row("zip export", truth.archive)
    console.print(t)
    console.print(f"Case ready at [bold]{case.root}[/]; ledger head {case.ledger.head()[1]}")
    console.print(f"Explore: custodes verify|items|queue|timeline|dupes {case.root}")

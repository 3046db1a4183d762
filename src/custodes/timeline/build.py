"""Per-camera timelines from overlay clocks (or metadata), the gaps in them and simultaneous coverage.

Reading a video's overlay also looks for edits inside it (``analyze.edits``: the clock jumping or running
backwards, holes in the frame timestamps, codec changes, creation time against the clock); the timeline lists
them (``edits``) at their clock time.

A gap is a stretch inside a camera's recorded period where no file covers the
time: more than ``gap_tolerance_s`` (files of one camera rarely butt exactly)
and less than ``max_gap_s`` (a longer break is between shifts, not inside
one). Copies of one recording (exact or near duplicates) overlap themselves
and merge into one covered interval.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select

from custodes.analyze import edits, overlay
from custodes.media.source import frame_size_refusal
from custodes.store.case import Case
from custodes.store.db import EvidenceObject, MediaProbe, Provenance, Recording, Signal
from custodes.timeline.cameras import camera_names

GAP_TOLERANCE_S = 3.0
MAX_GAP_S = 4 * 3600.0
# A recording's time is believed only inside these bounds: a container may claim 9999-12-31 (and an
# hour later is past what datetime holds), a camera with a flat battery 1970; neither is evidence of when
EARLIEST = datetime(1990, 1, 1)
LATEST_AHEAD = timedelta(days=366)


def implausible(t: datetime) -> bool:
    """Outside the years any of this footage can have been recorded in."""
    return not EARLIEST <= t <= datetime.now() + LATEST_AHEAD


def _span(start: datetime, duration_s: float) -> tuple[datetime, datetime] | None:
    """(start, end) when both lie in the plausible range; None otherwise (never an OverflowError)."""
    if implausible(start) or not 0 <= duration_s < (datetime.now() + LATEST_AHEAD - start).total_seconds():
        return None
    return start, start + timedelta(seconds=duration_s)


def _ignored(what: str, shown: str, start: datetime, duration_s: float) -> str:
    if implausible(start):
        return f"implausible {what} {shown} ignored"
    return f"implausible duration {duration_s:g} s from the {what} {shown} ignored"


def _metadata_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=None)


def read_recordings(case: Case, progress: Callable[[int], None] = lambda n: None, force: bool = False) -> int:
    """Read overlays of every video that has no current recording row. Returns how many were read."""
    case.ensure_schema()
    with case.sessions() as s:
        rows = s.execute(select(MediaProbe.sha256, MediaProbe.duration_s, MediaProbe.creation_time,
                                MediaProbe.width, MediaProbe.height)
                         .join(EvidenceObject, EvidenceObject.sha256 == MediaProbe.sha256)
                         .where(MediaProbe.status.in_(("ok", "damaged")), MediaProbe.width.is_not(None))).all()
        current: dict[str, dict[str, Any]] = {
            sha: data for sha, data in s.execute(select(Recording.sha256, Recording.data)
                                                 .where(Recording.version == overlay.VERSION))}
        kept: dict[str, int] = {
            sha: n for sha, n in s.execute(select(Signal.sha256, func.count())
                                           .where(Signal.analyzer == edits.ANALYZER, Signal.version == edits.VERSION)
                                           .group_by(Signal.sha256))}

    def edits_current(sha: str) -> bool:
        # edits of this version, all still stored (triage replaces a video's signals, edits' among them)
        mark = (current.get(sha) or {}).get("edits") or {}
        return bool(mark.get("version") == edits.VERSION and kept.get(sha, 0) >= int(mark.get("found", 0)))

    todo = [r for r in rows if force or r[0] not in current or not edits_current(r[0])]
    for sha, duration, creation, width, height in todo:
        # probes before probe-2 passed any frame size: OCR of a 16000x9000 frame took a gigabyte
        refusal = frame_size_refusal(width, height)
        try:
            res = (overlay.OverlayResult(error=refusal) if refusal
                   else overlay.read_overlay(case.store.media_ref(sha), float(duration or 0)))
        except Exception as exc:  # one unreadable overlay must not stop the inventory
            res = overlay.OverlayResult(error=f"{type(exc).__name__}: {exc}")
        start, end, source, conf = res.start, res.end, "overlay", res.confidence
        data, dur = res.as_dict(), float(duration or 0)
        notes = []
        if start is not None and _span(start, dur) is None:
            notes.append(_ignored("overlay clock", start.isoformat(sep=" "), start, dur))
            start = end = None
        if start is None:
            meta = _metadata_time(creation)
            span = _span(meta, dur) if meta is not None else None
            if span is not None:
                (start, end), source, conf = span, "metadata", 0.3
            else:
                source = "none"
                if meta is not None:
                    notes.append(_ignored("creation time", str(creation), meta, dur))
        if notes:
            data["note"] = "; ".join(notes)
        # edits inside the file (analyze.edits): the clock's jumps, holes in the frame timestamps, codec changes,
        # creation time against the overlay clock; signals of analyzer "edits", replaced with the recording row
        found = [] if refusal else _edits(case, sha, dur, creation, res)
        data["edits"] = {"version": edits.VERSION, "found": len(found)}
        with case.sessions() as s:
            row = s.get(Recording, sha) or Recording(sha256=sha)
            row.camera_id, row.start_at, row.end_at = res.camera_id, start, end
            row.source, row.confidence, row.version, row.data = source, conf, overlay.VERSION, data
            s.merge(row)
            s.execute(delete(Signal).where(Signal.sha256 == sha, Signal.analyzer == edits.ANALYZER))
            s.add_all(Signal(sha256=sha, analyzer=edits.ANALYZER, version=edits.VERSION, kind=f.kind,
                             start_s=f.start_s, end_s=f.end_s, value=f.value, data={"seen": f.seen, **f.data})
                      for f in found)
            s.commit()
        progress(1)
    if todo:
        from custodes.search.index import reindex

        reindex(case, kinds=("overlay",))
    return len(todo)


def _edits(case: Case, sha: str, duration_s: float, creation: str | None, res: Any) -> list[edits.Finding]:
    try:
        return edits.find_edits(case.store.media_ref(sha), duration_s, creation, res)
    except Exception:  # one hostile file must not stop the inventory (find_edits itself never raises)
        return []


@dataclass
class Interval:
    start: datetime
    end: datetime
    items: list[str]


def _merge(recs: list[dict[str, Any]]) -> list[Interval]:
    out: list[Interval] = []
    for r in sorted(recs, key=lambda r: r["start"]):
        if out and r["start"] <= out[-1].end + timedelta(seconds=GAP_TOLERANCE_S):
            out[-1].end = max(out[-1].end, r["end"])
            out[-1].items.append(r["sha256"])
        else:
            out.append(Interval(r["start"], r["end"], [r["sha256"]]))
    return out


def build_timeline(case: Case, camera: str | None = None) -> dict[str, Any]:
    case.ensure_schema()
    names = case.display_names()
    with case.sessions() as s:
        recs = list(s.scalars(select(Recording)))
        # scene cuts inside a file (found by triage, analyze.scene_cuts): a file that should be one camera's
        # unbroken recording but cuts is an edit, a camera switch or a jump in time
        cuts_in: dict[str, list[float]] = {}
        for sha, t in s.execute(select(Signal.sha256, Signal.start_s).where(Signal.kind == "scene_cut")
                                .order_by(Signal.start_s)):
            cuts_in.setdefault(sha, []).append(float(t))
        found_edits = [tuple(r) for r in s.execute(
            select(Signal.sha256, Signal.kind, Signal.start_s, Signal.end_s, Signal.value, Signal.data)
            .where(Signal.analyzer == edits.ANALYZER).order_by(Signal.sha256, Signal.start_s))]
        member_seqs = {seq: sha for seq, sha in s.execute(select(Provenance.ledger_seq, Provenance.sha256).where(
            Provenance.member_path != "", Provenance.ledger_seq.is_not(None))) if seq is not None}
    recovered = _recovered(case, member_seqs)
    corrected = camera_names(case)  # an investigator's corrections of misread names (timeline.cameras)
    placed: dict[str, list[dict[str, Any]]] = {}
    unplaced = []
    for r in recs:
        # rows read before dates were bounded may hold any time: they are not placed either
        if r.start_at is None or r.end_at is None or implausible(r.start_at) or implausible(r.end_at):
            reason = "; ".join(x for x in (r.data.get("error"), r.data.get("note")) if x) or \
                "no clock in overlay or metadata"
            if r.start_at is not None and implausible(r.start_at):
                reason = f"implausible time {r.start_at.isoformat(sep=' ')} ignored"
            unplaced.append({"sha256": r.sha256, "name": names.get(r.sha256, ""),
                             "camera": corrected.get(r.camera_id, r.camera_id) if r.camera_id else r.camera_id,
                             "reason": reason})
            continue
        cam = corrected.get(r.camera_id, r.camera_id) if r.camera_id else "unknown camera"
        placed.setdefault(cam, []).append({
            "sha256": r.sha256, "name": names.get(r.sha256, ""), "start": r.start_at, "end": r.end_at,
            "camera_read": r.camera_id,
            "source": r.source, "confidence": round(r.confidence, 3), "cuts_s": cuts_in.get(r.sha256, []),
            # recovered from a deleted file (or carved from free space) on a disk image: "intact" or "partial"
            "deleted": r.sha256 in recovered, "recovery": recovered.get(r.sha256)})
    cameras: list[dict[str, Any]] = []
    for cam in sorted(placed):
        if camera and cam != camera:
            continue
        items = sorted(placed[cam], key=lambda x: x["start"])
        cover = _merge(items)
        gaps = []
        for a, b in zip(cover, cover[1:], strict=False):
            dur = (b.start - a.end).total_seconds()
            if GAP_TOLERANCE_S < dur <= MAX_GAP_S:
                gaps.append({"camera": cam, "start": a.end, "end": b.start, "duration_s": round(dur, 1),
                             "after": a.items[-1], "before": b.items[0]})
        cameras.append({"camera": cam, "recordings": items, "gaps": gaps,
                        "coverage": [{"start": c.start, "end": c.end, "files": len(c.items)} for c in cover]})
    overlaps = _simultaneous([(c["camera"], cv["start"], cv["end"]) for c in cameras for cv in c["coverage"]])
    cuts = sorted(({"camera": c["camera"], "sha256": r["sha256"], "name": r["name"], "offset_s": t,
                    "at": r["start"] + timedelta(seconds=t)}
                   for c in cameras for r in c["recordings"] for t in r["cuts_s"]), key=lambda x: x["at"])
    # edits inside files, at their clock time where the recording is placed
    where = {r["sha256"]: (c["camera"], r["start"]) for c in cameras for r in c["recordings"]}
    shown = {r.sha256 for r in recs} if camera is None else set(where)
    in_files = []
    for sha, kind, t0, t1, value, data in found_edits:
        if sha not in shown:
            continue
        cam, start = where.get(sha, (None, None))
        in_files.append({"camera": cam, "sha256": sha, "name": names.get(sha, ""), "kind": kind,
                         "offset_s": round(float(t0), 3), "end_s": round(float(t1), 3), "value": float(value),
                         "at": start + timedelta(seconds=float(t0)) if start is not None else None,
                         "seen": str((data or {}).get("seen", kind))})
    in_files.sort(key=lambda e: (e["at"] is None, e["at"] or datetime.min, e["name"]))
    return {"cameras": cameras, "gaps": [g for c in cameras for g in c["gaps"]], "overlaps": overlaps,
            "cuts": cuts, "edits": in_files, "unplaced": unplaced}


def _recovered(case: Case, seqs: dict[int, str]) -> dict[str, str]:
    """Objects whose ingest event (ledger seq -> sha256: members of disk images and archives) says the file was
    deleted on the image (ingest/images.py): sha256 -> how it was recovered ("intact", "partial")."""
    out: dict[str, str] = {}
    if not seqs:
        return out
    last = max(seqs)
    for e in case.ledger.entries():
        seq = e.get("seq")
        if isinstance(seq, int) and seq in seqs:
            d = e.get("details") or {}
            if d.get("deleted") is True:
                out[seqs[seq]] = str(d.get("recovery") or "recovered")
        if isinstance(seq, int) and seq >= last:
            break
    return out


def _simultaneous(spans: list[tuple[str, datetime, datetime]]) -> list[dict[str, Any]]:
    """Periods when two or more cameras recorded the same moment."""
    events = sorted([(a, 1, cam) for cam, a, _ in spans] + [(b, -1, cam) for cam, _, b in spans],
                    key=lambda e: (e[0], e[1]))
    active: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    prev_t = None
    for t, kind, cam in events:
        live = sorted(c for c, n in active.items() if n > 0)
        if prev_t is not None and (t - prev_t).total_seconds() >= 1.0 and len(live) >= 2:
            if out and out[-1]["end"] == prev_t and out[-1]["cameras"] == live:
                out[-1]["end"] = t
            else:
                out.append({"start": prev_t, "end": t, "cameras": live})
        active[cam] = active.get(cam, 0) + kind
        prev_t = t
    return out


def write_svg(doc: dict[str, Any], path: Path) -> Path:
    """Write the timeline plot (``render_svg``) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(doc))
    return path


def render_svg(doc: dict[str, Any]) -> str:
    """A plain SVG timeline: one row per camera, recordings in blue, gaps in red, edits inside files in magenta."""
    cams = doc["cameras"]
    times = [r[k] for c in cams for r in c["recordings"] for k in ("start", "end")]
    if not times:
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25">'
                "no placed recordings</text></svg>\n")
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 1.0)
    left, width, row = 110, 900, 34
    height = 50 + row * len(cams)

    def x(t: datetime) -> float:
        return left + width * (t - t0).total_seconds() / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height}" '
             f'viewBox="0 0 {left + width + 20} {height}" font-family="sans-serif" font-size="12">',
             f'<text x="{left}" y="16">{html.escape(t0.isoformat(sep=" "))}</text>',
             f'<text x="{left + width}" y="16" text-anchor="end">{html.escape(t1.isoformat(sep=" "))}</text>']
    for i, c in enumerate(cams):
        y = 30 + i * row
        parts.append(f'<text x="5" y="{y + 16}">{html.escape(c["camera"])}</text>')
        for r in c["recordings"]:
            parts.append(f'<rect x="{x(r["start"]):.1f}" y="{y}" width="{max(1.0, x(r["end"]) - x(r["start"])):.1f}" '
                         f'height="22" fill="#3b6ea8" fill-opacity="0.7"><title>{html.escape(r["name"])} '
                         f'{r["start"]:%H:%M:%S}–{r["end"]:%H:%M:%S}</title></rect>')
        for g in c["gaps"]:
            gw = max(2.0, x(g["end"]) - x(g["start"]))
            parts.append(f'<rect x="{x(g["start"]):.1f}" y="{y - 2}" width="{gw:.1f}" height="26" fill="none" '
                         'stroke="#c0392b" stroke-width="2" stroke-dasharray="4 2">'
                         f'<title>gap {g["start"]:%H:%M:%S}–{g["end"]:%H:%M:%S} ({g["duration_s"]:.0f} s)'
                         '</title></rect>')
    rows = {c["camera"]: 30 + i * row for i, c in enumerate(cams)}
    for e in doc.get("edits", []):  # edits inside files: a magenta tick at the moment, on the camera's row
        if e.get("at") is None or e.get("camera") not in rows:
            continue
        y = rows[e["camera"]]
        parts.append(f'<line x1="{x(e["at"]):.1f}" y1="{y - 4}" x2="{x(e["at"]):.1f}" y2="{y + 26}" stroke="#b0139b" '
                     f'stroke-width="2"><title>{html.escape(e["kind"])}: {html.escape(e["seen"])}</title></line>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

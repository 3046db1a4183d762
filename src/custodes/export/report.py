"""The court report: one template (templates/report.html) for the HTML and the PDF.

Everything shown is built from the package's own data (items, ledger slice, timeline) by the functions here,
formatted for a reader who is not a developer: clock times to the second, durations as m:ss, no Python
``None``/``nan`` and no microseconds. Fixed text in English or Russian (``strings.py``).
"""

from __future__ import annotations

import base64
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup

from custodes.analyze.transcript_quality import fit_to_show
from custodes.export import measured
from custodes.export import strings as S
from custodes.web import review as review_rules  # what counts as a review of a stretch, as the app applies it

TEMPLATE_DIR = Path(__file__).with_name("templates")


def case_zone(meta: dict[str, Any]) -> tuple[tzinfo, str]:
    """The case's time zone (case.json ``timezone``, an IANA name) or UTC."""
    name = str(meta.get("timezone") or meta.get("time_zone") or "")
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC, "UTC"


def text(v: Any, empty: str = "—") -> str:
    """A value for print: never 'None' or 'nan'."""
    if v is None:
        return empty
    if isinstance(v, float) and not math.isfinite(v):
        return empty
    out = str(v).strip()
    return out if out and out.lower() not in ("none", "nan", "null") else empty


def clock(dt: datetime | None) -> str:
    return "—" if dt is None else dt.strftime("%Y-%m-%d %H:%M:%S")


def moment(iso: str | None, tz: tzinfo, zone: bool = True) -> str:
    """A ledger or export time (UTC ISO) in the case's time zone, to the second, with its zone."""
    if not iso:
        return "—"
    try:
        dt = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return text(iso)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(tz)
    return dt.strftime("%Y-%m-%d %H:%M:%S %Z" if zone else "%Y-%m-%d %H:%M:%S").strip()


def offset(s: float | None) -> str:
    """A position in a file: m:ss or h:mm:ss."""
    if s is None or not math.isfinite(s):
        return "—"
    n = int(round(max(0.0, s)))
    h, rest = divmod(n, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def duration(s: float | None) -> str:
    return "—" if s is None or not math.isfinite(s) or s <= 0 else offset(s)


def parse_clock(iso: str | None) -> datetime | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(str(iso))
    except ValueError:
        return None


def span(a: float, b: float, start: datetime | None) -> str:
    """A stretch of a file, as positions in the file and (when the clock is known) camera-clock time."""
    where = f"{offset(a)}–{offset(b)}"
    if start is None:
        return where
    return f"{(start + timedelta(seconds=a)):%H:%M:%S}–{(start + timedelta(seconds=b)):%H:%M:%S} ({where})"


def people(ps: Any, lang: str = "en") -> str:
    out = []
    for p in ps or []:
        if isinstance(p, dict):
            who, role = text(p.get("pseudonym"), ""), text(p.get("role"), "")
            role = S.ROLES.get(lang, {}).get(role, role)
            if who:
                out.append(f"{who} ({role})" if role else who)
        elif text(p, ""):
            out.append(text(p))
    return ", ".join(out)


def css(value: Any) -> str:
    """Text safe inside a CSS string in the template's @page rules."""
    return re.sub(r'[\\"\n\r\f<>{}]', "", text(value, ""))[:120]


def plot_svg(scores: list[tuple[float, float, float]], loud: list[tuple[float, float, float]], dur: float) -> str:
    """Triage score as bars (red from 0.5), loudness as a line; axes in positions in the file."""
    w, h = 600, 90
    if dur <= 0 or not (scores or loud):
        return ""
    parts = [f'<rect width="{w}" height="{h}" fill="#f4f4f4"/>',
             f'<line x1="0" y1="{h / 2}" x2="{w}" y2="{h / 2}" stroke="#ccc" stroke-dasharray="3,3"/>']
    for a, b, v in scores:
        if not all(math.isfinite(x) for x in (a, b, v)):
            continue
        v = min(1.0, max(0.0, v))
        parts.append(f'<rect x="{w * a / dur:.1f}" y="{h - h * v:.1f}" width="{max(1.0, w * (b - a) / dur):.1f}" '
                     f'height="{h * v:.1f}" fill="{"#c0392b" if v >= 0.5 else "#7f8c8d"}"/>')
    pts = [(a, b, v) for a, b, v in loud if all(math.isfinite(x) for x in (a, b, v))]
    if pts:
        lo, hi = min(v for *_, v in pts), max(v for *_, v in pts)
        rng = (hi - lo) or 1.0
        line = " ".join(f"{w * (a + b) / 2 / dur:.1f},{h - 4 - (h - 8) * (v - lo) / rng:.1f}" for a, b, v in pts)
        parts.append(f'<polyline points="{line}" fill="none" stroke="#2471a3" stroke-width="1.2"/>')
    anchor = {0.0: "start", 1.0: "end"}
    ticks = "".join(f'<text x="{w * f:.0f}" y="{h + 12}" text-anchor="{anchor.get(f, "middle")}">'
                    f'{offset(dur * f)}</text>' for f in (0.0, 0.25, 0.5, 0.75, 1.0))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 16}" viewBox="0 0 {w} {h + 16}" '
           f'font-size="10" font-family="sans-serif">{"".join(parts)}'
           f'<text x="2" y="10" fill="#555">1.0</text><text x="2" y="{h - 2}" fill="#555">0</text>{ticks}</svg>')
    return svg


def _img(svg: str, alt: str) -> Markup:
    return Markup(f'<img alt="{alt}" style="width:100%" '
                  f'src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}">')


def confidence(avg_logprob: float | None) -> str:
    """Whisper's average log-probability as a percentage (exp of it: the mean per-token probability)."""
    if avg_logprob is None or not math.isfinite(avg_logprob):
        return "—"
    return f"{100 * math.exp(min(0.0, avg_logprob)):.0f} %"


def transcript_rows(rows: list[dict[str, Any]], start: datetime | None) -> list[dict[str, Any]]:
    """Excerpts fit to show: loops collapsed, hallucinations left out with a note where they were."""
    out = []
    for t in rows:
        shown, note = fit_to_show(t.get("text") or "")
        tr_raw = t.get("translation")
        tr_shown = fit_to_show(tr_raw)[0] if tr_raw else ""
        if not shown and not note:
            continue
        out.append({"span": span(float(t["start_s"]), float(t["end_s"]), start),
                    "text": shown or "—", "note": note or "",
                    "language": text(t.get("language")), "confidence": confidence(t.get("avg_logprob")),
                    "translation": tr_shown if shown else ""})
    return out


def edit_rows(found: list[dict[str, Any]], start: datetime | None, lang: str) -> list[dict[str, str]]:
    """Edits inside a file (analyze.edits): the moment (camera clock and position in the file) and what was seen."""
    kinds = S.EDIT_KINDS.get(lang, {})
    out = []
    for e in found:
        a = e.get("start_s")
        b = e.get("end_s")
        if a is None or not math.isfinite(float(a)):
            at = "—"
        else:
            a = float(a)
            b = float(b) if b is not None and math.isfinite(float(b)) and float(b) > a else a
            at = span(a, b, start) if b > a else (
                f"{(start + timedelta(seconds=a)):%H:%M:%S} ({offset(a)})" if start else offset(a))
        kind = str(e.get("kind") or "")
        out.append({"at": at, "what": kinds.get(kind, text(kind)), "seen": text(e.get("seen"), "")})
    return out


def render(ctx: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["css"] = css
    return env.get_template("report.html").render(**ctx)


def _who_reviewed(anns: list[dict[str, Any]]) -> dict[int, tuple[str, str]]:
    """Per shown annotation: (reviewer, second reviewer). An annotation edited by someone else, or another
    reviewer's annotation with the same label over an overlapping stretch of the same file, is a second review."""
    by_id = {a["id"]: a for a in anns}
    out: dict[int, tuple[str, str]] = {}
    superseded = {a["supersedes"] for a in anns if a.get("supersedes")}
    for a in anns:
        if a["id"] in superseded:
            continue
        chain = [a]
        while chain[-1].get("supersedes") in by_id and len(chain) < 50:
            chain.append(by_id[chain[-1]["supersedes"]])
        first = chain[-1]["author"]
        others = [c["author"] for c in reversed(chain[:-1]) if c["author"] != first]
        if not others:
            others = [b["author"] for b in anns if b["id"] != a["id"] and b["author"] != first
                      and b["id"] not in superseded and b["label"] == a["label"]
                      and b["start_s"] <= a["end_s"] and a["start_s"] <= b["end_s"]]
        out[a["id"]] = (first, ", ".join(dict.fromkeys(others)))
    return out


def custody_rows(ledger: list[dict[str, Any]], names: dict[str, str], tz: tzinfo, lang: str) -> list[dict[str, str]]:
    acts = S.ACTIONS[lang]
    out = []
    for e in ledger:
        if e.get("omitted") or e.get("action") in ("login", "views"):
            continue
        d = e.get("details") or {}
        subject = e.get("subject") or ""
        fields = defaultdict(lambda: "—", {
            "subject": names.get(subject, subject[:12] or "—"), "label": text(d.get("label")),
            "state": text(d.get("state")),
            "name": text(d.get("original_name") or names.get(subject)), "reason": text(d.get("reason")),
            "source": text(d.get("source_path") or d.get("source")), "user": text(d.get("user")),
            "role": text(d.get("role")), "camera": text(d.get("camera")), "to": text(d.get("to")),
            "sources": ", ".join(str(x) for x in d.get("sources") or []) or "—"})
        template = acts.get(str(e.get("action")), str(e.get("action")))
        what = template.format_map(fields)
        if e.get("action") == "redact" and d.get("derivative") in names:
            what += f" → {names[d['derivative']]}"
        out.append({"when": moment(e.get("time"), tz, zone=False), "who": text(e.get("actor")), "what": what})
    return out


def context(case_meta: dict[str, Any], case_id: str, docs: list[dict[str, Any]], ledger: list[dict[str, Any]],
            timeline_svg: bytes, exporter: str, exporter_key: str, tool_version: str, left_out: list[dict[str, str]],
            gaps: list[dict[str, Any]], lang: str, exported: datetime) -> dict[str, Any]:
    s = S.strings(lang)
    tz, tz_name = case_zone(case_meta)
    numbers = {d["sha256"]: i for i, d in enumerate(docs, 1)}
    names = {d["sha256"]: f"E{numbers[d['sha256']]} ({', '.join(d['names']) or d['sha256'][:12]})" for d in docs}
    exhibits, summary = [], defaultdict(list)
    for d in docs:
        m, rec = d.get("media") or {}, d.get("recording") or {}
        start, end = parse_clock(rec.get("start")), parse_clock(rec.get("end"))
        dur = d.get("_duration") or m.get("duration_s")
        if end is None and start is not None and dur:
            end = start + timedelta(seconds=float(dur))
        der = d.get("derived_from")
        derived = None
        if der:
            params = der.get("params") or {}
            derived = {"no": numbers.get(der["original"], "?"), "sha256": der["original"],
                       "how": "; ".join(str(x) for x in params.get("actions") or []) or text(der.get("kind")),
                       "c2pa": params.get("content_credentials") == "c2pa"}
        reviews = d.get("reviews") or []
        shown_anns = [a for a in d["annotations"]
                      if a["id"] not in {b.get("supersedes") for b in d["annotations"]}]
        reviewed = _who_reviewed(d["annotations"])
        anns = []
        for a in d["annotations"]:
            anns.append({"label": text(a["label"]), "span": span(a["start_s"], a["end_s"], start),
                         "people": people(a.get("people"), lang), "author": text(a["author"]),
                         "when": moment(a.get("created_at"), tz), "note": text(a.get("note"), ""),
                         "edits": a.get("supersedes") or ""})
        for a in shown_anns:
            first, second = reviewed.get(a["id"], (a["author"], ""))
            if not second:  # a second review (confirmed or disputed, by someone who did not review the stretch
                # first, as the app enforces it) of a flagged segment over the same stretch
                seconds = []
                for g in d["segments"]:
                    if g["start_s"] <= a["end_s"] and a["start_s"] <= g["end_s"]:
                        over = review_rules.over(reviews, g["start_s"], g["end_s"])
                        who = set(review_rules.second_reviewers(over)) - {first}
                        seconds += [f"{r['author']} ({text(r['state'])})" for r in over
                                    if r["author"] in who and r["state"] in review_rules.SECOND_REVIEW]
                second = ", ".join(dict.fromkeys(seconds))
            summary[text(a["label"])].append({
                "exhibit": numbers[d["sha256"]], "camera": text(rec.get("camera")),
                "clock": span(a["start_s"], a["end_s"], start) if start else
                f"{offset(a['start_s'])}–{offset(a['end_s'])} {s['in_file']}",
                "people": people(a.get("people"), lang) or "—", "reviewer": text(first), "second": text(second),
                "note": text(a.get("note"), "")})
        width, height = m.get("width"), m.get("height")
        cam_gaps = []
        for g in gaps:
            if rec.get("camera") is None or g["camera"] != rec.get("camera") or start is None or end is None:
                continue
            if abs((g["end"] - start).total_seconds()) <= 5:
                where = s["gap_before"]
            elif abs((g["start"] - end).total_seconds()) <= 5:
                where = s["gap_after"]
            else:
                continue
            cam_gaps.append({"span": f"{clock(g['start'])} – {g['end']:%H:%M:%S}",
                             "duration": duration(g["duration_s"]), "where": where})
        plot = plot_svg(d.get("_scores") or [], d.get("_loudness") or [], float(dur or 0))
        damaged = text(m.get("reason"), "") if m.get("status") == "damaged" else ""
        exhibits.append({
            "no": numbers[d["sha256"]], "names": ", ".join(d["names"]) or "—", "sha256": d["sha256"],
            "camera": text(rec.get("camera")), "clock_span": f"{clock(start)} – {end:%H:%M:%S}" if start and end
            else clock(start), "duration": duration(float(dur) if dur else None),
            "size": f"{d['size']:,} {s['bytes']}".replace(",", " ") if d.get("size") is not None else "—",
            "picture": " ".join(x for x in (f"{width}×{height}" if width and height else "",
                                            text(m.get("video_codec"), "")) if x) or "—",
            "file": d["file"], "damaged": damaged,
            "origins": [{"path": text(o["source_path"]) + (f" ! {o['member_path']}" if o.get("member_path") else ""),
                         "mtime": moment(o.get("mtime"), tz)} for o in d["origins"]],
            "derived": derived,
            "derived_label": f"E{derived['no']}" if derived else s["original"],
            "sheet": Markup(d.get("_sheet") or ""), "plot": _img(plot, "score") if plot else "",
            "has_loudness": bool(d.get("_loudness")),
            "segments": [{"span": span(g["start_s"], g["end_s"], start), "score": f"{g['score']:.2f}",
                          "reasons": text("; ".join(g["reasons"])),
                          "reviews": "; ".join(f"{text(r['state'])} ({text(r['author'])}, "
                                               f"{moment(r.get('created_at'), tz)})"
                                               for r in review_rules.over(reviews, g["start_s"], g["end_s"]))}
                         for g in d["segments"]
                         if math.isfinite(g["score"])],
            "annotations": anns,
            "cuts": [{"t": (f"{(start + timedelta(seconds=c['t_s'])):%H:%M:%S} ({c['t_s']:.1f} s)" if start
                            else f"{c['t_s']:.1f} s"), "keyframes": c["found_by"] == "keyframes"}
                     for c in d["scene_cuts"]],
            "edits": edit_rows(d.get("edits") or [], start, lang),
            "edits_examined": d.get("edits_examined", True),
            "gaps": cam_gaps,
            "transcript": transcript_rows(d["transcript"], start),
        })
    # the timeline's own labels may carry fractions of a second: to the second here, as everywhere
    tl_svg = re.sub(r"(\d{2}:\d{2}:\d{2})\.\d+", r"\1", timeline_svg.decode("utf-8", "replace"))
    tl = _img(tl_svg, "timeline") if timeline_svg else ""
    full = [e for e in ledger if not e.get("omitted")]
    return {
        "s": s, "lang": lang,
        "case": {"id": case_id, "title": text(case_meta.get("title"), ""), "tz": tz_name},
        "exporter": exporter, "exporter_key": exporter_key,
        "case_key": text(full[0].get("key"), "") if full else "",
        "exported_at": moment(exported.isoformat(), tz), "tool_version": tool_version,
        "ledger_head": ledger[-1]["hash"], "summary": [{"label": k, "rows": v} for k, v in sorted(summary.items())],
        "exhibits": exhibits, "timeline": tl,
        "custody": custody_rows(ledger, names, tz, lang),
        "method": [*S.METHOD[lang], (S.MEASURED[lang][0], " ".join(measured.sentences(lang)) or S.MEASURED[lang][1])],
        "glossary": S.GLOSSARY[lang],
        "left_out": left_out,
    }

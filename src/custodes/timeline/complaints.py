"""Complaints register: import a CSV, link each complaint to the recordings that cover its time
window, and flag complaints whose window falls in a gap — a recording missing exactly when a
prisoner says something happened is itself evidence.

CSV columns (header row, names case-insensitive): ``start`` and ``end`` (or ``date`` with ``from`` and
``to``), ``facility``, ``unit`` (or ``cell``), ``person``, ``text``, optional ``ref`` and ``camera`` (limit
the check to one camera). Comma-, semicolon- or tab-separated (a spreadsheet in much of Europe saves ``;``).

Dates: ``2026-03-14 02:01[:SS]`` and ``14.03.2026 02:01[:SS]`` are read as they stand. A date with slashes is
read only when its order is certain: ``25/03/2026`` can only be day first, and the file's other dates follow it;
``03/04/2012`` alone could be 3 April or 4 March, and the import is refused unless a format is given
(``date_format``: ``DD/MM/YYYY``, ``MM/DD/YYYY``, … or a ``strptime`` pattern such as ``%m/%d/%Y %H:%M``).
Times are wall-clock times as the cameras show them, without a zone: a format with a UTC offset (``%z``, ``%Z``)
is refused. In the ``date``, ``from``, ``to`` layout a ``to`` before the ``from`` is on the next day (23:50–00:10).

A register is evidence, so the import is strict: a header that repeats a column, a row with more fields than
the header, or a format ``strptime`` cannot read back is refused with nothing imported. Recovery (``strict`` off)
reads a preserved register as it was read when it was imported.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.db import Complaint, EvidenceObject
from custodes.timeline.build import EARLIEST, build_timeline, implausible

MAX_BYTES = 20 * 1024 * 1024
FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
           "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")
DAY_FIRST = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M")
MONTH_FIRST = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")
# the date orders a person names, for --date-format
NAMED = {"DD/MM/YYYY": "%d/%m/%Y", "MM/DD/YYYY": "%m/%d/%Y", "YYYY-MM-DD": "%Y-%m-%d", "DD.MM.YYYY": "%d.%m.%Y",
         "DD-MM-YYYY": "%d-%m-%Y", "MM-DD-YYYY": "%m-%d-%Y", "YYYY/MM/DD": "%Y/%m/%d", "DD/MM/YY": "%d/%m/%y",
         "MM/DD/YY": "%m/%d/%y"}
# registers imported before the slash order was checked were read day first: recovery reads them so again
LEGACY = "legacy-day-first"
_SLASH = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/\d{2,4}\b")


class ComplaintsError(Exception):
    pass


def formats_for(date_format: str | None, strict: bool = False) -> tuple[str, ...] | None:
    """The strptime patterns a ``--date-format`` stands for (a date alone gets the times added); None: none given.
    ``strict`` (a new import): also refuse a pattern with a UTC offset or one that does not read back a date it
    wrote (a directive strptime does not know, ``%I`` without ``%p`` …)."""
    if date_format is None or date_format == LEGACY:
        return None
    f = NAMED.get(date_format.strip().upper(), date_format.strip())
    if "%" not in f:
        raise ComplaintsError(f"--date-format {date_format!r}: give one of {', '.join(NAMED)} or a strptime "
                              "pattern such as '%m/%d/%Y %H:%M'")
    has_time = "%H" in f or "%I" in f
    if strict:
        _check_format(date_format, f, has_time)
    return (f,) if has_time else (f"{f} %H:%M:%S", f"{f} %H:%M", f)


_KNOWN = datetime(2026, 3, 14, 14, 1, 5)  # day > 12, hour > 12: a pattern that reads it back reads it one way


def _check_format(date_format: str, f: str, has_time: bool) -> None:
    if re.search(r"%[-#^]?:?[zZ]", f.replace("%%", "")):
        raise ComplaintsError(f"--date-format {date_format!r} has a UTC offset; complaint times are compared "
                              "with the cameras' clock times, which carry none: write the times as the local "
                              "clock showed them and give the format without %z/%Z")
    try:
        back = datetime.strptime(_KNOWN.strftime(f), f)
    except ValueError as exc:
        raise ComplaintsError(f"--date-format {date_format!r} is not a pattern that can be read ({exc}); nothing "
                              "imported. Give one of DD/MM/YYYY, MM/DD/YYYY … or a strptime pattern such as "
                              "'%m/%d/%Y %H:%M'") from exc
    if back.date() != _KNOWN.date() or has_time and back.time().replace(second=0) != _KNOWN.time().replace(second=0):
        raise ComplaintsError(f"--date-format {date_format!r} does not read dates back as written ("
                              f"{_KNOWN:%Y-%m-%d %H:%M} written with it reads as {back:%Y-%m-%d %H:%M}); nothing "
                              "imported. It needs the day, month and year (and %H, or %I with %p, for the hour)")


def _when(value: str, slash: tuple[str, ...] = (), given: tuple[str, ...] | None = None) -> datetime:
    v = " ".join(value.strip().split())
    for f in given + FORMATS[:4] if given is not None else FORMATS + slash:  # ISO dates read either way
        try:
            t = datetime.strptime(v, f)
        except ValueError:
            continue
        if t.tzinfo is not None:  # compared with camera clock times, which have no zone
            raise ValueError(f"date/time {value!r} has a UTC offset; write it as the local clock showed it")
        if implausible(t):  # 9999-12-31 is a typo, and a window there would match nothing, ever
            raise ValueError(f"implausible date {value!r} (before {EARLIEST:%Y} or more than a year ahead)")
        return t
    if given is not None:
        raise ValueError(f"date/time {value!r} does not match the format given")
    raise ValueError(f"unreadable date/time {value!r} (use 2026-03-14 02:01 or 14.03.2026 02:01)")


def _slash_order(values: list[str], legacy: bool) -> tuple[str, ...]:
    """Day or month first for the dates written with slashes, from the dates that can only be read one way."""
    pairs = [(int(m.group(1)), int(m.group(2))) for v in values if (m := _SLASH.match(v))]
    if not pairs:
        return ()
    if legacy:
        return DAY_FIRST
    day_first = [p for p in pairs if p[0] > 12]
    month_first = [p for p in pairs if p[1] > 12]
    if day_first and month_first:
        raise ComplaintsError("the dates with slashes are written both day first and month first (e.g. "
                              f"{day_first[0][0]}/{day_first[0][1]}/… and {month_first[0][0]}/{month_first[0][1]}/…)"
                              "; nothing imported. Write them one way, or as 2026-03-14 02:01")
    if day_first:
        return DAY_FIRST
    if month_first:
        return MONTH_FIRST
    if all(a == b for a, b in pairs):
        return DAY_FIRST  # 03/03/2026 reads the same either way
    a, b = next(p for p in pairs if p[0] != p[1])
    raise ComplaintsError(f"ambiguous dates: {a:02d}/{b:02d}/… could be {a} {_MONTHS[b]} or {b} {_MONTHS[a]}; "
                          "nothing imported. Say which with --date-format DD/MM/YYYY or --date-format MM/DD/YYYY")


_MONTHS = ["", "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def _delimiter(textdata: str) -> str:
    """The separator of the header row: the one of , ; and tab that it has most of (a comma by default)."""
    header = textdata.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_rows(data: bytes, date_format: str | None = None, strict: bool = False) -> list[dict[str, Any]]:
    """The register's rows; ``date_format`` (``DD/MM/YYYY``, a strptime pattern …) for dates the file alone
    leaves ambiguous, or ``LEGACY`` for a register imported before such dates were refused. ``strict`` (a new
    import) refuses a repeated column, a row with more fields than the header and a format that does not read
    back; off, a preserved register is read as it was when imported (recovery)."""
    try:
        textdata = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ComplaintsError(f"not UTF-8 text: {exc}") from exc
    given = formats_for(date_format, strict)
    reader = csv.DictReader(io.StringIO(textdata), delimiter=_delimiter(textdata))
    try:
        return _read_rows(reader, given, legacy=date_format == LEGACY, strict=strict)
    except csv.Error as exc:  # a field over the csv module's size limit (often a stray quote mark), a NUL byte
        # line_num counts the lines of the rows read whole: the bad row starts on the next one
        raise ComplaintsError(f"line {reader.line_num + 1}: not a readable CSV row ({exc}); check for an "
                              "unclosed quote mark, fix the file and import it again") from exc


def _read_rows(reader: csv.DictReader[str], given: tuple[str, ...] | None = None,
               legacy: bool = False, strict: bool = False) -> list[dict[str, Any]]:
    if not reader.fieldnames:
        raise ComplaintsError("empty file: no header row")
    names = [c.strip().lower() for c in reader.fieldnames]
    repeated = next((c for i, c in enumerate(names) if c and c in names[:i]), None)
    if strict and repeated is not None:
        raise ComplaintsError(f"the header has the column {repeated!r} more than once (columns "
                              f"{', '.join(str(i + 1) for i, c in enumerate(names) if c == repeated)}); nothing "
                              "imported. Keep one such column, or rename the others, and import the file again")
    cols = {c.strip().lower(): c for c in reader.fieldnames if c}
    has_range = "start" in cols and "end" in cols
    has_day = "date" in cols and "from" in cols and "to" in cols
    if not (has_range or has_day):
        raise ComplaintsError(f"need columns start,end or date,from,to; found {', '.join(cols) or 'none'}")
    rows, errors = [], []
    raws, extra = [], []
    for i, raw in enumerate(reader, start=2):  # line numbers as a spreadsheet shows them
        # fields past the header's columns (DictReader files them under None): not silently dropped
        if any((v or "").strip() for v in raw.get(None) or ()):  # type: ignore[call-overload]
            extra.append(i)
        raws.append({k.strip().lower(): (v or "").strip() for k, v in raw.items() if k})
    if strict and extra:
        raise ComplaintsError(f"more fields than the header has columns on line(s) {', '.join(map(str, extra[:20]))}"
                              f"{' …' if len(extra) > 20 else ''}; nothing imported. Give those fields a column "
                              "(or quote a field that holds the separator) and import the file again")
    slash = () if given is not None else _slash_order(
        [r.get(c, "") for r in raws for c in (("start", "end") if has_range else ("date",))], legacy)
    for i, r in enumerate(raws, start=2):  # line numbers as a spreadsheet shows them
        try:
            if has_range:
                start, end = _when(r["start"], slash, given), _when(r["end"], slash, given)
            else:
                start = _when(f"{r['date']} {r['from']}", slash, given)
                end = _when(f"{r['date']} {r['to']}", slash, given)
                if end < start:  # 23:50 to 00:10: one date for both, so the end is on the next day
                    end += timedelta(days=1)
            if end < start:
                raise ValueError("end is before start")
        except ValueError as exc:
            errors.append(f"line {i}: {exc}")
            continue
        rows.append({"row": i, "ref": r.get("ref", ""), "start": start, "end": end,
                     "facility": r.get("facility", ""), "unit": r.get("unit") or r.get("cell", ""),
                     "camera": r.get("camera", ""), "person": r.get("person", ""), "text": r.get("text", "")})
    if errors:
        raise ComplaintsError("nothing imported; fix these lines: " + "; ".join(errors[:20])
                              + (f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""))
    if not rows:
        raise ComplaintsError("no complaints in the file")
    return rows


def complaint_row(register_sha256: str, r: dict[str, Any]) -> Complaint:
    """The database row of one parsed register row (``parse_rows``)."""
    return Complaint(source_sha256=register_sha256, row=r["row"], ref=r["ref"], start_at=r["start"], end_at=r["end"],
                     facility=r["facility"], unit=r["unit"], camera=r["camera"], person=r["person"], text=r["text"])


def import_csv(case: Case, path: Path, actor: str, date_format: str | None = None) -> dict[str, Any]:
    """Preserve the register as evidence, then import its rows (all or nothing; re-import is a no-op)."""
    formats_for(date_format, strict=True)  # a format that cannot be right is refused before the file is read
    case.ensure_schema()
    if path.stat().st_size > MAX_BYTES:
        raise ComplaintsError(f"{path} is larger than {MAX_BYTES // 1024 // 1024} MB; not a complaints register")
    data = path.read_bytes()
    rows = parse_rows(data, date_format, strict=True)
    stored = case.store.put_file(path)
    with case.sessions() as s:
        if s.get(EvidenceObject, stored.sha256) is None:
            s.add(EvidenceObject(sha256=stored.sha256, size=stored.size, kind="file", stored_at=datetime.now(UTC)))
        existing = {r for (r,) in s.execute(select(Complaint.row).where(Complaint.source_sha256 == stored.sha256))}
        new = [r for r in rows if r["row"] not in existing]
        s.add_all(complaint_row(stored.sha256, r) for r in new)
        s.commit()
    if new:
        case.ledger.append(actor, "complaints.import", stored.sha256,
                           {"file": str(path.resolve()), "rows": len(new), "size": stored.size,
                            "date_format": date_format})
    return {"register_sha256": stored.sha256, "imported": len(new), "already_imported": len(rows) - len(new)}


def _overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


def _recording_then(cameras: list[dict[str, Any]], c0: datetime, c1: datetime) -> list[dict[str, Any]]:
    """The recordings of these cameras over [c0, c1] (or at c0, for a point in time); ``at_s``: where that time
    falls in the file, so a link opens there."""
    return [{"camera": cam["camera"], "sha256": r["sha256"], "name": r["name"],
             "from": max(c0, r["start"]).isoformat(), "to": min(c1, r["end"]).isoformat(),
             "at_s": round(max(0.0, (max(c0, r["start"]) - r["start"]).total_seconds()), 1)}
            for cam in cameras for r in cam["recordings"] if _overlap(c0, c1, r["start"], r["end"]) > 0
            or (c0 == c1 and r["start"] <= c0 <= r["end"])]


def complaints_report(case: Case) -> list[dict[str, Any]]:
    case.ensure_schema()
    tl = build_timeline(case)
    with case.sessions() as s:
        complaints = list(s.scalars(select(Complaint).order_by(Complaint.start_at)))
    out = []
    for c in complaints:
        # a point in time ("at 02:01") still deserves the minute around it
        c0, c1 = c.start_at, max(c.end_at, c.start_at)
        cams = [cam for cam in tl["cameras"] if not c.camera or cam["camera"] == c.camera]
        covering = _recording_then(cams, c0, c1)
        # a complaint about one camera: the others that were recording then may still have seen or heard it
        others = (_recording_then([cam for cam in tl["cameras"] if cam["camera"] != c.camera], c0, c1)
                  if c.camera else [])
        gaps = [{"camera": g["camera"], "start": g["start"].isoformat(), "end": g["end"].isoformat(),
                 "duration_s": g["duration_s"]}
                for cam in cams for g in cam["gaps"] if _overlap(c0, c1, g["start"], g["end"]) > 0
                or (c0 == c1 and g["start"] <= c0 <= g["end"])]
        flags = []
        if gaps:
            flags.append("recording missing during the complaint window")
        if not covering:
            flags.append("no recording of this camera covers the complaint window" if c.camera
                         else "no recording covers the complaint window")
        out.append({"id": c.id, "ref": c.ref, "start": c0.isoformat(), "end": c1.isoformat(),
                    "facility": c.facility, "unit": c.unit, "camera": c.camera, "person": c.person,
                    "text": c.text, "covered_by": covering, "others_recording": others, "gaps": gaps,
                    "flags": flags})
    return out

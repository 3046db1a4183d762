"""Edits inside a file: what a recording says about itself that an unedited recording would not.

* **The burnt-in clock jumps** between two frames: forwards (a cut-out minute: the frames between were removed)
  or backwards (a stretch spliced in from earlier), or **runs backwards** for a while. The clock is read (overlay
  OCR, recognition only, on the boxes ``overlay.locate`` found) about once a second (at most ``MAX_SAMPLES``
  frames spread over the video); where two readings disagree with the time between them, the frames between are
  bisected down to the two adjacent frames where the clock's offset changes, so a jump is dated to the frame.
  A clock shows whole seconds, so a reading's offset (clock minus position in the video) varies by up to a
  second in an unbroken recording; a jump must exceed ``TOLERANCE_S`` (and be at least ``MIN_JUMP_S``), and must
  be seen on two frames: one reading unlike both its neighbours, which agree with each other, or a stretch under
  ``MIN_SEGMENT_S`` between two stretches that agree, is a misread digit, not an edit.
* **Frame timestamps with holes**: consecutive video frames (presentation order) further apart than
  ``HOLE_FACTOR`` times the usual frame spacing (and ``MIN_HOLE_S``), or timestamps that go back.
* **Codec parameters changing mid-file**: picture size or pixel format of the keyframes changing.
* **The container's creation time disagreeing with the overlay clock** by more than ``CREATION_TOLERANCE_S``
  at the start and at the end (some cameras stamp the file when it is closed); a difference of a whole number
  of hours is said to look like a time zone.

Each finding is a ``signals`` row (analyzer ``edits``): its kind, the moment (``start_s``, ``end_s`` seconds
into the video), a value (the jump in seconds, the hole's length) and in ``data`` what was seen, as a sentence
and as the readings it rests on.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from custodes.media.source import MediaRef, av_source, limit_decoder, open_source

VERSION = "edits-1"
ANALYZER = "edits"
KINDS = ("clock_jump_forward", "clock_jump_backward", "clock_runs_backwards", "timestamp_gap",
         "timestamps_backwards", "codec_change", "creation_time_mismatch")
TOLERANCE_S = 1.5
MIN_JUMP_S = 2.0  # a clock of whole seconds cannot show a smaller jump for certain
MIN_SEGMENT_S = 1.0
MAX_SAMPLES = 150
MAX_READS = 400  # frames OCR'd in all, bisection included
HOLE_FACTOR = 4.0
MIN_HOLE_S = 0.25
CREATION_TOLERANCE_S = 120.0
MAX_KEYFRAMES = 5000  # keyframes decoded for the codec check


@dataclass
class Finding:
    kind: str
    start_s: float
    end_s: float
    value: float
    seen: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start_s": self.start_s, "end_s": self.end_s, "value": self.value,
                "seen": self.seen, **self.data}


# -- the container ----------------------------------------------------------------


@dataclass
class _Scan:
    times: list[float] = field(default_factory=list)  # video frame times, presentation order
    findings: list[Finding] = field(default_factory=list)


def _hms(t: datetime) -> str:
    return t.isoformat(sep=" ")


def scan_container(ref: MediaRef) -> _Scan:
    """Frame times, holes and backward steps in them, and keyframe parameters changing. Never raises."""
    import av

    out = _Scan()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            container = open_source(av_source(ref))
    except Exception:  # PyAV raises many error types for bad input
        return out
    try:
        if not container.streams.video:
            return out
        vs = container.streams.video[0]
        limit_decoder(vs)
        tb = float(vs.time_base or 0) or 1e-6
        pts: list[float] = []
        dts_back: list[tuple[float, float]] = []
        last_dts = None
        key_pkts = 0
        state: dict[str, Any] = {"params": None, "t": 0.0}
        # keyframes only are decoded; the decoder hands frames back late (and the last ones at the flush), in the
        # order their packets went in: each frame is dated by the oldest keyframe packet not yet matched
        keys: collections.deque[float] = collections.deque()

        def check(f: Any) -> None:
            ft = keys.popleft() if keys else float(f.time or 0.0)
            now = (f.width, f.height, f.format.name if f.format else None)
            params = state["params"]
            if params is not None and now != params:
                out.findings.append(Finding(
                    "codec_change", round(ft, 3), round(ft, 3), 1.0,
                    f"the picture changes from {params[0]}×{params[1]} {params[2]} to {now[0]}×{now[1]} {now[2]} "
                    f"at {ft:.2f} s (the keyframe before at {state['t']:.2f} s): a file joined from two "
                    "recordings, or re-encoded in part",
                    {"before": list(params), "after": list(now), "previous_keyframe_s": round(state["t"], 3)}))
            state["params"], state["t"] = now, ft

        vs.codec_context.skip_frame = "NONKEY"
        with contextlib.suppress(av.error.FFmpegError, EOFError, ValueError):
            for packet in container.demux(vs):
                if packet.size == 0:
                    continue
                if packet.pts is not None:
                    pts.append(packet.pts * tb)
                if packet.dts is not None:
                    d = packet.dts * tb
                    if last_dts is not None and d < last_dts - 1e-6:
                        dts_back.append((last_dts, d))
                    last_dts = d
                if packet.is_keyframe and key_pkts < MAX_KEYFRAMES:
                    key_pkts += 1
                    keys.append((packet.pts if packet.pts is not None else packet.dts or 0) * tb)
                    try:
                        frames = packet.decode()
                    except av.error.FFmpegError:
                        keys.pop()
                        continue
                    for f in frames:
                        check(f)
        with contextlib.suppress(av.error.FFmpegError, EOFError, ValueError):
            for f in vs.codec_context.decode(None):  # the decoder's delayed frames
                check(f)
        times = sorted(pts)
        out.times = times
        if len(times) >= 3:
            deltas = [b - a for a, b in zip(times, times[1:], strict=False)]
            usual = sorted(deltas)[len(deltas) // 2]
            for a, b in zip(times, times[1:], strict=False):
                if b - a > max(HOLE_FACTOR * usual, MIN_HOLE_S):
                    out.findings.append(Finding(
                        "timestamp_gap", round(a, 3), round(b, 3), round(b - a, 3),
                        f"no frame between {a:.2f} s and {b:.2f} s: a hole of {b - a:.2f} s in the frame "
                        f"timestamps, where frames come every {usual:.3f} s", {"usual_spacing_s": round(usual, 4)}))
        for before, after in dts_back[:20]:
            out.findings.append(Finding(
                "timestamps_backwards", round(after, 3), round(before, 3), round(after - before, 3),
                f"the frame timestamps go back from {before:.2f} s to {after:.2f} s: two recordings joined, or "
                "frames moved", {}))
        return out
    except Exception:  # a poison file must not stop the timeline
        return out
    finally:
        with contextlib.suppress(Exception):
            container.close()


# -- the burnt-in clock -------------------------------------------------------------


@dataclass
class _Reading:
    t: float
    clock: datetime
    text: str

    @property
    def offset(self) -> float:
        return (self.clock - datetime(1970, 1, 1)).total_seconds() - self.t


class _ClockReader:
    def __init__(self, ref: MediaRef, regions: Any, times: list[float]) -> None:
        self.ref, self.regions, self.times = ref, regions, times
        self.reads = 0
        self.cache: dict[float, _Reading | None] = {}

    def read(self, ts: list[float]) -> None:
        from custodes.analyze import overlay

        todo = [t for t in dict.fromkeys(ts) if t not in self.cache][:max(0, MAX_READS - self.reads)]
        if not todo:
            return
        frames = overlay._frames_at(self.ref, todo)
        self.reads += len(todo)
        got: dict[float, _Reading | None] = dict.fromkeys(todo)
        for r in overlay.read_text(frames, self.regions, tesseract=False):
            # _frames_at gives the first frame at or after each time asked: these are frame times already
            key = todo[0]
            for t in todo:
                if abs(t - r.t) < abs(key - r.t):
                    key = t
            got[key] = _Reading(r.t, r.clock, r.text) if r.clock is not None else None
        self.cache.update(got)

    def get(self, t: float) -> _Reading | None:
        return self.cache.get(t)


def _agree(a: _Reading, b: _Reading) -> bool:
    return abs(a.offset - b.offset) <= TOLERANCE_S


def _fits(group: list[_Reading], r: _Reading) -> bool:
    """Whether ``r`` belongs with ``group``: an unbroken clock keeps every offset within a second of the others."""
    offs = [g.offset for g in group] + [r.offset]
    return max(offs) - min(offs) <= TOLERANCE_S


def drop_misreads(rs: list[_Reading]) -> list[_Reading]:
    """Without readings unlike both their neighbours where those agree with each other: a misread digit."""
    misread = {i for i in range(1, len(rs) - 1)
               if not _agree(rs[i], rs[i - 1]) and not _agree(rs[i], rs[i + 1]) and _agree(rs[i - 1], rs[i + 1])}
    return [r for i, r in enumerate(rs) if i not in misread]


def drop_blips(segs: list[list[_Reading]]) -> list[list[_Reading]]:
    """Without segments shorter than ``MIN_SEGMENT_S`` between two that agree with each other: a digit misread on
    a few neighbouring frames (a soft re-encode blurs them alike), not a clock that jumped and jumped back."""
    segs = [list(x) for x in segs]
    k = 1
    while k < len(segs) - 1:
        mid = segs[k]
        if mid[-1].t - mid[0].t < MIN_SEGMENT_S and _fits(segs[k - 1], segs[k + 1][0]) and \
                _fits(segs[k + 1], segs[k - 1][-1]):
            segs[k - 1:k + 2] = [segs[k - 1] + segs[k + 1]]
            k = max(1, k - 1)
            continue
        k += 1
    return segs


def _segments(rs: list[_Reading]) -> list[list[_Reading]]:
    segs: list[list[_Reading]] = []
    for r in rs:
        if segs and _fits(segs[-1], r):
            segs[-1].append(r)
        else:
            segs.append([r])
    return segs


def _segment_start(rs: list[_Reading]) -> float:
    """The tightest start estimate of readings that agree (clock − t lies in (start − 1, start])."""
    return max(r.offset for r in rs)


def clock_findings(ref: MediaRef, regions: Any, times: list[float], known: list[Any] | None = None) -> list[Finding]:
    """Jumps and backward runs of the burnt-in clock, each dated to the frame. ``times``: every video frame's
    time (``scan_container``); ``known``: overlay readings already made (``OverlayReading``), reused."""
    if not times or regions is None:
        return []
    reader = _ClockReader(ref, regions, times)
    for r in known or []:  # the overlay's readings: the frame at or after each time it asked for
        i = bisect.bisect_left(times, r.t - 1e-3)
        if i < len(times) and r.clock is not None:
            reader.cache[times[i]] = _Reading(times[i], r.clock, r.text)
    span = times[-1] - times[0]
    step = max(1.0, span / MAX_SAMPLES)
    grid, t = [], times[0]
    while t <= times[-1] + 1e-9:
        i = min(len(times) - 1, bisect.bisect_left(times, t - 1e-6))
        have = any(abs(k - times[i]) < step / 2 for k in reader.cache)
        if not have:
            grid.append(times[i])
        t += step
    grid.append(times[-1])
    reader.read(grid)

    def readings() -> list[_Reading]:
        return [r for k, r in sorted(reader.cache.items()) if r is not None]

    def index(r: _Reading) -> int:
        return bisect.bisect_left(times, r.t - 1e-6)

    # bisect every boundary between segments down to adjacent frames: the frame after is read as well (a jump is
    # seen on two frames, a misread on one)
    for _ in range(4):
        segs = _segments(readings())
        moved = False
        for a, b in zip(segs, segs[1:], strict=False):
            lo, hi = index(a[-1]), index(b[0])
            group = list(a)
            while hi - lo > 1 and reader.reads < MAX_READS:
                mid = (lo + hi) // 2
                reader.read([times[mid]])
                m = reader.get(times[mid])
                moved = True
                if m is None:
                    break  # an unreadable frame: the edit is dated to this interval
                if _fits(group, m):
                    lo = mid
                    group.append(m)
                else:
                    hi = mid
            if hi - lo == 1 and hi + 1 < len(times) and times[hi + 1] not in reader.cache:
                reader.read([times[hi + 1]])
                moved = True
        if not moved:
            break
    segs = drop_blips(_segments(drop_misreads(readings())))
    out: list[Finding] = []
    i = 0
    while i < len(segs) - 1:
        a, b = segs[i], segs[i + 1]
        last, first = a[-1], b[0]
        # a backward run: the shown clock keeps going back over several breaks
        j = i
        while j < len(segs) - 1 and segs[j + 1][0].clock <= segs[j][-1].clock:
            j += 1
        if j - i >= 2:
            end = segs[j][0]
            out.append(Finding(
                "clock_runs_backwards", round(first.t, 3), round(end.t, 3),
                round((end.clock - last.clock).total_seconds(), 1),
                f"the burnt-in clock runs backwards from {first.t:.2f} s: it shows {_hms(last.clock)} at "
                f"{last.t:.2f} s, {_hms(first.clock)} at {first.t:.2f} s and {_hms(end.clock)} at {end.t:.2f} s",
                {"readings": _shown([last, first, end])}))
            i = j
            continue
        jump = _segment_start(b) - _segment_start(a)
        if len(a) < 2 or len(b) < 2 or abs(jump) < MIN_JUMP_S:
            i += 1
            continue  # one side seen on one frame only (the first or last read), or less than the clock can show
        kind = "clock_jump_forward" if jump > 0 else "clock_jump_backward"
        what = (f"about {jump:.0f} s of clock time are missing" if jump > 0 else
                f"the clock goes back about {-jump:.0f} s")
        out.append(Finding(
            kind, round(first.t, 3), round(first.t, 3), round(jump, 1),
            f"the burnt-in clock jumps from {_hms(last.clock)} (at {last.t:.2f} s) to {_hms(first.clock)} (at "
            f"{first.t:.2f} s, the next frame read): {what}",
            {"readings": _shown([last, first]), "frame_before_s": round(last.t, 3)}))
        i += 1
    return out


def _shown(rs: list[_Reading]) -> list[dict[str, Any]]:
    return [{"t": round(r.t, 3), "clock": r.clock.isoformat(), "text": r.text} for r in rs]


# -- creation time --------------------------------------------------------------------


def creation_finding(creation_time: str | None, overlay_start: datetime | None,
                     duration_s: float) -> Finding | None:
    if not creation_time or overlay_start is None:
        return None
    try:
        created = datetime.fromisoformat(creation_time.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None
    end = overlay_start + timedelta(seconds=duration_s)
    diffs = [(created - overlay_start).total_seconds(), (created - end).total_seconds()]
    if min(abs(d) for d in diffs) <= CREATION_TOLERANCE_S:
        return None
    d = diffs[0]
    hours = round(d / 3600)
    zone = hours != 0 and abs(hours) <= 14 and abs(d - hours * 3600) <= CREATION_TOLERANCE_S
    seen = (f"the container says it was created at {_hms(created)}, but the burnt-in clock starts at "
            f"{_hms(overlay_start)} ({_span(d)} apart)")
    if zone:
        seen += f": a whole number of hours ({hours:+d} h), perhaps a time zone"
    return Finding("creation_time_mismatch", 0.0, 0.0, round(d, 1), seen,
                   {"creation_time": creation_time, "overlay_start": overlay_start.isoformat(),
                    "looks_like_time_zone": zone})


def _span(s: float) -> str:
    s = abs(s)
    if s < 3600:
        return f"{s / 60:.1f} min"
    if s < 86400 * 2:
        return f"{s / 3600:.2f} h"
    return f"{s / 86400:.1f} days"


def find_edits(ref: MediaRef, duration_s: float, creation_time: str | None, overlay_res: Any = None) -> list[Finding]:
    """Every finding for one video; ``overlay_res``: its ``OverlayResult`` (regions and readings reused)."""
    scan = scan_container(ref)
    found = list(scan.findings)
    regions = getattr(overlay_res, "regions", None)
    clocked = any(getattr(r, "clock", None) is not None for r in getattr(overlay_res, "readings", None) or [])
    if regions is not None and scan.times and clocked:  # no clock read on the overlay's frames: none to follow
        with contextlib.suppress(Exception):  # OCR of a hostile frame must not stop the timeline
            found += clock_findings(ref, regions, scan.times, getattr(overlay_res, "readings", None))
    start = getattr(overlay_res, "start", None)
    if start is not None and not any(f.kind.startswith("clock_") for f in found):
        cf = creation_finding(creation_time, start, duration_s)
        if cf is not None:
            found.append(cf)
    return sorted(found, key=lambda f: f.start_s)


__all__ = ["ANALYZER", "KINDS", "VERSION", "Finding", "clock_findings", "creation_finding", "find_edits",
           "scan_container"]

"""Carving video out of a file system's unallocated space by structure, and judging what of it plays.

A recording whose directory entry (or inode) is gone leaves no name and no block list: only its bytes. Camera
files start on a sector boundary with a recognisable header, and their structure says how long they are:

* MP4/MOV (ISO base media): a run of top-level boxes (``size`` + ``type``; ``ftyp``, ``moov``, ``mdat``, ``free``,
  ``wide``, ``uuid``…), starting with ``ftyp`` (or, for old QuickTime, ``moov``/``mdat``/``wide``) and holding
  an ``mdat`` with an ``ftyp``, ``moov`` or ``moof``; the file is the run of boxes, ending where the next eight
  bytes are not a box (a file whose ``moov`` was overwritten is carved to the end of its ``mdat``: its frames are
  there, its index is not, and playback says so);
* AVI: ``RIFF`` + size + ``AVI `` with its ``LIST hdrl`` header, followed by any ``RIFF … AVIX`` extensions
  (OpenDML files over 1 GiB).

Only sector-aligned headers are looked at (files start on a cluster, and clusters on sectors), and only in
blocks no allocated file holds: a header inside a stored file is that file's business. Sizes are bounded: a box
larger than the file system, or a file larger than ``MAX_CARVED_BYTES``, is refused as hostile; a file that runs
past the file system's end is carved to the end and marked partial. The bytes are assumed contiguous from the
header (what carving can know): where they cross blocks another file holds, the carved file is marked partial.
The parsing is bounded too: a later box of a run already parsed is not parsed again as a header of its own
(bytes crafted as endless chains of small boxes cost each box once, not once per sector), and one scan parses
at most ``SCAN_WORK_BASE`` boxes plus one per KiB scanned; past that it stops and says where and why.

``playback`` decodes a stored file's video and says how much of it plays: a recovered or carved file that does
not play whole is kept and marked partial with what could be decoded.
"""

from __future__ import annotations

import contextlib
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

SECTOR = 512
SCAN_CHUNK = 4 << 20
MAX_CARVED_BYTES = 64 << 30  # no camera writes one file this large; a header claiming more is hostile
MAX_CARVED = 10_000  # carved files from one file system
MIN_CARVED_BYTES = 1024
MAX_BOXES = 100_000  # top-level boxes of one MP4 (fragmented MP4 has two per fragment)
# boxes and chunks parsed in all of one file system's scan: a fixed allowance plus one per KiB scanned (a real
# box run spends its boxes once, on bytes then skipped; only bytes crafted to be re-walked exhaust it)
SCAN_WORK_BASE = 2_000_000
SCAN_WORK_PER_BYTE = 1 / 1024
# top-level box types of ISO base media / QuickTime files
TOP_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"meta", b"pdin", b"moof", b"mfra",
             b"styp", b"sidx", b"ssix", b"prft", b"emsg", b"pnot", b"udta", b"junk", b"PICT", b"beam", b"jp2h"}
MP4_STARTS = (b"ftyp", b"moov", b"mdat", b"wide")
# fully decoded frames before playback goes on with keyframes only (a long recording still gets its end checked)
FULL_DECODE_FRAMES = 9000


@dataclass
class Carved:
    """One file found by structure: ``offset`` and ``length`` in bytes from the start of the scanned area."""

    offset: int
    length: int
    kind: str  # "mp4" | "avi"
    structure: list[tuple[str, int]] = field(default_factory=list)  # (box or chunk, bytes)
    truncated: str | None = None  # why it was cut short (runs past the end of the file system)
    refused: str | None = None  # a hostile header: nothing carved

    @property
    def ext(self) -> str:
        return {"mp4": "mp4", "avi": "avi", "stopped": "txt"}[self.kind]

    def describe(self) -> str:
        shown = ", ".join(f"{name} {size:,}" for name, size in self.structure[:8])
        more = f" and {len(self.structure) - 8} more" if len(self.structure) > 8 else ""
        what = "MP4/MOV boxes" if self.kind == "mp4" else "RIFF AVI chunks"
        return f"{what}: {shown}{more}"


Read = Callable[[int, int], bytes]


@dataclass
class ScanWork:
    """The structure parsing one scan spends: boxes and chunks parsed, against ``budget`` (None: unbounded).

    ``walked``: the sector-aligned offsets of the later boxes of the box runs parsed, up to ``run_end`` (a
    header there is a later box of a run already walked: parsing it again gives a tail of the same run)."""

    budget: int | None = None
    boxes: int = 0
    stopped_at: int | None = None
    walked: set[int] = field(default_factory=set)
    run_end: int = 0

    def spend(self) -> bool:
        """One more box or chunk to parse: False when the budget is spent (nothing counted)."""
        if self.spent():
            return False
        self.boxes += 1
        return True

    def spent(self) -> bool:
        return self.budget is not None and self.boxes >= self.budget


def _box_type_ok(t: bytes) -> bool:
    return len(t) == 4 and all(32 <= c < 127 for c in t)


def parse_mp4(read: Read, offset: int, end: int, work: ScanWork | None = None) -> Carved | None:
    """The run of top-level boxes starting at ``offset`` (None when it is not an MP4/MOV file). ``work``
    counts the boxes parsed and keeps where the run's boxes lie (``ScanWork.walked``)."""
    pos, seen = offset, set()
    boxes: list[tuple[str, int]] = []
    truncated = None
    while pos + 8 <= end and len(boxes) < MAX_BOXES:
        if work is not None:
            if pos > offset and pos % SECTOR == 0:
                work.walked.add(pos)
            work.run_end = max(work.run_end, pos)
            if not work.spend():
                return None
        head = read(pos, 16)
        if len(head) < 8:
            break
        size, btype = struct.unpack(">I4s", head[:8])
        header = 8
        if size == 1:
            if len(head) < 16:
                break
            size, header = struct.unpack(">Q", head[8:16])[0], 16
        if btype not in TOP_BOXES or size < header or (size == 0 and btype != b"mdat"):
            break
        if not boxes and btype not in MP4_STARTS:
            return None
        if size == 0:  # "to the end of the file": a carver cannot know where that is
            return Carved(offset, 0, "mp4", [(btype.decode(), 0)],
                          refused=f"MP4 header at byte {offset:,}: its mdat box runs 'to the end of the file' "
                                  "(size 0), which carving cannot bound: not carved")
        if size > MAX_CARVED_BYTES or pos - offset + size > MAX_CARVED_BYTES:
            return Carved(offset, 0, "mp4", [*((n, s) for n, s in boxes), (btype.decode(), size)],
                          refused=f"MP4 header at byte {offset:,}: box {btype.decode()!r} declares {size:,} bytes, "
                                  f"more than any recording ({MAX_CARVED_BYTES:,}): refused as hostile")
        boxes.append((btype.decode(), size))
        seen.add(btype)
        if pos + size > end:
            truncated = (f"box {btype.decode()!r} declares {size:,} bytes but the file system ends "
                         f"{end - pos:,} bytes after it starts: carved to the end")
            pos = end
            break
        pos += size
    if not boxes:
        return None
    if b"mdat" not in seen or not seen & {b"ftyp", b"moov", b"moof"}:
        return None  # a lone ftyp or moov, a bare mdat: a fragment, or bytes that look like a header
    if pos - offset < MIN_CARVED_BYTES:
        return None
    return Carved(offset, pos - offset, "mp4", boxes, truncated)


def parse_avi(read: Read, offset: int, end: int, work: ScanWork | None = None) -> Carved | None:
    head = read(offset, 24)
    if len(head) < 24 or head[:4] != b"RIFF" or head[8:12] != b"AVI " or head[12:16] != b"LIST" \
            or head[20:24] != b"hdrl":
        return None
    pos, truncated = offset, None
    chunks: list[tuple[str, int]] = []
    while pos + 12 <= end:
        if work is not None and not work.spend():
            return None
        h = read(pos, 12)
        if len(h) < 12 or h[:4] != b"RIFF" or h[8:12] != (b"AVI " if not chunks else b"AVIX"):
            break
        size = struct.unpack("<I", h[4:8])[0] + 8
        size += size & 1
        if pos - offset + size > MAX_CARVED_BYTES:
            return Carved(offset, 0, "avi", chunks, refused=f"AVI header at byte {offset:,} declares more than "
                                                            f"{MAX_CARVED_BYTES:,} bytes: refused as hostile")
        chunks.append(("RIFF " + h[8:12].decode().strip(), size))
        if pos + size > end:
            truncated = (f"RIFF chunk declares {size:,} bytes but the file system ends {end - pos:,} bytes after "
                         "it starts: carved to the end")
            pos = end
            break
        pos += size
    if not chunks or pos - offset < MIN_CARVED_BYTES:
        return None
    return Carved(offset, pos - offset, "avi", chunks, truncated)


def scan(read: Read, ranges: list[tuple[int, int]], end: int, skip: Callable[[int], bool] | None = None,
         limit: int = MAX_CARVED, work: ScanWork | None = None) -> Iterator[Carved]:
    """Files found by structure whose header lies, sector-aligned, in one of ``ranges`` ((start, stop) byte
    offsets, sorted); a file may run on past its range (up to ``end``). ``skip(offset)``: headers not to carve
    (inside a file recovered by other means). Found files do not overlap: scanning resumes after each.

    A header that is a later box of a run of boxes already parsed (and rejected or refused) is not parsed
    again: it would give a tail of the same run. The boxes parsed in all are bounded (``work``; by default
    ``SCAN_WORK_BASE`` plus ``SCAN_WORK_PER_BYTE`` of the bytes in ``ranges``): when they are spent, scanning
    stops and a last ``Carved`` with ``kind`` "stopped" says where and why (nothing carved)."""
    if work is None:
        work = ScanWork(SCAN_WORK_BASE + int(sum(b - a for a, b in ranges) * SCAN_WORK_PER_BYTE))
    resume, found = 0, 0
    for start, stop in ranges:
        pos = max(start, resume)
        pos += -pos % SECTOR
        while pos < stop:
            n = min(SCAN_CHUNK, stop - pos)
            data = read(pos, n + 12)
            if not data:
                break
            hits = []
            for sig, back in ((b"ftyp", 4), (b"moov", 4), (b"mdat", 4), (b"wide", 4), (b"RIFF", 0)):
                i = data.find(sig)
                while i != -1:
                    at = i - back
                    if at >= 0 and at < n and at % SECTOR == 0:
                        hits.append(pos + at)
                    i = data.find(sig, i + 1)
            next_pos = pos + n
            for at in sorted(set(hits)):
                if at < resume or (skip is not None and skip(at)):
                    continue
                if at < work.run_end and at in work.walked:
                    continue  # a later box of a run already parsed
                if len(work.walked) > 2 * MAX_BOXES:
                    work.walked = {w for w in work.walked if w > at}
                if work.spent():
                    yield _stopped(at, work)
                    return
                is_avi = read(at, 4) == b"RIFF"
                c = parse_avi(read, at, end, work) if is_avi else parse_mp4(read, at, end, work)
                if c is None and work.spent():
                    yield _stopped(at, work)
                    return
                if c is None:
                    continue
                found += 1
                yield c
                if found >= limit:
                    return
                if c.refused is None:
                    resume = at + c.length
            if resume > next_pos:
                next_pos = resume + (-resume % SECTOR)
            pos = next_pos


def _stopped(at: int, work: ScanWork) -> Carved:
    work.stopped_at = at
    return Carved(at, 0, "stopped", refused=(
        f"carving stopped early at byte {at:,}: {work.boxes:,} box and chunk headers parsed, the most one file "
        "system's scan may spend (bytes crafted or damaged to look like endless runs of MP4 boxes); the "
        "unallocated space after that byte was not searched for deleted video"))


# -- what plays -------------------------------------------------------------------


def looks_like_video(head: bytes) -> bool:
    """MP4/MOV, AVI, Matroska/WebM or MPEG-TS/PS by their first bytes."""
    return (head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free") or head[:4] == b"RIFF" and head[8:12] == b"AVI "
            or head[:4] == b"\x1a\x45\xdf\xa3" or head[:1] == b"G" and head[188:189] == b"G"
            or head[:4] == b"\x00\x00\x01\xba")


class _Nameless:
    """A file object PyAV reads by content alone (it hands a file object's ``name`` to FFmpeg as the URL)."""

    name = ""

    def __init__(self, fh: Any) -> None:
        self._f = fh

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._f.read(n)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        pos: int = self._f.seek(offset, whence)
        return pos

    def tell(self) -> int:
        pos: int = self._f.tell()
        return pos


def playback(ref: Any) -> dict[str, Any]:
    """How much of a video decodes: ``{"plays_whole", "decoded_s", "duration_s", "frames", "errors", "note"}``.

    Every video packet is demuxed and decoded (after ``FULL_DECODE_FRAMES`` frames, keyframes only); it plays
    whole when it opens, decodes without error and its frames reach the container's duration (within a second
    or a tenth of it). ``ref``: a media reference or an open binary file (an object still staged). Never raises."""
    import av

    from custodes.media.source import av_source, limit_decoder, open_source

    out: dict[str, Any] = {"plays_whole": False, "decoded_s": 0.0, "duration_s": None, "frames": 0, "errors": 0,
                           "note": ""}
    source = _Nameless(ref) if hasattr(ref, "read") else av_source(ref)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            container = open_source(source)
    except Exception as exc:  # PyAV raises many error types for bad input
        out["note"] = f"does not open as media ({type(exc).__name__}): nothing of it decodes"
        return out
    try:
        if not container.streams.video:
            out["note"] = "opens, but holds no video stream"
            return out
        vs = container.streams.video[0]
        limit_decoder(vs)
        duration = None
        if container.duration and container.duration > 0:
            duration = container.duration / 1_000_000
        elif vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        out["duration_s"] = round(duration, 3) if duration else None
        first: float | None = None
        last: float | None = None
        frames = errors = 0
        step = 0.0
        try:
            for packet in container.demux(vs):
                if packet.size == 0:
                    continue
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    errors += 1
                    continue
                for frame in decoded:
                    if frame.time is None:
                        continue
                    t = float(frame.time)
                    if last is not None and t > last:
                        step = t - last if not step else min(step, t - last)
                    first = t if first is None else min(first, t)
                    last = t if last is None else max(last, t)
                    frames += 1
                    if frames == FULL_DECODE_FRAMES:
                        vs.codec_context.skip_frame = "NONKEY"
        except (av.error.FFmpegError, EOFError, ValueError) as exc:
            errors += 1
            out["note"] = f"demuxing stops: {' '.join(str(exc).split())[:160]}"
        out["frames"], out["errors"] = frames, errors
        if last is not None:  # the seconds of picture that decode: frames times their spacing, within the span
            span = last - (first or 0.0) + (step or 0.0)
            out["decoded_s"] = round(min(span, frames * step) if step else span, 3)
            out["reaches_s"] = round(last + (step or 0.0), 3)
        if frames == 0:
            out["note"] = out["note"] or "no video frame decodes"
            return out
        if duration:
            short = duration - min(out["decoded_s"], out["reaches_s"])
            whole = short <= max(1.0, duration * 0.1)
        else:
            whole = True
        out["plays_whole"] = bool(whole and errors == 0)
        if not out["plays_whole"] and not out["note"]:
            out["note"] = (f"{errors} packet(s) fail to decode" if errors else
                           f"frames decode to {out['decoded_s']:.1f} s of {duration:.1f} s")
        return out
    except Exception as exc:  # a poison file must not stop the ingest
        out["note"] = f"decoding fails ({type(exc).__name__})"
        return out
    finally:
        with contextlib.suppress(Exception):  # closing a broken container
            container.close()


def playback_summary(p: dict[str, Any]) -> str:
    """One sentence on what played, for a recovery basis."""
    if p["frames"] == 0:
        return f"it does not play: {p['note']}"
    of = f" of the container's {p['duration_s']:.1f} s" if p.get("duration_s") else ""
    errs = f", {p['errors']} packet(s) failed" if p["errors"] else ""
    return f"{p['decoded_s']:.1f} s{of} decode ({p['frames']} frames{errs})"


__all__ = ["Carved", "ScanWork", "looks_like_video", "parse_avi", "parse_mp4", "playback", "playback_summary", "scan"]

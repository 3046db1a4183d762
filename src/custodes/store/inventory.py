"""What a case holds, as a person names it: every object with what it is, and items found by name or hash."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from sqlalchemy import select

from custodes.store.db import Complaint, Derivative, EvidenceObject, MediaProbe, Provenance
from custodes.textsafe import printable

IMAGE = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".webp"}
DOCUMENT = {".pdf", ".doc", ".docx", ".odt", ".rtf", ".txt", ".md", ".eml", ".msg", ".htm", ".html", ".xml"}
SPREADSHEET = {".csv", ".xls", ".xlsx", ".ods", ".tsv"}
DERIVED = {"redaction": "redacted copy"}


class ItemNotFound(Exception):
    """A name or hash that names no item, or more than one: the sentence says which."""


def _kind_of_file(name: str) -> str:
    ext = posixpath.splitext(name.lower())[1]
    if ext in IMAGE:
        return "image"
    if ext in DOCUMENT:
        return "document"
    if ext in SPREADSHEET:
        return "spreadsheet"
    return "file"


def describe(kind: str, media: MediaProbe | None, name: str, derived: tuple[str, str] | None = None,
             register: bool = False) -> str:
    """What an object is, in words: ``video``, ``redacted copy of X``, ``document``, ``complaints register`` …"""
    if derived is not None:
        what, parent_name = derived
        return f"{DERIVED.get(what, what)} of {parent_name}"
    if register:
        return "complaints register"
    if kind == "archive":
        return "archive"
    if media is not None and media.status in ("ok", "damaged"):
        sort = "video" if media.width else "audio" if media.audio_codec else "media"
        return sort if media.status == "ok" else f"{sort} (damaged)"
    if media is not None and media.status == "unreadable":
        return "unreadable media"
    return _kind_of_file(name)


def list_items(case: Any) -> list[dict[str, Any]]:
    """Every stored object (oldest first) with its media facts, what it is and every place it came from."""
    case.ensure_schema()
    with case.sessions() as s:
        objs = list(s.scalars(select(EvidenceObject).order_by(EvidenceObject.stored_at)))
        media = {m.sha256: m for m in s.scalars(select(MediaProbe))}
        prov: dict[str, list[Provenance]] = {}
        for p in s.scalars(select(Provenance).order_by(Provenance.source_path, Provenance.member_path)):
            prov.setdefault(p.sha256, []).append(p)
        derived = {d.sha256: (d.kind, d.parent_sha256) for d in s.scalars(select(Derivative))}
        registers = {sha for (sha,) in s.execute(select(Complaint.source_sha256).distinct())}
    first = {sha: ps[0].original_name for sha, ps in prov.items() if ps}
    docs = []
    for o in objs:
        m = media.get(o.sha256)
        der = derived.get(o.sha256)
        name = first.get(o.sha256, "")
        of = None
        if der is not None:
            of = (der[0], first.get(der[1], der[1][:12] + "…"))
            name = name or _derived_name(first.get(der[1], der[1][:12]), der[0])
        docs.append({
            "sha256": o.sha256, "size": o.size, "kind": o.kind,
            "what": describe(o.kind, m, name, of, o.sha256 in registers), "name": name or None,
            "derived_from": None if der is None else {"original": der[1], "kind": der[0]},
            "media": None if m is None else {
                "status": m.status, "reason": m.reason, "container": m.container, "duration_s": m.duration_s,
                "width": m.width, "height": m.height, "fps": m.fps, "video_codec": m.video_codec,
                "audio_codec": m.audio_codec, "creation_time": m.creation_time, "tags": m.tags},
            "copies": [{"source_path": p.source_path, "member_path": p.member_path, "name": p.original_name,
                        "mtime_ns": p.mtime_ns, "batch": p.batch_id} for p in prov.get(o.sha256, [])],
        })
    return docs


def _derived_name(parent: str, kind: str) -> str:
    stem, ext = posixpath.splitext(parent)
    return f"{stem} ({DERIVED.get(kind, kind)}){ext}"


_HEX = re.compile(r"[0-9a-fA-F]{8,64}")


def resolve(case: Any, ref: str) -> str:
    """The SHA-256 of the one item ``ref`` names: a SHA-256 or 8+ digits of one, a file name as ingested
    (``CAM01_0200.mp4``), or the end of its path (``CAM-01/CAM01_0200.mp4``)."""
    ref = ref.strip()
    if not ref:
        raise ItemNotFound("give an item's file name or SHA-256 (8+ digits)")
    with case.sessions() as s:
        if _HEX.fullmatch(ref):
            found = sorted(sha for (sha,) in s.execute(select(EvidenceObject.sha256).where(
                EvidenceObject.sha256.like(f"{ref.lower()}%"))))
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise ItemNotFound(f"{ref} is the start of {len(found)} items' SHA-256: give more digits")
        tail = ref.replace("\\", "/").strip("/")
        base = posixpath.basename(tail)
        matches: dict[str, str] = {}
        for sha, src, member in s.execute(select(Provenance.sha256, Provenance.source_path, Provenance.member_path)
                                          .where(Provenance.original_name == base)
                                          .order_by(Provenance.source_path, Provenance.member_path)):
            path = (src + ("!/" + member if member else "")).replace("\\", "/")
            if path == tail or path.endswith("/" + tail):
                matches.setdefault(sha, path)
        if not matches:  # a derivative by the name `items` shows for it: "CAM01 (redacted copy).mp4"
            for sha, kind, parent in s.execute(select(Derivative.sha256, Derivative.kind, Derivative.parent_sha256)):
                first = s.scalars(select(Provenance.original_name).where(Provenance.sha256 == parent)
                                  .order_by(Provenance.source_path, Provenance.member_path).limit(1)).first()
                if first and _derived_name(first, kind) == tail:
                    matches.setdefault(sha, tail)
    if not matches:
        raise ItemNotFound(f"no item is named {printable(ref)!r} or has a SHA-256 starting so; "
                           "see `custodes items CASE`")
    if len(matches) > 1:
        listing = "; ".join(f"{printable(path)} ({sha[:12]})" for sha, path in list(matches.items())[:10])
        raise ItemNotFound(f"{printable(ref)!r} names {len(matches)} different items: {listing}"
                           f"{' …' if len(matches) > 10 else ''}; give more of the path or the SHA-256")
    return next(iter(matches))

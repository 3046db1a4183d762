"""Camera names an investigator corrects.

The camera of a recording is what the overlay said (``Recording.camera_id``, read by OCR), and OCR misreads:
"CH-OT" beside "CH-01" is a camera nobody has, with its own lane and its own false gaps. An investigator says
what a name means; that correction is a signed ledger event (``camera.rename``: the name as read, the name it
means, why), and never an edit of the reading, which stays what it was. Renaming to the name another camera
already has merges the two; renaming a name back to itself undoes the correction. The corrections are replayed
from the ledger in order, so ``verify`` vouches for them as for every other event, and the report's timeline,
the review app's and the CLI's all show the same cameras.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from custodes.store.case import Case

ACTION = "camera.rename"
MAX_NAME = 64
MAX_REASON = 500
_cache: dict[str, tuple[int | None, int, list[dict[str, Any]]]] = {}


class CameraNameError(ValueError):
    """A correction that cannot be recorded; the message says why in one sentence."""


def replay(events: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The name shown for each name as read that has a correction (``{read: shown}``), from ``camera.rename``
    events in ledger order. A chain (CH-OT → CH-01, then CH-01 → Cell 1) ends at its last name; a cycle left by
    renaming back is cut where it closes."""
    alias: dict[str, str] = {}
    for e in events:
        d = e.get("details") or {}
        old, new = d.get("camera"), d.get("to")
        if not isinstance(old, str) or not isinstance(new, str):
            continue
        if old == new:
            alias.pop(old, None)
        else:
            alias[old] = new
    out: dict[str, str] = {}
    for name in alias:
        seen = {name}
        cur = alias[name]
        while cur in alias and alias[cur] not in seen:
            seen.add(cur)
            cur = alias[cur]
        if cur != name:
            out[name] = cur
    return out


def camera_names(case: Case) -> dict[str, str]:
    """``{name as read: name shown}`` for the case's corrected cameras. The ledger grows with every page view,
    so the corrections are kept per ledger file and only what was appended since the last call is read."""
    path = case.ledger.path
    try:
        st = path.stat()
    except OSError:
        return {}
    key = str(path)
    ident, offset, events = _cache.get(key, (None, 0, []))
    if ident != st.st_ino or st.st_size < offset:  # a new or rewritten file (a recovery, a re-key): from the start
        offset, events = 0, []
    if st.st_size != offset:
        more, offset = case.ledger.entries_after(offset, ACTION)
        events = events + more
    _cache[key] = (st.st_ino, offset, events)
    return replay(events)


def shown(names: dict[str, str], read: str | None) -> str | None:
    return names.get(read, read) if read else read


def readings(names: dict[str, str], camera: str) -> list[str]:
    """The names as read that are shown as ``camera``: the name itself unless it was corrected into another,
    and every reading corrected into it (a filter or a gap search by the shown camera looks for all of them)."""
    out = {r for r, to in names.items() if to == camera}
    if names.get(camera, camera) == camera:
        out.add(camera)
    return sorted(out)


def clean_name(value: str) -> str:
    text = unicodedata.normalize("NFC", str(value)).strip()
    text = re.sub(r"\s+", " ", text)
    if not text:
        raise CameraNameError("The new camera name is empty: type the name the camera has.")
    if len(text) > MAX_NAME:
        raise CameraNameError(f"The new camera name is longer than {MAX_NAME} characters: shorten it.")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise CameraNameError("The new camera name holds control characters: type it again as plain text.")
    return text


def rename_camera(case: Case, actor: str, camera: str, to: str, reason: str = "") -> dict[str, Any]:
    """Record that the camera shown as ``camera`` is ``to`` (a merge when ``to`` is another camera's name).
    ``camera`` may be a name as read or a name already shown; each name as read that is shown as ``camera`` is
    corrected. Returns the ledger event."""
    from sqlalchemy import select

    from custodes.store.db import Recording

    new = clean_name(to)
    reason = str(reason or "").strip()[:MAX_REASON]
    names = camera_names(case)
    with case.sessions() as s:
        read = {c for (c,) in s.execute(select(Recording.camera_id).distinct()) if c}
    by_shown: dict[str, list[str]] = {}
    for r in read:
        by_shown.setdefault(names.get(r, r), []).append(r)
    if camera in by_shown:
        readings = sorted(by_shown[camera])
    elif camera in read:  # one reading of a merged camera, named on its own: split it off again, or rename it
        readings = [camera]
    else:
        raise CameraNameError(f"No camera is shown or read as {camera!r} in this case: choose one from the "
                              "timeline.")
    if all(names.get(r, r) == new for r in readings):
        raise CameraNameError(f"The camera is already shown as {new!r}: nothing to change.")
    merged = new in by_shown
    events: list[tuple[str, str | None, dict[str, Any]]] = [
        (ACTION, None, {"camera": r, "to": new, "shown_before": camera, "merge": merged, "reason": reason})
        for r in readings]
    written = case.ledger.append_many(actor, events)
    return {"camera": camera, "to": new, "readings": readings, "merge": merged, "seq": written[-1]["seq"]}

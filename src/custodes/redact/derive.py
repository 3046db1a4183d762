"""Make a redacted derivative of a case item: a new object linked to its original, signed into the ledger."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from custodes.redact.credentials import case_credentials, sign_derivative
from custodes.redact.faces import VERSION, RedactionError, redact_video
from custodes.store.case import Case
from custodes.store.db import Derivative, EvidenceObject, Provenance


def resolve_item(case: Case, item: str) -> str:
    if len(item) < 8:
        raise RedactionError("give at least 8 hex digits of the item's SHA-256")
    with case.sessions() as s:
        found = [sha for (sha,) in s.execute(select(EvidenceObject.sha256).where(
            EvidenceObject.sha256.like(f"{item.lower()}%")))]
    if len(found) != 1:
        raise RedactionError(f"item {item!r} matches {len(found)} objects")
    return found[0]


def redact_item(case: Case, item: str, actor: str, faces: str = "blur", start_s: float = 0.0,
                end_s: float | None = None, audio: str = "keep") -> dict[str, Any]:
    case.ensure_schema()
    parent = resolve_item(case, item)
    with case.sessions() as s:
        name = next((p.original_name for p in s.scalars(select(Provenance).where(Provenance.sha256 == parent))),
                    f"{parent}.mp4")
    actions: list[dict[str, Any]] = [{"action": "c2pa.edited",
                                      "parameters": {"description": f"faces {faces} (custodes {VERSION})"}}]
    if start_s > 0 or end_s is not None:
        actions.append({"action": "c2pa.edited", "parameters": {
            "description": f"cut to {start_s:g}–{'end' if end_s is None else f'{end_s:g}'} s"}})
    if audio != "keep":
        actions.append({"action": "c2pa.edited", "parameters": {
            "description": "audio removed" if audio == "remove" else "speech replaced by a tone"}})
    request = {"faces": faces, "audio": audio, "from_s": start_s, "to_s": end_s, "method": VERSION}
    with case.sessions() as s:
        for der in s.scalars(select(Derivative).where(Derivative.parent_sha256 == parent,
                                                      Derivative.kind == "redaction")):
            if {k: der.params.get(k) for k in request} == request:
                # the same redaction asked for again (a rerun after a kill, a second click): the copy made
                # then, not a second one with another signature time
                obj = s.get(EvidenceObject, der.sha256)
                return {"original": parent, "derivative": der.sha256, "size": obj.size if obj else None,
                        "already_made": True, **der.params}
    scratch = case.scratch_dir()
    try:
        d = str(scratch)
        out = Path(d) / "redacted.mp4"
        res = redact_video(case.store.media_ref(parent), out, faces, start_s, end_s, audio)
        chain, key = case_credentials(case.keyring.root, case.id, case.keyring.password)
        signed = Path(d) / "redacted-signed.mp4"
        with case.store.open(parent) as original:
            sign_derivative(out, signed, original, parent, name, actions, chain, key,
                            title=f"{Path(name).stem} (redacted)")
        stored = case.store.put_file(signed)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    params = {**request,
              "frames": res.frames, "frames_with_faces": res.frames_with_faces,
              "lowest_confidence_frames": res.lowest_confidence, "content_credentials": "c2pa",
              "actions": [a["parameters"]["description"] for a in actions]}
    with case.sessions() as s:
        if s.get(EvidenceObject, stored.sha256) is None:
            s.add(EvidenceObject(sha256=stored.sha256, size=stored.size, kind="derivative",
                                 stored_at=datetime.now(UTC)))
        if s.get(Derivative, stored.sha256) is None:
            s.add(Derivative(sha256=stored.sha256, parent_sha256=parent, kind="redaction", params=params,
                             created_by=actor, created_at=datetime.now(UTC)))
        # appended with the rows' seal, before the commit: no derivative without its redact event
        s.log(actor, "redact", parent, {"derivative": stored.sha256, **params})
        s.commit()
    return {"original": parent, "derivative": stored.sha256, "size": stored.size, **params}

"""Make a redacted derivative of a case item: a new object linked to its original, signed into the ledger."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from custodes.redact.faces import VERSION, RedactionError, redact_video
from custodes.store.case import Case
from custodes.store.db import Derivative, EvidenceObject


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
    with tempfile.TemporaryDirectory(dir=case.store.tmp_dir) as d:
        out = Path(d) / "redacted.mp4"
        res = redact_video(case.store.path_for(parent), out, faces, start_s, end_s, audio)
        stored = case.store.put_file(out)
    params = {"faces": faces, "audio": audio, "from_s": start_s, "to_s": end_s, "method": VERSION,
              "frames": res.frames, "frames_with_faces": res.frames_with_faces,
              "lowest_confidence_frames": res.lowest_confidence}
    with case.sessions() as s:
        if s.get(EvidenceObject, stored.sha256) is None:
            s.add(EvidenceObject(sha256=stored.sha256, size=stored.size, kind="derivative",
                                 stored_at=datetime.now(UTC)))
        if s.get(Derivative, stored.sha256) is None:
            s.add(Derivative(sha256=stored.sha256, parent_sha256=parent, kind="redaction", params=params,
                             created_by=actor, created_at=datetime.now(UTC)))
        s.commit()
    case.ledger.append(actor, "redact", parent, {"derivative": stored.sha256, **params})
    return {"original": parent, "derivative": stored.sha256, "size": stored.size, **params}

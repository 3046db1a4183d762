"""Make a redacted derivative of a case item: a new object linked to its original, signed into the ledger."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from custodes.redact.credentials import (
    CA_EVENT,
    case_credentials,
    credentials_problems,
    credentials_record,
    recorded_credentials,
    sign_derivative,
    signer_fingerprint,
)
from custodes.redact.faces import VERSION, RedactionError, redact_video
from custodes.store import faults
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
    adopted = _interrupted(case, parent, request)
    if adopted is not None:
        # killed after its copy was stored and before its rows committed (redact.after_store): the copy and its
        # parameters are in the signed intent; record that copy, not a second one (verify named it
        # redact.unfinished until now)
        sha, params = adopted
        size = case.store.size(sha)
    else:
        scratch = case.scratch_dir()
        try:
            d = str(scratch)
            out = Path(d) / "redacted.mp4"
            res = redact_video(case.store.media_ref(parent), out, faces, start_s, end_s, audio)
            chain, key = _credentials(case, actor)
            signed = Path(d) / "redacted-signed.mp4"
            with case.store.open(parent) as original:
                sign_derivative(out, signed, original, parent, name, actions, chain, key,
                                title=f"{Path(name).stem} (redacted)")
            params = {**request,
                      "frames": res.frames, "frames_with_faces": res.frames_with_faces,
                      "lowest_confidence_frames": res.lowest_confidence, "content_credentials": "c2pa",
                      # which certificate signed it: an old case's certificates are reissued (credentials.py)
                      "signer_certificate_sha256": signer_fingerprint(chain),
                      "actions": [a["parameters"]["description"] for a in actions]}
            # intent before the copy is stored: a kill between storing it and committing its rows leaves a
            # stored object that no row records; the intent names it (verify says redact.unfinished, not
            # object.unrecorded) and lets the rerun adopt it with the parameters it was made with
            sha = _sha256_file(signed)
            case.ledger.append(actor, "redact.intent", parent, {"derivative": sha, **params})
            faults.point("redact.before_store")
            stored = case.store.put_file(signed)
            if stored.sha256 != sha:
                raise RedactionError(f"the redacted copy changed while it was stored ({sha} -> {stored.sha256})")
            size = stored.size
            faults.point("redact.after_store")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    with case.sessions() as s:
        if s.get(EvidenceObject, sha) is None:
            s.add(EvidenceObject(sha256=sha, size=size, kind="derivative", stored_at=datetime.now(UTC)))
        if s.get(Derivative, sha) is None:
            s.add(Derivative(sha256=sha, parent_sha256=parent, kind="redaction", params=params,
                             created_by=actor, created_at=datetime.now(UTC)))
        # appended with the rows' seal, before the commit: no derivative without its redact event
        s.log(actor, "redact", parent, {"derivative": sha, **params})
        s.commit()
    return {"original": parent, "derivative": sha, "size": size, **({"adopted": True} if adopted else {}), **params}


def _credentials(case: Case, actor: str) -> tuple[bytes, bytes]:
    """The case's signing chain and key, its certificates recorded in the ledger (``c2pa.ca``) when issued.

    A case made before these events has certificates and no event: the first redaction after records them
    (``recorded_late``), once they are found consistent (ca.pem starts with the signer's CA). Nothing is signed
    with certificates that differ from the ledger's record."""
    root = case.keyring.root
    issued: list[dict[str, Any]] = []
    # one process at a time from issue to record: two redactions at once (the app and the CLI) would otherwise
    # both issue, leaving two events and a key from one run beside the chain of the other
    with case.exclusive("credentials", wait=True):
        chain, key = case_credentials(root, case.id, case.keyring.password,
                                      on_issue=lambda d: issued.append(case.ledger.append(actor, CA_EVENT, None, d)))
        event = issued[-1] if issued else recorded_credentials(case.ledger.entries())
        problems = credentials_problems(root, event)
        if event is None and not problems and (now := credentials_record(root)) is not None:
            event = case.ledger.append(actor, CA_EVENT, None, {
                **now, "reason": "recorded late: certificates issued before Custodes recorded them",
                "recorded_late": True})
            problems = credentials_problems(root, event)
    if problems:
        raise RedactionError(f"{problems[0][1]}; nothing was redacted (run `custodes verify {case.root}`)")
    return chain, key


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _interrupted(case: Case, parent: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The copy of an interrupted run of this same redaction that reached the store: (sha256, parameters).

    Any intent counts whose copy is stored and unrecorded, finished or not: a kill inside the commit
    (seal.before_commit) leaves its redact event in the ledger but no row."""
    pending = [e for e in case.ledger.entries() if e["action"] == "redact.intent"
               and e["subject"] == parent and {k: e["details"].get(k) for k in request} == request]
    with case.sessions() as s:
        for e in reversed(pending):
            sha = e["details"]["derivative"]
            if s.get(EvidenceObject, sha) is None and case.store.exists(sha) and case.store.rehash(sha) == sha:
                return sha, {k: v for k, v in e["details"].items() if k != "derivative"}
    return None


def unfinished_redactions(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``redact.intent`` events that no ``redact`` event finished: runs killed between the intent and the
    commit of their rows. An intent is finished by the redact event of its copy, or by a later redact event of
    the same original and request (the rerun after a kill before the copy was stored made another copy)."""
    intents: dict[int, dict[str, Any]] = {}
    for e in entries:
        d = e.get("details") or {}
        if e["action"] == "redact.intent":
            intents[e["seq"]] = e
        elif e["action"] == "redact":
            for seq, i in list(intents.items()):
                same = i["subject"] == e["subject"] and all(
                    i["details"].get(k) == d.get(k) for k in ("faces", "audio", "from_s", "to_s", "method"))
                if i["details"].get("derivative") == d.get("derivative") or same:
                    del intents[seq]
    return list(intents.values())

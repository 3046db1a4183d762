"""Case packages for courts and oversight bodies, verifiable offline by anyone.

``export`` writes a folder::

    originals/<sha256><ext>   the evidence, byte for byte (hash checked while copying)
    ledger.jsonl              the chain of custody: entries about these items in full; every other
                              entry as a stub (seq, prev, hash) so the chain still verifies end to end
                              without revealing other evidence
    items.json                per item: names, origins, media facts, segments, annotations, transcripts
    report.html               a human report (tables, score plots, timeline) — self-contained, offline
    timeline.svg
    manifest.json             SHA-256 of every file above, the case id, the ledger head, the exporter
    manifest.sig              the exporter's Ed25519 signature over manifest.json
    VERIFY.txt                how to check it

``verify-package`` needs nothing but the folder: it re-hashes every file, checks the manifest signature
against the exporter's key as registered in the ledger, re-checks the ledger chain and each full
entry's signature, and that every original was recorded at ingest. It names each problem.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import or_, select

from custodes import __version__
from custodes.analyze import edits, scene_cuts
from custodes.media.source import MediaRef
from custodes.store import db, faults
from custodes.store.case import Case
from custodes.store.db import (
    Annotation,
    Derivative,
    EvidenceObject,
    MediaProbe,
    Provenance,
    Recording,
    Rejection,
    Segment,
    Signal,
    TranscriptSegment,
)
from custodes.store.ledger import GENESIS, KeyBook, Problem, entry_digest, fingerprint

FORMAT = "custodes-package-1"
CHUNK = 4 * 1024 * 1024


class ExportError(Exception):
    pass


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _ext(name: str) -> str:
    """The package file's extension: the original's when it is plain ASCII letters and digits, else ``.bin``.
    Package file names stay ASCII (SHA256SUMS, any file system, any verifier's shell)."""
    ext = Path(name).suffix.lower()
    return ext if 1 < len(ext) <= 6 and ext[1:].isascii() and ext[1:].isalnum() else ".bin"


def _sums_line(digest: str, rel: str) -> str:
    """One SHA256SUMS line as GNU sha256sum reads it: a name with a backslash or a line break is escaped and
    the line marked with a leading backslash."""
    if not any(c in rel for c in "\\\n\r"):
        return f"{digest}  {rel}\n"
    escaped = rel.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return f"\\{digest}  {escaped}\n"


def _finite(v: float | None) -> float | None:
    """A number for items.json (strict JSON): None where it is missing or not finite."""
    return float(v) if v is not None and math.isfinite(v) else None


def _ledger_slice(case: Case, items: set[str], upto: int) -> list[dict[str, Any]]:
    """Entries about the items in full, with every key registration their signatures rest on (the signer's,
    its endorser's, back to the case key); other entries as chain stubs (seq, prev, hash)."""
    entries = [e for e in case.ledger.entries() if e["seq"] <= upto]
    keep = set()
    needed_keys: set[str] = set()
    for e in entries:
        if e["subject"] in items or e["action"] in ("case.create",) or e["seq"] == upto or \
                (e["details"] or {}).get("derivative") in items:
            keep.add(e["seq"])
            needed_keys.add(e["key"])
    registrations = {e["details"].get("fingerprint"): e for e in entries if e["action"] == "key.register"}
    todo = list(needed_keys)
    while todo:  # endorsers and replaced keys: a verifier must see how each key was vouched for
        reg = registrations.get(todo.pop())
        if reg is None:
            continue
        d = reg["details"]
        for fpr in ((d.get("endorsement") or {}).get("key"), d.get("replaces")):
            if fpr and fpr not in needed_keys:
                needed_keys.add(fpr)
                todo.append(fpr)
    out = []
    for e in entries:
        if e["seq"] in keep or (e["action"] == "key.register" and e["details"].get("fingerprint") in needed_keys):
            out.append(e)
        else:
            out.append({"seq": e["seq"], "prev": e["prev"], "hash": e["hash"], "omitted": True})
    return out


def export_package(case: Case, out: Path, actor: str, items: list[str] | None = None, *,
                   names: list[str] | None = None, cameras: list[str] | None = None,
                   since: datetime | None = None, until: datetime | None = None, language: str = "en",
                   derivatives: bool = True, timezone: str | None = None) -> dict[str, Any]:
    """Write a package of the chosen exhibits: ``items`` (SHA-256 prefixes), ``names`` (file names,
    case-insensitive: a name is first taken as written, and only if no file has it as a pattern with ``*``/``?``/
    ``[...]`` wildcards; a name written in full that belongs to two different files is refused, naming each with its
    SHA-256, so that no exhibit is chosen by accident: choose them by ``items``), ``cameras`` and a camera-clock
    window ``since``..``until`` (a recording that overlaps it). Criteria of different kinds must all hold; none
    given: every video. Redacted copies of the chosen originals travel with them unless ``derivatives`` is False."""
    from custodes.export import strings

    if language not in strings.LANGUAGES:  # before anything is written
        raise ExportError(f"the report language must be one of {', '.join(strings.LANGUAGES)}, not {language!r}")
    meta = dict(case.meta)
    if timezone:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ExportError(f"{timezone!r} is not a time zone: give one like Europe/Moscow or UTC") from None
        meta["timezone"] = timezone
    case.ensure_schema()
    out = out.resolve()
    root = case.root.resolve()
    if out == root or root in out.parents:
        raise ExportError(f"{out} is inside the case folder {root}: write the package to a folder outside it")
    pending = _unfinished_exports(case, out)
    if out.exists() and any(out.iterdir()):
        finished = _confirm_if_complete(case, out, actor, pending)
        if finished is not None:
            return finished
        raise ExportError(f"{out} exists and is not empty; export into a new folder")
    with case.sessions() as s:
        chosen = _choose(s, items, names, cameras, since, until, derivatives)
        if not chosen:
            raise ExportError("nothing to export: no item matches what was asked for")
        left_out = _left_out(s, set(chosen), language)
        docs: list[dict[str, Any]] = []
        for sha in chosen:
            obj = s.get(EvidenceObject, sha)
            m = s.get(MediaProbe, sha)
            rec = s.get(Recording, sha)
            prov = list(s.scalars(select(Provenance).where(Provenance.sha256 == sha)))
            segs = list(s.scalars(select(Segment).where(Segment.sha256 == sha).order_by(Segment.start_s)))
            anns = list(s.scalars(select(Annotation).where(Annotation.sha256 == sha).order_by(Annotation.id)))
            trs = list(s.scalars(select(TranscriptSegment).where(TranscriptSegment.sha256 == sha)
                                 .order_by(TranscriptSegment.start_s)))
            scores = [(g.start_s, g.end_s, g.value) for g in s.scalars(
                select(Signal).where(Signal.sha256 == sha, Signal.kind == "score").order_by(Signal.start_s))]
            loud = [(g.start_s, g.end_s, g.value) for g in s.scalars(
                select(Signal).where(Signal.sha256 == sha, Signal.kind == "loudness_db").order_by(Signal.start_s))]
            cuts = list(s.scalars(select(Signal).where(Signal.sha256 == sha, Signal.kind == "scene_cut")
                                  .order_by(Signal.start_s)))
            found_edits = list(s.scalars(select(Signal).where(
                Signal.sha256 == sha, or_(Signal.analyzer == edits.ANALYZER, Signal.kind.like("edits%")))
                .order_by(Signal.start_s, Signal.id)))
            own = s.get(Recording, sha)  # its own reading (a derivative's is not its original's)
            examined = bool(found_edits) or bool(own is not None and (own.data or {}).get("edits"))
            der = s.get(Derivative, sha)
            if der is not None and not prov:  # a derivative: named, dated and clocked after its original
                prov = list(s.scalars(select(Provenance).where(Provenance.sha256 == der.parent_sha256)))
                rec = rec or s.get(Recording, der.parent_sha256)
            dur = _duration(s, sha, m, der)
            # segment review states: about the stretch they judged (start/end), which survives a re-triage
            reviews = [{"start_s": r.start_s, "end_s": r.end_s, "segment_id": r.segment_id, "state": r.state,
                        "author": r.author, "created_at": r.created_at.isoformat(), "note": r.note}
                       for r in s.scalars(select(db.Review).where(db.Review.sha256 == sha).order_by(db.Review.id))]
            name = prov[0].original_name if prov else f"{sha}.mp4"
            docs.append({
                "sha256": sha, "size": obj.size if obj else None, "file": f"originals/{sha}{_ext(name)}",
                "names": sorted({p.original_name if der is None else f"{Path(p.original_name).stem} (redacted)"
                                 f"{_ext(p.original_name)}" for p in prov}),
                "origins": [] if der is not None else [
                    {"source_path": p.source_path, "member_path": p.member_path,
                     "mtime": datetime.fromtimestamp(p.mtime_ns // 1_000_000_000, UTC).isoformat(),
                     "ledger_seq": p.ledger_seq} for p in prov],
                "media": None if m is None else {"status": m.status, "reason": m.reason, "duration_s": m.duration_s,
                                                 "width": m.width, "height": m.height, "fps": m.fps,
                                                 "video_codec": m.video_codec, "creation_time": m.creation_time},
                "recording": None if rec is None else {"camera": rec.camera_id, "source": rec.source,
                                                       "start": rec.start_at.isoformat() if rec.start_at else None,
                                                       "end": rec.end_at.isoformat() if rec.end_at else None},
                "segments": [{"id": g.id, "start_s": g.start_s, "end_s": g.end_s, "score": g.score,
                              "reasons": [r["text"] for r in g.reasons], "model": g.model_version} for g in segs],
                "annotations": [{"id": a.id, "start_s": a.start_s, "end_s": a.end_s, "label": a.label,
                                 "people": a.people, "note": a.note, "author": a.author,
                                 "created_at": a.created_at.isoformat(), "supersedes": a.supersedes} for a in anns],
                # where the picture cuts inside the file: an edit, a camera switch or a jump in time
                "scene_cuts": [{"t_s": c.start_s, "found_by": scene_cuts.found_by(c.data),
                                "analyzer_version": c.version} for c in cuts],
                # edits inside the file (analyze.edits): the clock jumping, holes in the frame timestamps, codec
                # changes, the creation time against the overlay clock; each with the moment and what was seen
                "edits": [{"kind": g.kind, "start_s": _finite(g.start_s), "end_s": _finite(g.end_s),
                           "value": _finite(g.value), "seen": str((g.data or {}).get("seen") or g.kind),
                           "analyzer_version": g.version} for g in found_edits],
                "edits_examined": examined,
                "transcript": [{"start_s": t.start_s, "end_s": t.end_s, "language": t.language, "text": t.text,
                                "avg_logprob": t.avg_logprob, "engine": t.version,
                                **({"translation": tr} if (tr := getattr(t, "translation", None)) else {})}
                               for t in trs],
                **({"reviews": reviews} if reviews else {}),
                "derived_from": None if der is None else {"original": der.parent_sha256, "kind": der.kind,
                                                          "params": der.params},
                "_scores": scores, "_loudness": loud, "_duration": dur,
                "_sheet": _sheet_html(case.store.media_ref(sha), dur or 0.0),
            })
        docs = _in_exhibit_order(docs)
    tmp = out.with_name(out.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        return _write_package(case, out, tmp, actor, chosen, docs, pending, meta, left_out, language)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed export leaves no half-written package behind
        raise


def _write_package(case: Case, out: Path, tmp: Path, actor: str, chosen: list[str], docs: list[dict[str, Any]],
                   pending: list[dict[str, Any]], meta: dict[str, Any], left_out: list[dict[str, str]],
                   language: str) -> dict[str, Any]:
    (tmp / "originals").mkdir(parents=True)
    for d in docs:
        dst = tmp / d["file"]
        h = hashlib.sha256()
        with case.store.open(d["sha256"]) as fin, open(dst, "wb") as fout:
            while chunk := fin.read(CHUNK):
                h.update(chunk)
                fout.write(chunk)
        if h.hexdigest() != d["sha256"]:
            raise ExportError(f"object {d['sha256']} does not match its hash: run `custodes verify`; nothing exported")
    # intent, effect, confirmation: the export event goes first (the package's ledger ends with it), the
    # package is moved into place, then export.done confirms it. A rerun after a kill reuses the intent.
    intent = next((e for e in reversed(pending) if e["actor"] == actor and e["details"].get("items") == chosen), None)
    if intent is None:
        intent = case.ledger.append(actor, "export", None, {"items": chosen, "out": str(out)})
    faults.point("export.after_intent")
    ledger = _ledger_slice(case, set(chosen), upto=intent["seq"])
    # ASCII JSON, one entry a line: no file name with U+2028 or the like can split a line for a reader
    (tmp / "ledger.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ledger), encoding="ascii")
    from custodes.export import report
    from custodes.timeline.build import build_timeline, write_svg

    timeline = build_timeline(case)
    write_svg(timeline, tmp / "timeline.svg")
    items_doc = [{k: v for k, v in d.items() if not k.startswith("_")} for d in docs]
    (tmp / "items.json").write_text(json.dumps(items_doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                                    encoding="utf-8")
    if any((d["derived_from"] or {}).get("params", {}).get("content_credentials") for d in docs):
        # the case's C2PA CA certificate (public): what a C2PA reader needs to trust the derivatives' signatures
        ca = case.keyring.root / "c2pa" / "ca.pem"
        if ca.is_file():
            (tmp / "credentials").mkdir()
            shutil.copyfile(ca, tmp / "credentials" / "case-ca.pem")
    key = case.keyring.load_or_create(actor)
    exporter_key = fingerprint(key.public_key())
    created = datetime.now(UTC).replace(microsecond=0)
    ctx = report.context(meta, case.id, docs, ledger, (tmp / "timeline.svg").read_bytes(), actor, exporter_key,
                         __version__, left_out, timeline.get("gaps") or [], language, created)
    report_html = report.render(ctx)
    (tmp / "report.html").write_text(report_html, encoding="utf-8")
    pdf = _write_pdf(report_html, tmp / "report.pdf")
    (tmp / "VERIFY.txt").write_text(verify_text(case.id, ledger[-1]["hash"], exporter_key, ctx["case_key"]),
                                    encoding="utf-8")
    copied = {d["file"]: d["sha256"] for d in docs}  # hashed while copying
    files = {rel: copied.get(rel) or _sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
             for rel in [p.relative_to(tmp).as_posix()]}
    # for `sha256sum -c SHA256SUMS` alone: every file but itself and the manifest it is listed in
    (tmp / "SHA256SUMS").write_text("".join(_sums_line(h, rel) for rel, h in files.items()),
                                    encoding="utf-8", errors="surrogateescape")
    files["SHA256SUMS"] = _sha256_file(tmp / "SHA256SUMS")
    manifest = {"format": FORMAT, "case_id": case.id, "case_title": case.meta.get("title", ""),
                "created": created.isoformat(), "custodes_version": __version__, "language": language,
                "exporter": {"actor": actor, "key": exporter_key},
                "ledger_head": ledger[-1]["hash"], "ledger_entries": len(ledger), "items": chosen, "files": files}
    mbytes = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    (tmp / "manifest.json").write_bytes(mbytes)
    (tmp / "manifest.sig").write_text(base64.b64encode(key.sign(mbytes)).decode() + "\n")
    if out.exists():
        out.rmdir()  # checked empty above
    os.replace(tmp, out)
    faults.point("export.before_confirm")
    case.ledger.append(actor, "export.done", None, {"export": intent["seq"], "out": str(out),
                                                    "manifest_sha256": hashlib.sha256(mbytes).hexdigest()})
    return {"out": str(out), "items": len(chosen), "files": len(files) + 2, "ledger_head": manifest["ledger_head"],
            "pdf": pdf}


def unfinished_exports(entries: Any) -> list[dict[str, Any]]:
    """Export events that no export.done confirms: packages whose writing was interrupted."""
    intents: dict[int, dict[str, Any]] = {}
    for e in entries:
        if e["action"] == "export":
            intents[e["seq"]] = e
        elif e["action"] == "export.done":
            intents.pop(int((e["details"] or {}).get("export", -1)), None)
    return list(intents.values())


def _unfinished_exports(case: Case, out: Path) -> list[dict[str, Any]]:
    return [e for e in unfinished_exports(case.ledger.entries()) if (e["details"] or {}).get("out") == str(out)]


def _confirm_if_complete(case: Case, out: Path, actor: str, pending: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A package moved into place before a kill, its confirmation missing: confirm it instead of refusing."""
    try:
        manifest = json.loads((out / "manifest.json").read_bytes())
    except (OSError, ValueError):
        return None
    intent = next((e for e in pending if e["hash"] == manifest.get("ledger_head")), None)
    if intent is None or not verify_package(out).ok:
        return None
    mbytes = (out / "manifest.json").read_bytes()
    case.ledger.append(actor, "export.done", None, {"export": intent["seq"], "out": str(out),
                                                    "manifest_sha256": hashlib.sha256(mbytes).hexdigest(),
                                                    "recovered": "confirmed on rerun after an interrupted export"})
    return {"out": str(out), "items": len(manifest.get("items", [])), "files": len(manifest.get("files", {})) + 2,
            "ledger_head": manifest["ledger_head"], "pdf": ""}


def _sheet_html(path: MediaRef, duration: float) -> str:
    from custodes.export.sheets import contact_sheet
    from custodes.media.thumbs import jpeg

    try:
        img = contact_sheet(path, duration, n=8, cols=4, width=180)
    except Exception:  # an undecodable item gets no sheet, not a failed export
        img = None
    if img is None:
        return ""  # the report says "no decodable frames" in its language
    data = base64.b64encode(jpeg(img, quality=70)).decode()
    return f'<img alt="contact sheet" style="max-width:100%" src="data:image/jpeg;base64,{data}">'


def _write_pdf(report_html: str, path: Path) -> str:
    """The same report as PDF (WeasyPrint). Returns "" or why it could not be made."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: Pango missing from the system
        return f"no PDF: WeasyPrint unavailable ({exc})"
    # Only data embedded in the report itself, nothing from the disk or the net: a ``file://`` link would put
    # any readable file, a private key included, into the handed-over PDF.
    if hasattr(weasyprint, "URLFetcher"):  # WeasyPrint >= 68
        fetcher: Any = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=False)
    else:  # pragma: no cover - older WeasyPrint takes a function
        def fetcher(url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.startswith("data:"):
                raise ValueError(f"the report may not load {url[:80]!r}: only embedded data")
            return weasyprint.default_url_fetcher(url, *args, **kwargs)
    weasyprint.HTML(string=report_html, url_fetcher=fetcher).write_pdf(str(path))
    return ""


def parse_clock_option(option: str, value: str | None) -> datetime | None:
    """A camera-clock time as typed ("2026-03-14 02:00", "2026-03-14T02:00:00"); one sentence if it is not."""
    if value is None or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ExportError(f"{option} {value!r} is not a time: write it as 2026-03-14 02:00:00") from None
    return dt.replace(tzinfo=None)


def _duration(s: Any, sha: str, m: MediaProbe | None, der: Derivative | None) -> float | None:
    """The file's duration; a derivative that was never probed: its original's, cut as it was made."""
    if m is not None and m.duration_s:
        return float(m.duration_s)
    if der is None:
        return None
    parent = s.get(MediaProbe, der.parent_sha256)
    if parent is None or not parent.duration_s:
        return None
    a = float(der.params.get("from_s") or 0.0)
    b = der.params.get("to_s")
    return max(0.0, (float(b) if b is not None else float(parent.duration_s)) - a)


def _clock_window(rec: Recording | None, dur: float | None) -> tuple[datetime | None, datetime | None]:
    if rec is None or rec.start_at is None:
        return None, None
    end = rec.end_at or (rec.start_at + timedelta(seconds=dur) if dur else rec.start_at)
    return rec.start_at, end


def _choose(s: Any, items: list[str] | None, names: list[str] | None, cameras: list[str] | None,
            since: datetime | None, until: datetime | None, derivatives: bool) -> list[str]:
    """SHA-256s of the chosen exhibits (sorted), with the redacted copies of chosen originals."""
    videos = {sha for (sha,) in s.execute(select(MediaProbe.sha256).where(MediaProbe.status.in_(("ok", "damaged"))))}
    derived = {d.sha256: d for d in s.scalars(select(Derivative))}
    chosen: set[str] | None = None
    if items:
        picked = set()
        for it in items:
            matches = [sha for (sha,) in s.execute(select(EvidenceObject.sha256).where(
                EvidenceObject.sha256.like(f"{it.lower()}%")))] if len(it) >= 8 else []
            if len(matches) != 1:
                raise ExportError(f"item {it!r} matches {len(matches)} objects; give at least 8 hex digits")
            picked.add(matches[0])
        chosen = picked
    if names:
        provs = list(s.scalars(select(Provenance).order_by(Provenance.sha256, Provenance.ledger_seq)))
        by_name = set()
        for n in names:
            # the name as written first (a real name may hold [, ], * or ?), as a pattern only if no file has it
            literal = [p for p in provs if p.original_name.casefold() == n.casefold()]
            if literal:
                shas = dict.fromkeys(p.sha256 for p in literal)
                if len(shas) > 1:  # one name, different footage: the user must say which
                    which = {sha: next(p for p in literal if p.sha256 == sha) for sha in shas}
                    raise ExportError(f"the name {n!r} belongs to {len(shas)} different files: " + "; ".join(
                        f"{sha} (from {p.source_path}{' ! ' + p.member_path if p.member_path else ''})"
                        for sha, p in which.items()) + "; choose with --items and the SHA-256 (give each one "
                        "to export them all)")
                by_name |= set(shas)
            else:
                by_name |= {p.sha256 for p in provs if fnmatch.fnmatchcase(p.original_name.casefold(), n.casefold())}
        if not by_name:
            raise ExportError(f"no file is named {' or '.join(repr(n) for n in names)} (wildcards * and ? work)")
        chosen = by_name if chosen is None else chosen & by_name
    if cameras or since or until:
        recs = {r.sha256: r for r in s.scalars(select(Recording))}
        if cameras:
            known = {r.camera_id for r in recs.values() if r.camera_id}
            wanted = {c.casefold() for c in cameras}
            if not any(k.casefold() in wanted for k in known):
                raise ExportError(f"no recording is from camera {' or '.join(repr(c) for c in cameras)}; cameras "
                                  f"in this case: {', '.join(sorted(known)) or 'none identified'}")
        hits = set()
        for sha, r in recs.items():
            if cameras and (r.camera_id or "").casefold() not in {c.casefold() for c in cameras}:
                continue
            if since or until:
                m = s.get(MediaProbe, sha)
                a, b = _clock_window(r, float(m.duration_s) if m and m.duration_s else None)
                if a is None or b is None or (until and a > until) or (since and b < since):
                    continue
            hits.add(sha)
        chosen = hits if chosen is None else chosen & hits
    if chosen is None:
        chosen = set(videos)
    if derivatives:  # a redacted copy travels with its original (the copy alone when only it was asked for)
        chosen |= {sha for sha, d in derived.items() if d.parent_sha256 in chosen}
    return sorted(chosen)


def _left_out(s: Any, chosen: set[str], language: str) -> list[dict[str, str]]:
    """Every object of the case not in the package, with the reason: the report says what it leaves out."""
    from custodes.export.strings import LEFT_OUT

    why = LEFT_OUT[language]
    names: dict[str, list[str]] = {}
    for p in s.scalars(select(Provenance)):
        names.setdefault(p.sha256, []).append(p.original_name)
    derived = {d.sha256: d for d in s.scalars(select(Derivative))}
    out = []
    for obj in s.scalars(select(EvidenceObject).order_by(EvidenceObject.sha256)):
        if obj.sha256 in chosen:
            continue
        m = s.get(MediaProbe, obj.sha256)
        der = derived.get(obj.sha256)
        if der is not None:
            parent = ", ".join(sorted(set(names.get(der.parent_sha256, [])))) or der.parent_sha256[:12]
            name = f"{parent} ({der.kind})"
            reason = why["not_chosen"] if der.parent_sha256 in chosen else why["derivative"]
        elif obj.kind == "archive":
            name, reason = ", ".join(sorted(set(names.get(obj.sha256, [])))), why["archive"]
        else:
            name = ", ".join(sorted(set(names.get(obj.sha256, [])))) or obj.sha256[:12]
            if m is None:
                reason = why["unprobed"]
            elif m.status in ("ok", "damaged"):
                reason = why["not_chosen"] + (f"; {why['damaged']}: {m.reason}" if m.status == "damaged" else "")
            else:
                reason = why.get(m.status, m.status) + (f": {m.reason}" if m.reason else "")
        out.append({"name": name or "—", "sha256": obj.sha256, "reason": reason})
    stored: dict[tuple[str, str], set[str]] = {}  # (source, member) -> the ingests (batches) that stored it
    members_stored: dict[str, set[str]] = {}  # archive source -> the ingests that stored any member of it
    for src, member, batch in s.execute(select(Provenance.source_path, Provenance.member_path, Provenance.batch_id)):
        stored.setdefault((src, member or ""), set()).add(batch)
        if member:
            members_stored.setdefault(src, set()).add(batch)
    for r in s.scalars(select(Rejection).order_by(Rejection.recorded_at)):  # never stored: no SHA-256 to give
        by = stored.get((r.source_path, r.member_path or ""), set())
        if not r.member_path:  # a file, or a whole archive refused: was something stored there since?
            by = by | members_stored.get(r.source_path, set())
        # Always listed: a path says nothing of which file was there (cards reuse names), so a later intake
        # at the same place (or an earlier one) is said beside the refusal, never taken to undo it.
        later = f"; {why['stored_later']}" if by - {r.batch_id} else ""
        where = r.member_path or Path(r.source_path).name
        out.append({"name": where, "sha256": "—", "reason": f"{why['refused']}: {r.reason}{later}"})
    return out


def _in_exhibit_order(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Originals by camera, clock and name; each derivative right after its original."""
    def key(d: dict[str, Any]) -> tuple[str, str, str, str]:
        rec = d["recording"] or {}
        return (str(rec.get("camera") or "~"), str(rec.get("start") or "~"), ", ".join(d["names"]), d["sha256"])

    originals = sorted((d for d in docs if not d["derived_from"] or
                        d["derived_from"]["original"] not in {x["sha256"] for x in docs}), key=key)
    children: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        if d not in originals:
            children.setdefault(d["derived_from"]["original"], []).append(d)
    out = []
    for d in originals:
        out.append(d)
        out.extend(sorted(children.get(d["sha256"], []), key=key))
    return out


def verify_text(case_id: str, head: str, exporter_key: str, case_key: str) -> str:
    """VERIFY.txt: for a court clerk, with standard tools first."""
    return f"""HOW TO CHECK THIS PACKAGE
=========================

Made by Custodes {__version__} (package format {FORMAT}) for case {case_id}.

1. Check every file with a standard tool (no Custodes needed)
-------------------------------------------------------------
Open a terminal in this folder and run:

    sha256sum -c SHA256SUMS

(on macOS: shasum -a 256 -c SHA256SUMS). Every line must end in "OK". A line
with "FAILED" names a file that differs from its line in SHA256SUMS; a "No such
file" names one that was removed. SHA256SUMS lists every file of the package
except itself, manifest.json and manifest.sig.

This step proves only that the files match SHA256SUMS. It does not prove that
SHA256SUMS is the one the exporter wrote: someone who changed a file and its
line in SHA256SUMS would pass it. Only step 2 proves that: SHA256SUMS is
listed in manifest.json, and the exporter signed manifest.json.

Each original in originals/ is named by its own SHA-256: the name is the
fingerprint of the footage as it was received.

2. Check who made the package and its chain of custody (Custodes)
-----------------------------------------------------------------
    custodes verify-package THIS_FOLDER

checks, beyond step 1:
  - manifest.json lists every file with its SHA-256, SHA256SUMS included, and
    every file matches it; nothing was added
    (no extra file, link or folder);
  - manifest.sig is a valid signature over manifest.json by the exporter's key;
  - that key was registered in the case's ledger and vouched for by the case key;
  - ledger.jsonl is one unbroken chain: every entry names the one before, every
    entry about these exhibits is signed, and the chain ends with the signed
    export of exactly these exhibits;
  - every original was recorded when it was received (a signed ingest entry),
    and every redacted copy was recorded as made from its original.

3. Compare these with what the sender told you by another channel
-----------------------------------------------------------------
    ledger head       {head}
    exporter's key    {exporter_key}
    case key          {case_key or "(see custodes verify-package)"}

    custodes verify-package THIS_FOLDER --expect-head LEDGER_HEAD --expect-key KEY

A package rebuilt by someone else from scratch can be internally sound; only
these values, received separately, tell it apart.

Redacted copies carry Content Credentials (C2PA) inside the file; a C2PA reader
trusts their signature once credentials/case-ca.pem is added to its trust list.
"""


@dataclass
class PackageReport:
    files_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    case_id: str = ""
    case_key: str = ""       # fingerprint of the case's first key: the root every other key is vouched by
    exporter: str = ""
    exporter_key: str = ""
    ledger_head: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files_checked": self.files_checked, "case_id": self.case_id,
                "case_key": self.case_key, "exporter": self.exporter, "exporter_key": self.exporter_key,
                "ledger_head": self.ledger_head, "problems": [p.as_dict() for p in self.problems],
                "warnings": [w.as_dict() for w in self.warnings]}


def _normal_hex(value: str) -> str:
    return "".join(c for c in value.lower() if c in "0123456789abcdef")


def verify_package(pkg: Path, expect_head: str | None = None, expect_key: str | None = None) -> PackageReport:
    """Check a package with nothing but its folder; name every problem.

    Inside the package, trust runs from the case key (the first key in the ledger) through endorsed key
    registrations to the exporter's signature over the manifest. Someone who rebuilds a package from scratch
    can make a new case key too: only values compared out of band (``expect_key``: the case key's or the
    exporter's fingerprint; ``expect_head``: a ledger head published earlier) rule that out.
    """
    rep = PackageReport()
    mpath, spath = pkg / "manifest.json", pkg / "manifest.sig"
    if not mpath.is_file():
        rep.problems.append(Problem("package.manifest", str(mpath), "manifest.json is missing"))
        return rep
    mbytes = mpath.read_bytes()
    try:
        manifest = json.loads(mbytes)
        files: dict[str, str] = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
    except (ValueError, KeyError, TypeError) as exc:
        rep.problems.append(Problem("package.manifest", "manifest.json", f"unreadable manifest: {exc}"))
        return rep
    rep.case_id = str(manifest.get("case_id", ""))
    actual = _check_files(pkg, files, rep)
    book, full, ingested, hashes = _check_ledger(pkg / "ledger.jsonl", rep)
    rep.case_key = book.admin[1] if book.admin else ""
    rep.ledger_head = full[-1]["hash"] if full else ""
    _check_exporter(manifest, mbytes, spath, book, full, rep)
    _check_items(pkg, manifest, actual, ingested, rep)
    if expect_head and _normal_hex(expect_head) not in hashes:
        rep.problems.append(Problem("ledger.head", expect_head, "the ledger head you were given is not in this "
                                    "package's ledger: its history is not the one that was published"))
    if expect_key and _normal_hex(expect_key) not in {rep.case_key, rep.exporter_key} - {""}:
        rep.problems.append(Problem("package.key", expect_key, f"neither the case key ({rep.case_key or 'none'}) "
                                    f"nor the exporter's key ({rep.exporter_key or 'none'}) is the key you were "
                                    "given: this package was not signed by who you expect"))
    return rep


def _check_files(pkg: Path, files: dict[str, str], rep: PackageReport) -> dict[str, str]:
    """Every file listed is there and unaltered; nothing unlisted was added: no extra file, no link, nothing
    that is not a plain file, at any depth (links are not followed). Returns each file's SHA-256."""
    actual: dict[str, str] = {}
    for rel, digest in sorted(files.items()):
        p = pkg / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            rep.problems.append(Problem("package.path", rel, "manifest names a path outside the package"))
            continue
        if any((pkg / Path(*Path(rel).parts[:i])).is_symlink() for i in range(1, len(Path(rel).parts) + 1)):
            rep.problems.append(Problem("package.path", rel, "a link, not a file of the package: it could point "
                                        "anywhere"))
            continue
        if not p.is_file():
            rep.problems.append(Problem("package.missing", rel, "listed in the manifest but missing"))
            continue
        rep.files_checked += 1
        actual[rel] = _sha256_file(p)
        if actual[rel] != digest:
            rep.problems.append(Problem("package.altered", rel, "content differs from the manifest's SHA-256"))
    folders = {parent.as_posix() for rel in files for parent in Path(rel).parents} - {"."}
    for top, dirs, names in os.walk(pkg, followlinks=False):
        for name in sorted(dirs + names):
            p = Path(top) / name
            rel = p.relative_to(pkg).as_posix()
            if p.is_symlink():
                if rel not in files:  # a listed link is named above
                    rep.problems.append(Problem("package.extra", rel, "a link inside the package: added later"))
            elif name in dirs and rel not in folders:
                rep.problems.append(Problem("package.extra", rel, "folder not in the manifest (no file of the "
                                            "package is in it): added later"))
            elif name in names and not p.is_file():
                rep.problems.append(Problem("package.extra", rel, "not a plain file (a pipe, a device): added later"))
            elif name in names and rel not in files and rel not in ("manifest.json", "manifest.sig"):
                rep.problems.append(Problem("package.extra", rel, "file not listed in the manifest: added later"))
    return actual


def _check_ledger(lpath: Path, rep: PackageReport) -> tuple[KeyBook, list[dict[str, Any]], set[str], set[str]]:
    """The chain end to end (stubs included), each full entry's hash and signature, key continuity."""
    book = KeyBook()
    full: list[dict[str, Any]] = []
    ingested: set[str] = set()
    hashes: set[str] = set()
    prev = GENESIS
    # bytes split on \n only: str.splitlines() would also break at U+2028, U+0085 and the like inside names
    raw = lpath.read_bytes() if lpath.is_file() and not lpath.is_symlink() else b""
    lines = [x.decode("utf-8", errors="replace") for x in raw.split(b"\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        rep.problems.append(Problem("ledger.missing", "ledger.jsonl", "the package has no ledger"))
    for i, line in enumerate(lines, 1):
        where = f"ledger.jsonl line {i}"
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            rep.problems.append(Problem("ledger.malformed", where, "not a JSON object"))
            continue
        if entry.get("prev") != prev:
            rep.problems.append(Problem("ledger.chain", where, "prev does not match the entry before"))
        prev = str(entry.get("hash", ""))
        hashes.add(prev)
        if entry.get("omitted"):
            if i == 1:
                rep.problems.append(Problem("ledger.key", where, "the case's first entry (its key) is withheld: "
                                            "no root to check the signatures against"))
            continue
        where = f"{where} (seq {entry.get('seq')}, {entry.get('action')})"
        if entry_digest(entry) != entry.get("hash"):
            rep.problems.append(Problem("ledger.altered", where, "entry content does not match its hash"))
        found = book.check_entry(entry, where)
        rep.problems.extend(found)
        if any(p.kind == "ledger.signature" for p in found):
            continue
        full.append(entry)
        d = entry.get("details") or {}
        if entry.get("action") == "ingest" and entry.get("subject"):
            ingested.add(entry["subject"])
        if entry.get("action") == "redact" and d.get("derivative"):
            ingested.add(d["derivative"])  # made from an original in the case, on record
    if book.admin is not None and not book.strict:
        rep.warnings.append(Problem("ledger.legacy", "ledger.jsonl", "this case was created before signers had to "
                                    "be endorsed by the case key: compare the exporter's key out of band"))
    return book, full, ingested, hashes


def _check_exporter(manifest: dict[str, Any], mbytes: bytes, spath: Path, book: KeyBook,
                    full: list[dict[str, Any]], rep: PackageReport) -> None:
    """The manifest is signed by a validly registered key, and the ledger ends in that key's export event."""
    exporter = manifest.get("exporter") or {}
    rep.exporter, rep.exporter_key = str(exporter.get("actor", "")), str(exporter.get("key", ""))
    pub, why = book.signer({"key": rep.exporter_key, "actor": rep.exporter})
    if not spath.is_file():
        rep.problems.append(Problem("package.signature", "manifest.sig", "signature file is missing"))
    elif pub is None:
        rep.problems.append(Problem("package.signature", "manifest.sig", f"exporter's key is not valid: {why}"))
    else:
        raw = spath.read_bytes()
        raw = raw[:-1] if raw.endswith(b"\n") else raw  # as written: one line of base64, nothing else
        try:
            sig = base64.b64decode(raw, validate=True)
            if len(sig) != 64:  # an Ed25519 signature
                raise ValueError(f"{len(sig)} bytes")
        except ValueError:  # binascii.Error: anything but base64 in it
            rep.problems.append(Problem("package.signature", "manifest.sig", "manifest.sig holds more than the "
                                        "signature written at export (added or altered text)"))
        else:
            try:
                pub.verify(sig, mbytes)
            except (InvalidSignature, ValueError):
                rep.problems.append(Problem("package.signature", "manifest.json",
                                            "manifest signature does not verify: the manifest was edited"))
    if full and manifest.get("ledger_head") != rep.ledger_head:
        rep.problems.append(Problem("ledger.head", "ledger.jsonl",
                                    "last valid entry is not the manifest's ledger head"))
    last = full[-1] if full else {}
    if last.get("action") != "export" or last.get("key") != rep.exporter_key or \
            sorted((last.get("details") or {}).get("items") or []) != sorted(manifest.get("items") or []):
        rep.problems.append(Problem("package.export", "ledger.jsonl", "the ledger does not end with the exporter's "
                                    "signed export event for exactly these items"))


def _check_items(pkg: Path, manifest: dict[str, Any], files: dict[str, str], ingested: set[str],
                 rep: PackageReport) -> None:
    """Each original hashes to the SHA-256 it is named by, in the manifest and in items.json."""
    items = [str(x) for x in manifest.get("items") or []]
    try:
        docs = json.loads((pkg / "items.json").read_bytes().decode("utf-8"))
        described: dict[str, str] = {str(d["sha256"]): str(d["file"]) for d in docs}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        rep.problems.append(Problem("package.items", "items.json", f"unreadable item list: {exc}"))
        described = {sha: "" for sha in items}
    if set(described) != set(items):
        rep.problems.append(Problem("package.items", "items.json", "items.json does not describe exactly the "
                                    "manifest's items"))
    listed = manifest["files"]
    for rel in sorted(listed):
        if rel.startswith("originals/") and rel.split("/", 1)[1].split(".", 1)[0] not in items:
            rep.problems.append(Problem("package.original", rel, "a file among the originals that is no item"))
    for sha in items:
        original = next((r for r in listed if r.startswith(f"originals/{sha}.")), None)
        if original is None:
            rep.problems.append(Problem("package.missing", sha, "item has no original in the package"))
            continue
        if described.get(sha, original) not in (original, ""):
            rep.problems.append(Problem("package.items", sha, f"items.json points at {described[sha]}, not {original}"))
        if original in files and files[original] != sha:
            rep.problems.append(Problem("package.original", original, "the file's content does not hash to the "
                                        "SHA-256 it is named by: it is not the footage that was ingested"))
        if sha not in ingested:
            rep.problems.append(Problem("package.provenance", original, "no validly signed ingest record for "
                                        "this item in the ledger"))

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
import hashlib
import html
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy import select

from custodes import __version__
from custodes.analyze import scene_cuts
from custodes.media.source import MediaRef
from custodes.store import faults
from custodes.store.case import Case
from custodes.store.db import (
    Annotation,
    Derivative,
    EvidenceObject,
    MediaProbe,
    Provenance,
    Recording,
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
    ext = Path(name).suffix.lower()
    return ext if ext and len(ext) <= 6 and ext[1:].isalnum() else ".bin"


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


def _score_svg(points: list[tuple[float, float, float]], duration: float) -> str:
    w, h = 600, 80
    if not points or duration <= 0:
        return ""
    bars = "".join(f'<rect x="{w * a / duration:.1f}" y="{h - h * v:.1f}" '
                   f'width="{max(1.0, w * (b - a) / duration):.1f}" height="{h * v:.1f}" '
                   f'fill="{"#c0392b" if v >= 0.5 else "#7f8c8d"}"/>' for a, b, v in points)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 14}" font-size="10">'
            f'<rect width="{w}" height="{h}" fill="#f4f4f4"/>{bars}'
            f'<text x="0" y="{h + 12}">0 s</text><text x="{w}" y="{h + 12}" text-anchor="end">{duration:.0f} s</text>'
            "</svg>")


def export_package(case: Case, out: Path, actor: str, items: list[str] | None = None) -> dict[str, Any]:
    case.ensure_schema()
    out = out.resolve()
    pending = _unfinished_exports(case, out)
    if out.exists() and any(out.iterdir()):
        finished = _confirm_if_complete(case, out, actor, pending)
        if finished is not None:
            return finished
        raise ExportError(f"{out} exists and is not empty; export into a new folder")
    with case.sessions() as s:
        if items:
            chosen = []
            for it in items:
                matches = [sha for (sha,) in s.execute(select(EvidenceObject.sha256).where(
                    EvidenceObject.sha256.like(f"{it.lower()}%")))] if len(it) >= 8 else []
                if len(matches) != 1:
                    raise ExportError(f"item {it!r} matches {len(matches)} objects; give at least 8 hex digits")
                chosen.append(matches[0])
        else:
            chosen = [sha for (sha,) in s.execute(select(MediaProbe.sha256).where(
                MediaProbe.status.in_(("ok", "damaged"))))]
        chosen = sorted(set(chosen))
        if not chosen:
            raise ExportError("nothing to export")
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
            cuts = list(s.scalars(select(Signal).where(Signal.sha256 == sha, Signal.kind == "scene_cut")
                                  .order_by(Signal.start_s)))
            der = s.get(Derivative, sha)
            name = prov[0].original_name if prov else f"{sha}.mp4"
            docs.append({
                "sha256": sha, "size": obj.size if obj else None, "file": f"originals/{sha}{_ext(name)}",
                "names": sorted({p.original_name for p in prov}),
                "origins": [{"source_path": p.source_path, "member_path": p.member_path,
                             "mtime": datetime.fromtimestamp(p.mtime_ns / 1e9, UTC).isoformat(),
                             "ledger_seq": p.ledger_seq} for p in prov],
                "media": None if m is None else {"status": m.status, "reason": m.reason, "duration_s": m.duration_s,
                                                 "width": m.width, "height": m.height, "fps": m.fps,
                                                 "video_codec": m.video_codec, "creation_time": m.creation_time},
                "recording": None if rec is None else {"camera": rec.camera_id, "source": rec.source,
                                                       "start": rec.start_at.isoformat() if rec.start_at else None,
                                                       "end": rec.end_at.isoformat() if rec.end_at else None},
                "segments": [{"start_s": g.start_s, "end_s": g.end_s, "score": g.score,
                              "reasons": [r["text"] for r in g.reasons], "model": g.model_version} for g in segs],
                "annotations": [{"id": a.id, "start_s": a.start_s, "end_s": a.end_s, "label": a.label,
                                 "people": a.people, "note": a.note, "author": a.author,
                                 "created_at": a.created_at.isoformat(), "supersedes": a.supersedes} for a in anns],
                # where the picture cuts inside the file: an edit, a camera switch or a jump in time
                "scene_cuts": [{"t_s": c.start_s, "found_by": scene_cuts.found_by(c.data),
                                "analyzer_version": c.version} for c in cuts],
                "transcript": [{"start_s": t.start_s, "end_s": t.end_s, "language": t.language, "text": t.text}
                               for t in trs],
                "derived_from": None if der is None else {"original": der.parent_sha256, "kind": der.kind,
                                                          "params": der.params},
                "_scores": scores,
                "_sheet": _sheet_html(case.store.media_ref(sha), float(m.duration_s or 0) if m else 0.0),
            })
    tmp = out.with_name(out.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "originals").mkdir(parents=True)
    for d in docs:
        dst = tmp / d["file"]
        h = hashlib.sha256()
        with case.store.open(d["sha256"]) as fin, open(dst, "wb") as fout:
            while chunk := fin.read(CHUNK):
                h.update(chunk)
                fout.write(chunk)
        if h.hexdigest() != d["sha256"]:
            shutil.rmtree(tmp)
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
    from custodes.timeline.build import build_timeline, write_svg

    write_svg(build_timeline(case), tmp / "timeline.svg")
    items_doc = [{k: v for k, v in d.items() if not k.startswith("_")} for d in docs]
    (tmp / "items.json").write_text(json.dumps(items_doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report_html = _report(case, docs, ledger, (tmp / "timeline.svg").read_bytes())
    (tmp / "report.html").write_text(report_html, encoding="utf-8")
    pdf = _write_pdf(report_html, tmp / "report.pdf")
    (tmp / "VERIFY.txt").write_text(
        "Verify this package offline:\n\n    custodes verify-package THIS_FOLDER\n\n"
        "or by hand: every file's SHA-256 is listed in manifest.json; manifest.sig is an Ed25519 signature\n"
        "over manifest.json by the key whose fingerprint is manifest.json's exporter.key, registered in\n"
        "ledger.jsonl; each original is named by its own SHA-256.\n")
    files = {}
    for p in sorted(tmp.rglob("*")):
        if p.is_file():
            files[p.relative_to(tmp).as_posix()] = _sha256_file(p)
    key = case.keyring.load_or_create(actor)
    manifest = {"format": FORMAT, "case_id": case.id, "case_title": case.meta.get("title", ""),
                "created": datetime.now(UTC).isoformat(), "custodes_version": __version__,
                "exporter": {"actor": actor, "key": fingerprint(key.public_key())},
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
    from custodes.media.thumbs import contact_sheet, jpeg

    try:
        img = contact_sheet(path, duration, n=8, cols=4, width=180)
    except Exception:  # an undecodable item gets no sheet, not a failed export
        img = None
    if img is None:
        return "<p>(no decodable frames)</p>"
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


def _report(case: Case, docs: list[dict[str, Any]], ledger: list[dict[str, Any]], timeline_svg: bytes) -> str:
    """The human report, from the package's own data only (the timeline is the package's timeline.svg, shown
    as an image so nothing in it runs or reaches outside); every field escaped."""
    e = html.escape
    rows = []
    for d in docs:
        m = d["media"] or {}
        rec = d["recording"] or {}
        segs = "".join(f"<li>{g['start_s']:.0f}–{g['end_s']:.0f} s, score {g['score']:.2f}: "
                       f"{e('; '.join(g['reasons']))}</li>" for g in d["segments"])
        anns = "".join(f"<li>{e(a['label'])} {a['start_s']:.1f}–{a['end_s']:.1f} s by {e(a['author'])}: "
                       f"{e(a['note'])}</li>" for a in d["annotations"])
        cuts = "".join(f"<li>{c['t_s']:.1f} s" + (" (or in the seconds before: found between keyframes)"
                                                  if c["found_by"] == "keyframes" else "") + "</li>"
                       for c in d["scene_cuts"])
        trs = "".join(f"<li>[{e(str(t['language']))}] {t['start_s']:.1f} s: {e(t['text'])}</li>"
                      for t in d["transcript"])
        origins = "".join(f"<li><code>{e(o['source_path'])}{(' ! ' + e(o['member_path'])) if o['member_path'] else ''}"
                          f"</code> (mtime {e(o['mtime'])})</li>" for o in d["origins"])
        rows.append(f"""<section><h2>{e(', '.join(d['names']))}</h2>
<p><code>{d['sha256']}</code> · {d['size']} bytes · {e(str(rec.get('camera') or ''))} {e(str(rec.get('start') or ''))}
· {m.get('duration_s') or 0:.1f} s · {m.get('width')}x{m.get('height')} {e(str(m.get('video_codec') or ''))}
· file <code>{e(d['file'])}</code></p>
<h3>Contact sheet</h3>{d['_sheet']}
<h3>Triage score over time</h3>{_score_svg(d['_scores'], float(m.get('duration_s') or 0))}
<h3>Flagged segments</h3><ul>{segs or '<li>none</li>'}</ul>
<h3>Annotations</h3><ul>{anns or '<li>none</li>'}</ul>
<h3>Scene cuts inside the file (edits, camera switches, jumps in time)</h3><ul>{cuts or '<li>none found</li>'}</ul>
<h3>Transcript</h3><ul>{trs or '<li>none</li>'}</ul>
<h3>Origins</h3><ul>{origins}</ul></section>""")
    tl = (f'<img alt="camera timeline" style="max-width:100%" '
          f'src="data:image/svg+xml;base64,{base64.b64encode(timeline_svg).decode()}">')
    full = sum(1 for x in ledger if not x.get("omitted"))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Custodes case package</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}}section{{border-top:1px solid #ccc}}
code{{font-size:.85em;word-break:break-all}}svg{{max-width:100%;height:auto}}
@page{{size:A4;margin:15mm}}</style></head><body>
<h1>Case package: {e(case.meta.get('title', ''))}</h1>
<p>Case {e(case.id)} · exported {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {len(docs)} item(s) ·
ledger head <code>{e(ledger[-1]['hash'])}</code> ({full} entries in full, {len(ledger) - full} as chain stubs).
Check it offline with <code>custodes verify-package</code> (see VERIFY.txt).</p>
<h2>Camera timeline</h2>{tl}
{''.join(rows)}
</body></html>
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
    for top, dirs, names in os.walk(pkg, followlinks=False):
        for name in sorted(dirs + names):
            p = Path(top) / name
            rel = p.relative_to(pkg).as_posix()
            if p.is_symlink():
                if rel not in files:  # a listed link is named above
                    rep.problems.append(Problem("package.extra", rel, "a link inside the package: added later"))
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
        try:
            pub.verify(base64.b64decode(spath.read_text().strip()), mbytes)
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

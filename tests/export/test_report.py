"""The court report and the package a clerk can check: rendered to PDF (WeasyPrint) and read back with
pdftotext and page images (poppler-utils), checked with `sha256sum -c` alone and with verify-package after
copying it to another folder.

A small synthetic case: two CAM-07 clips with a gap between them, a truncated file, a redacted copy, a
Whisper repetition loop, a subtitle-credit hallucination, Russian speech, annotations with people, roles and
a second reviewer, triage scores and loudness.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes.export.package import ExportError, export_package, verify_package
from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from custodes.store.db import Annotation, MediaProbe, Provenance, Segment, Signal, TranscriptSegment
from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                reason="poppler-utils (pdftotext, pdftoppm) not installed: make system-deps")

LOOP = "No, no, no, " * 100
BAD = [re.compile(r"\bNone\b"), re.compile(r"\bnan\b", re.IGNORECASE), re.compile(r"\d{2}:\d{2}:\d{2}\.\d+"),
       re.compile(r"\bNonex"), re.compile(r"\bnull\b")]


def artefacts(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    base = os.environ.get("CUSTODES_TEST_ARTEFACTS")
    d = Path(base) / name if base else tmp_path_factory.mktemp(name)
    d.mkdir(parents=True, exist_ok=True)
    return d


def pdf_text(pdf: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-layout", *(["-f", str(page), "-l", str(page)] if page else []), str(pdf), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]


def visible_html(html: str) -> str:
    """The report's HTML without embedded images and tags: what a browser shows as text."""
    html = re.sub(r"data:[a-z/+]+;base64,[A-Za-z0-9+/=]+", "", html)
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The case (kept) and its English package, exported and then copied to another folder."""
    from custodes.redact.derive import redact_item
    from custodes.timeline.build import read_recordings

    root = tmp_path_factory.mktemp("report")
    src = root / "drive"
    write_clip(src / "CAM07_0300.mp4", ClipSpec("CAM-07", datetime(2026, 3, 14, 3, 0, 0), 6, size=(320, 180)))
    write_clip(src / "CAM07_0301.mp4", ClipSpec("CAM-07", datetime(2026, 3, 14, 3, 1, 0), 6, size=(320, 180)))
    whole = (src / "CAM07_0301.mp4").read_bytes()
    (src / "CAM08_cut.mp4").write_bytes(whole[: len(whole) // 3])
    (src / "CAM09_link.mp4").symlink_to(root / "elsewhere.mp4")  # refused at intake: a link is not followed
    case = Case.init(root / "case", "tester", title="Cell 4, night of 14 March")
    Ingestor(case, "tester").run([src])
    read_recordings(case)
    with case.sessions() as s:
        names = {p.original_name: p.sha256 for p in s.query(Provenance)}
        ok = {sha for (sha,) in s.query(MediaProbe.sha256).filter(MediaProbe.status == "ok")}
    first, second = names["CAM07_0300.mp4"], names["CAM07_0301.mp4"]
    assert {first, second} <= ok
    now = datetime.now(UTC)
    translated = hasattr(TranscriptSegment, "translation")
    with case.sessions() as s:
        s.add_all([
            TranscriptSegment(sha256=first, start_s=0.5, end_s=3.0, language="en", text=LOOP, avg_logprob=-0.2,
                              version="test"),
            TranscriptSegment(sha256=first, start_s=3.0, end_s=4.0, language="ru", text="Отпустите его!",
                              avg_logprob=-0.5, version="test",
                              **({"translation": "Let him go!"} if translated else {})),
            TranscriptSegment(sha256=first, start_s=4.0, end_s=5.0, language="ru", text="Субтитры сделал DimaTorzok",
                              avg_logprob=-0.9, version="test"),
            *[Signal(sha256=first, analyzer="triage", version="t", kind="score", start_s=float(i), end_s=i + 1.0,
                     value=v) for i, v in enumerate((0.1, 0.3, 0.8, 0.9, 0.4, 0.2))],
            *[Signal(sha256=first, analyzer="loudness", version="t", kind="loudness_db", start_s=i / 2,
                     end_s=i / 2 + 0.5, value=-40.0 + i) for i in range(12)],
        ])
        s.commit()
        a = Annotation(sha256=first, start_s=1.0, end_s=4.0, label="assault", note="pushed to the wall",
                       people=[{"pseudonym": "P-5", "role": "victim"}], author="alice", created_at=now)
        s.add(a)
        s.commit()
        s.add(Annotation(sha256=first, start_s=1.0, end_s=4.5, label="assault", note="pushed, then struck",
                         people=[{"pseudonym": "P-5", "role": "victim"}, {"pseudonym": "O-1", "role": "perpetrator"}],
                         author="bob", created_at=now, supersedes=a.id))
        s.commit()
    from custodes.store import db

    with case.sessions() as s:
        seg = Segment(sha256=first, start_s=2.0, end_s=4.0, score=0.85, model_version="test", created_at=now,
                      reasons=[{"text": "movement clearly like a fight"}])
        s.add(seg)
        s.commit()
        if hasattr(db, "Review"):  # review states per flagged segment, where the case has them
            s.add_all([db.Review(sha256=first, segment_id=seg.id, start_s=seg.start_s, end_s=seg.end_s,
                                 state=st, author=who, created_at=now, note="")
                       for st, who in (("annotated", "alice"), ("confirmed", "carol"))])
            s.commit()
    redacted = redact_item(case, first[:12], "editor", faces="blur")["derivative"]
    pkg = root / "pkg"
    doc = export_package(case, pkg, "clerk")
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "pkg"
    shutil.copytree(pkg, elsewhere)
    shutil.rmtree(pkg)
    return {"case": case, "pkg": elsewhere, "doc": doc, "first": first, "second": second, "redacted": redacted,
            "cut": names["CAM08_cut.mp4"], "translated": translated, "root": root}


def test_exhibit_table_lists_every_original_with_its_full_sha256(built):
    pkg = built["pkg"]
    text = pdf_text(pkg / "report.pdf")
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert set(manifest["items"]) == {built["first"], built["second"], built["redacted"]}
    exhibits = text[text.rindex("2. List of exhibits"):text.index("Exhibit E1:")]
    for sha in manifest["items"]:
        assert sha in exhibits.split(), f"{sha} not printed whole in the exhibit list"
    # in exhibit order: the redacted copy right after its original, and shown as derived from it
    assert exhibits.index(built["first"]) < exhibits.index(built["redacted"]) < exhibits.index(built["second"])
    e2 = text[text.index("Exhibit E2:"):text.index("Exhibit E3:")]
    assert "derivative, made from exhibit E1" in " ".join(e2.split()) and built["first"] in e2
    assert (pkg / "credentials" / "case-ca.pem").read_text().startswith("-----BEGIN CERTIFICATE")
    # the derivative travels with its Content Credentials, naming its original in the package by hash
    from custodes.redact.credentials import read_credentials

    cred = read_credentials(pkg / "originals" / f"{built['redacted']}.mp4")
    assert cred["manifest"]["ingredients"][0]["instance_id"] == f"sha256:{built['first']}"
    items = {d["sha256"]: d for d in json.loads((pkg / "items.json").read_text())}
    assert items[built["redacted"]]["derived_from"]["original"] == built["first"]


def test_every_page_says_page_x_of_n_with_the_case_and_the_ledger_head(built, tmp_path_factory):
    pkg = built["pkg"]
    n = pdf_pages(pkg / "report.pdf")
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert n >= 6
    for i in range(1, n + 1):
        page = pdf_text(pkg / "report.pdf", i)
        assert f"page {i} of {n}" in page
        assert manifest["case_id"] in page and manifest["ledger_head"] in page.split()
    out = artefacts(tmp_path_factory, "report-pages-en")
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pkg / "report.pdf"), str(out / "page")], check=True)
    pngs = sorted(out.glob("page-*.png"))
    assert len(pngs) == n and all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    print(f"report page images: {out}")


def test_no_none_nan_or_microseconds_anywhere(built):
    pkg = built["pkg"]
    for name, text in (("report.pdf", pdf_text(pkg / "report.pdf")),
                       ("report.html", visible_html((pkg / "report.html").read_text()))):
        for bad in BAD:
            found = bad.search(text)
            where = text[max(0, found.start() - 80):found.end() + 40] if found else ""
            assert found is None, f"{name} prints {found.group(0)!r}: …{where}…"
    # clock times to the second: the camera clock of the first clip as the overlay said it
    assert "2026-03-14 03:00:00 – 03:00:06" in pdf_text(pkg / "report.pdf")


def test_transcript_fit_to_show_and_marked_as_machine_transcript(built):
    pkg = built["pkg"]
    text = " ".join(pdf_text(pkg / "report.pdf").split())
    assert text.lower().count("no, no") <= 2 and "repetition loop removed" in text  # the loop is not printed
    assert "DimaTorzok" not in text and "hallucination" in text  # a subtitle credit is not speech
    assert "Отпустите его!" in text
    html = (pkg / "report.html").read_text()
    rows = re.findall(r'<td class="orig">(.*?)</td>', html, flags=re.S)
    assert len(rows) == 3 and all('class="mark">machine transcript, language' in r for r in rows)
    assert all(re.search(r"confidence \d+ %", r) for r in rows)
    assert text.count("machine transcript, language") == 3
    if built["translated"]:
        assert "machine translation" in text and "Let him go!" in text
    # the raw transcript travels unchanged in items.json: leaving it out of the report is not editing evidence
    items = json.loads((pkg / "items.json").read_text())
    assert any(t["text"] == LOOP for d in items for t in d["transcript"])


def test_summary_names_people_roles_and_both_reviewers(built):
    text = " ".join(pdf_text(built["pkg"] / "report.pdf").split())
    summary = text[text.rindex("1. Summary of findings"):text.rindex("2. List of exhibits")]
    assert "assault (1)" in summary and "CAM-07" in summary and "03:00:01–03:00:04" in summary
    assert {"P-5", "(victim),", "O-1", "(perpetrator)", "alice", "bob"} <= set(summary.split())
    html = (built["pkg"] / "report.html").read_text()
    row = re.search(r"<td>E1</td><td>CAM-07</td>.*?</tr>", html, flags=re.S)
    assert row and "<td>P-5 (victim), O-1 (perpetrator)</td>" in row.group(0)
    assert "<td>alice</td><td>bob</td>" in row.group(0)  # reviewer, second reviewer
    assert "movement clearly like a fight" in text
    from custodes.store import db

    if hasattr(db, "Review"):
        assert re.search(r"review: annotated \(alice, [^)]+\); confirmed \(carol, ", text)


def test_left_out_files_are_listed_with_the_reason(built):
    text = " ".join(pdf_text(built["pkg"] / "report.pdf").split())
    left = text[text.rindex("6. What was not included and why"):text.rindex("7. Glossary")]
    assert "CAM08_cut.mp4" in left and "could not be read as video" in left
    assert "CAM09_link.mp4" in left and "refused at intake: symbolic link not followed" in left
    assert "Chain of custody" in text and "received CAM07_0300.mp4" in text and "made a redacted copy" in text
    assert "scores order" in text.lower() or "the score only orders" in text.lower()


def test_package_checks_with_sha256sum_alone_and_with_verify_package_elsewhere(built, tmp_path):
    pkg = tmp_path / "moved"
    shutil.copytree(built["pkg"], pkg)
    ok = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=pkg, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    listed = {line.split("  ", 1)[1] for line in (pkg / "SHA256SUMS").read_text().splitlines()}
    on_disk = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()}
    assert on_disk - listed == {"SHA256SUMS", "manifest.json", "manifest.sig"}
    proc = run_cli("verify-package", str(pkg), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"], proc.stdout + proc.stderr
    verify = (pkg / "VERIFY.txt").read_text()
    from custodes import __version__

    assert "sha256sum -c SHA256SUMS" in verify and f"Custodes {__version__}" in verify
    assert json.loads((pkg / "manifest.json").read_text())["custodes_version"] == __version__
    # one flipped byte: sha256sum names the file, verify-package too
    victim = pkg / "originals" / f"{built['second']}.mp4"
    data = bytearray(victim.read_bytes())
    data[500] ^= 1
    victim.write_bytes(bytes(data))
    bad = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=pkg, capture_output=True, text=True)
    assert bad.returncode == 1 and f"originals/{built['second']}.mp4: FAILED" in bad.stdout
    assert [p.where for p in verify_package(pkg).problems if p.kind == "package.altered"] == [
        f"originals/{built['second']}.mp4"]


def test_an_edited_sha256sums_is_caught_by_verify_package(built, tmp_path):
    pkg = tmp_path / "p"
    shutil.copytree(built["pkg"], pkg)
    sums = (pkg / "SHA256SUMS").read_text()
    (pkg / "SHA256SUMS").write_text(sums.replace("report.pdf", "report.PDF"))
    assert "package.altered" in {p.kind for p in verify_package(pkg).problems}


def test_russian_report_chosen_at_export(built, tmp_path_factory):
    out = tmp_path_factory.mktemp("ru") / "pkg"
    proc = run_cli("export", str(built["case"].root), "--out", str(out), "--actor", "clerk", "--language", "ru",
                   "--name", "CAM07_0300*", "--no-derivatives", "--timezone", "Europe/Moscow", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["items"] == [built["first"]]
    n = pdf_pages(out / "report.pdf")
    text = pdf_text(out / "report.pdf")
    assert f"страница 1 из {n}" in text and f"страница {n} из {n}" in text
    assert "Перечень материалов" in text and "машинная расшифровка" in text and "Отчёт по делу" in text
    assert built["first"] in text.split()
    assert "(время в Europe/Moscow)" in " ".join(text.split()) and "MSK" in text  # times of custody in the zone
    pages = artefacts(tmp_path_factory, "report-pages-ru")
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "3", str(out / "report.pdf"),
                    str(pages / "page")], check=True)
    assert len(list(pages.glob("page-*.png"))) == min(3, n)
    print(f"report page images: {pages}")


def test_exhibits_chosen_by_name_camera_and_time_window(built, tmp_path):
    case = built["case"]
    by_window = export_package(case, tmp_path / "w", "clerk", cameras=["cam-07"],
                               since=datetime(2026, 3, 14, 3, 0, 30), until=datetime(2026, 3, 14, 3, 2))
    assert by_window["items"] == 1
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["items"] == [built["second"]]
    left = " ".join(pdf_text(tmp_path / "w" / "report.pdf").split())
    assert "CAM07_0300.mp4" in left and "not among the exhibits chosen" in left
    assert verify_package(tmp_path / "w").ok
    both = export_package(case, tmp_path / "n", "clerk", names=["cam07_*.mp4"], derivatives=False)
    assert both["items"] == 2
    # chosen by hash, the original brings its redacted copy; the copy alone travels alone
    export_package(case, tmp_path / "h", "clerk", items=[built["first"][:12]])
    assert json.loads((tmp_path / "h" / "manifest.json").read_text())["items"] == sorted(
        [built["first"], built["redacted"]])
    export_package(case, tmp_path / "d", "clerk", items=[built["redacted"][:12]])
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["items"] == [built["redacted"]]
    assert verify_package(tmp_path / "h").ok and verify_package(tmp_path / "d").ok
    with pytest.raises(ExportError, match="no recording is from camera 'CAM-99'"):
        export_package(case, tmp_path / "x", "clerk", cameras=["CAM-99"])
    with pytest.raises(ExportError, match="no file is named"):
        export_package(case, tmp_path / "y", "clerk", names=["nothing*"])
    with pytest.raises(ExportError, match="nothing to export"):
        export_package(case, tmp_path / "z", "clerk", since=datetime(2027, 1, 1))
    bad = run_cli("export", str(case.root), "--out", str(tmp_path / "b"), "--since", "yesterday")
    assert bad.returncode != 0 and "is not a time" in bad.stderr and "Traceback" not in bad.stderr
    tz = run_cli("export", str(case.root), "--out", str(tmp_path / "t"), "--timezone", "Mars/Olympus")
    assert tz.returncode != 0 and "is not a time zone" in tz.stderr and "Traceback" not in tz.stderr
    lang = run_cli("export", str(case.root), "--out", str(tmp_path / "c"), "--language", "de")
    assert lang.returncode != 0 and "en, ru" in lang.stderr and "Traceback" not in lang.stderr


@pytest.mark.slow
def test_a_package_of_50_real_clips_checked_elsewhere(fight_surv, tmp_path, tmp_path_factory):
    """50 real CCTV clips (fight-surv), exported through the CLI, moved to another folder, checked with
    `sha256sum -c` alone and with verify-package; every original listed whole, pages numbered, images kept."""
    src = tmp_path / "clips"
    src.mkdir()
    clips = sorted((fight_surv / "fight").glob("*.mp4"))[:25] + sorted((fight_surv / "noFight").glob("*.mp4"))[:25]
    for f in clips:
        shutil.copy2(f, src / f.name)
    case = Case.init(tmp_path / "case", "tester", title="50 real clips")
    Ingestor(case, "tester").run([src])
    out = tmp_path / "pkg"
    proc = run_cli("export", str(case.root), "--out", str(out), "--actor", "clerk", "--json")
    assert proc.returncode == 0, proc.stderr
    moved = tmp_path_factory.mktemp("court") / "pkg"
    shutil.move(str(out), moved)
    ok = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=moved, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    check = run_cli("verify-package", str(moved), "--json")
    assert check.returncode == 0 and json.loads(check.stdout)["ok"], check.stdout + check.stderr
    items = json.loads((moved / "manifest.json").read_text())["items"]
    assert len(items) == 50
    text = pdf_text(moved / "report.pdf")
    listed = text[text.rindex("2. List of exhibits"):text.index("Exhibit E1:")].split()
    assert all(sha in listed for sha in items)
    n = pdf_pages(moved / "report.pdf")
    assert n > 50 and f"page 1 of {n}" in pdf_text(moved / "report.pdf", 1)
    assert f"page {n} of {n}" in pdf_text(moved / "report.pdf", n)
    for bad in BAD:
        assert not bad.search(text), bad.pattern
    pages = artefacts(tmp_path_factory, "report-pages-50-clips")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(moved / "report.pdf"), str(pages / "page")], check=True)
    assert len(list(pages.glob("page-*.png"))) == n
    print(f"report page images: {pages}")


@pytest.mark.slow
def test_demo_speech_transcribed_and_translated_in_the_report(demo_drive, tmp_path):
    """The demo drive, ingested and transcribed by the real speech engine, exported: every excerpt carries the
    machine-transcript mark and its confidence, the Russian speech its English machine translation beside it,
    and no run of repeated words is printed."""
    from custodes.search.transcribe import transcribe_case

    drive, _ = demo_drive
    case = Case.init(tmp_path / "case", "tester", title="demo")
    Ingestor(case, "tester").run([drive])
    done = transcribe_case(case)
    assert done["segments"] > 0 and done.get("translated", 0) >= 1
    export_package(case, tmp_path / "pkg", "clerk")
    html = (tmp_path / "pkg" / "report.html").read_text()
    rows = re.findall(r'<td class="orig">(.*?)</td>\s*(<td[^>]*>.*?</td>)', html, flags=re.S)
    with case.sessions() as s:
        assert len(rows) == s.query(TranscriptSegment).count()
    assert all('class="mark">machine transcript, language' in orig and "confidence" in orig for orig, _ in rows)
    russian = [(o, t) for o, t in rows if "language ru" in o]
    assert russian and all('class="mark tr-mark">machine translation' in t for _, t in russian)
    text = " ".join(pdf_text(tmp_path / "pkg" / "report.pdf").split())
    assert "machine translation" in text and not re.search(r"(\b\w+\b[,.]? )\1{3,}", text)
    # the demo case's package, moved to another folder, checks with sha256sum alone and with verify-package
    moved = tmp_path / "handed-over"
    shutil.copytree(tmp_path / "pkg", moved)
    ok = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=moved, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    rep = verify_package(moved)
    assert rep.ok, rep.problems
    # the method statement quotes the measured error rates with their run
    assert "Measured error rates" in text and "make bench" in text

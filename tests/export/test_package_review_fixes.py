"""Findings of the export review: package names and SHA256SUMS for any file name, no package inside the case, a
strict verifier (extra folders, junk in manifest.sig), honest VERIFY.txt, literal and ambiguous --name, edits
inside a file in the package."""

import base64
import json
import shutil
import subprocess
from datetime import datetime

import pytest

from custodes.export.package import ExportError, export_package, verify_package
from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case


@pytest.fixture(scope="module")
def small_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixes")
    drive = root / "drive"
    (drive / "a").mkdir(parents=True)
    (drive / "b").mkdir()
    for i, name in enumerate(["tmp.mp4", "cam[1].mp4", "cam1.mp4", "a/same.mp4", "b/same.mp4"]):
        write_clip(drive / name, ClipSpec(f"CAM-{i}", datetime(2026, 3, 1, 11, i, 0), 2, fps=5, size=(160, 96),
                                          seed=i + 1))
    (drive / "tmp.mp4").rename(drive / "clip.vidéo")
    case = Case.init(root / "case", "tester")
    Ingestor(case, "tester").run([drive])
    return case


def _sha(case, name, under=""):
    from custodes.store.db import Provenance

    with case.sessions() as s:
        return next(p.sha256 for p in s.query(Provenance) if p.original_name == name and under in p.source_path)


def test_a_video_with_a_non_ascii_extension_exports_and_checks_with_sha256sum(small_case, tmp_path):
    sha = _sha(small_case, "clip.vidéo")
    export_package(small_case, tmp_path / "pkg", "clerk", items=[sha])
    assert (tmp_path / "pkg" / "originals" / f"{sha}.bin").is_file()
    proc = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "pkg", capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert verify_package(tmp_path / "pkg").ok


def test_sha256sums_lines_escape_names_as_sha256sum_reads_them(tmp_path):
    names = ["plain.txt", "back\\slash.txt", "line\nbreak.txt", "é.txt"]
    for n in names:
        (tmp_path / n).write_bytes(n.encode())
    import hashlib

    from custodes.export.package import _sums_line

    sums = "".join(_sums_line(hashlib.sha256(n.encode()).hexdigest(), n) for n in names)
    (tmp_path / "SHA256SUMS").write_text(sums, encoding="utf-8")
    proc = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.count(": OK") == 4, proc.stdout + proc.stderr


def test_a_failed_export_leaves_no_part_folder_and_a_rerun_succeeds(small_case, tmp_path, monkeypatch):
    from custodes.export import package

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    sha = _sha(small_case, "cam1.mp4")
    out = tmp_path / "pkg"
    monkeypatch.setattr(package, "_write_pdf", broken)
    with pytest.raises(OSError):
        export_package(small_case, out, "clerk", items=[sha])
    assert not out.with_name("pkg.part").exists() and not out.exists()
    monkeypatch.undo()
    export_package(small_case, out, "clerk", items=[sha])
    assert verify_package(out).ok
    mine = [e for e in small_case.ledger.entries() if (e["details"] or {}).get("out") == str(out.resolve())]
    assert [e["action"] for e in mine] == ["export", "export.done"]  # the rerun reused the first intent


def test_a_package_inside_the_case_folder_is_refused(small_case):
    out = small_case.root / "objects" / "zz"
    with pytest.raises(ExportError, match="inside the case folder"):
        export_package(small_case, out, "clerk", items=[_sha(small_case, "cam1.mp4")])
    assert not out.exists() and not out.with_name("zz.part").exists()


@pytest.fixture(scope="module")
def pkg(small_case, tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "pkg"
    export_package(small_case, out, "clerk", items=[_sha(small_case, "cam1.mp4")])
    return out


def _copy(pkg, tmp_path):
    shutil.copytree(pkg, tmp_path / "copy")
    return tmp_path / "copy"


def test_an_added_empty_folder_is_named(pkg, tmp_path):
    p = _copy(pkg, tmp_path)
    assert verify_package(p).ok
    (p / "originals" / "more").mkdir()
    (p / "extra").mkdir()
    found = {(x.kind, x.where) for x in verify_package(p).problems}
    assert {("package.extra", "originals/more"), ("package.extra", "extra")} <= found


@pytest.mark.parametrize("junk", [b"junk\n", b"\n\nnot base64 at all", b"AAAA\n"])
def test_text_added_to_the_signature_is_refused(pkg, tmp_path, junk):
    p = _copy(pkg, tmp_path)
    sig = (p / "manifest.sig").read_bytes()
    assert sig.endswith(b"\n") and len(base64.b64decode(sig[:-1], validate=True)) == 64
    (p / "manifest.sig").write_bytes(sig + junk)
    assert "package.signature" in {x.kind for x in verify_package(p).problems}


def test_verify_txt_and_report_say_sha256sum_alone_does_not_prove_sha256sums(pkg):
    verify = (pkg / "VERIFY.txt").read_text()
    assert "proves only that the files match SHA256SUMS" in verify
    assert "Only step 2 proves that" in verify
    assert "not that SHA256SUMS is the exporter's" in (pkg / "report.html").read_text()
    from custodes.export import strings

    assert "не то, что сам SHA256SUMS составлен экспортировавшим" in strings.RU["how_to_verify_text"]


def test_a_name_with_brackets_is_taken_as_written_first(small_case, tmp_path):
    doc = json.loads(json.dumps(export_package(small_case, tmp_path / "pkg", "clerk", names=["CAM[1].mp4"])))
    items = json.loads((tmp_path / "pkg" / "items.json").read_text())
    assert doc["items"] == 1 and items[0]["names"] == ["cam[1].mp4"]
    # as a pattern it still works where no file has the name as written
    export_package(small_case, tmp_path / "pkg2", "clerk", names=["cam[0-9].mp4"])
    assert json.loads((tmp_path / "pkg2" / "items.json").read_text())[0]["names"] == ["cam1.mp4"]


def test_a_name_two_different_files_share_is_refused_naming_both(small_case, tmp_path):
    a, b = _sha(small_case, "same.mp4", "/a/"), _sha(small_case, "same.mp4", "/b/")
    with pytest.raises(ExportError) as exc:
        export_package(small_case, tmp_path / "pkg", "clerk", names=["same.mp4"])
    assert a in str(exc.value) and b in str(exc.value) and "--items" in str(exc.value)
    assert not (tmp_path / "pkg").exists()
    # a pattern asks for every file it matches
    assert export_package(small_case, tmp_path / "pkg", "clerk", names=["same.*"])["items"] == 2


def test_edits_inside_a_file_travel_in_items_json_and_the_report(small_case, tmp_path):
    from custodes.store.db import Signal

    sha = _sha(small_case, "cam[1].mp4")
    with small_case.sessions() as s:
        s.add_all([Signal(sha256=sha, analyzer="edits", version="edits-1", kind="clock_jump_forward", start_s=1.2,
                          end_s=1.4, value=60.0, data={"seen": "about 60 s of clock time are missing"}),
                   Signal(sha256=sha, analyzer="edits", version="edits-1", kind="codec_change", start_s=0.4,
                          end_s=0.4, value=0.0, data={"seen": "picture size changes"})])
        s.commit()
    export_package(small_case, tmp_path / "pkg", "clerk", items=[sha])
    item = json.loads((tmp_path / "pkg" / "items.json").read_text())[0]
    assert [(e["kind"], e["start_s"], e["value"], e["seen"]) for e in item["edits"]] == [
        ("codec_change", 0.4, 0.0, "picture size changes"),
        ("clock_jump_forward", 1.2, 60.0, "about 60 s of clock time are missing")]
    report = (tmp_path / "pkg" / "report.html").read_text()
    assert "Signs of editing inside the file" in report
    assert "the on-screen clock jumps forward — about 60 s of clock time are missing" in report
    assert "the picture&#39;s encoding changes — picture size changes" in report
    assert verify_package(tmp_path / "pkg").ok

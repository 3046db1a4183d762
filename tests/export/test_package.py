"""Case packages: exported, copied elsewhere, verified offline; every alteration named."""

import json
import shutil

import pytest

from custodes.export.package import ExportError, export_package, verify_package
from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def package(tmp_path_factory, demo_drive):
    drive, truth = demo_drive
    root = tmp_path_factory.mktemp("export")
    case = Case.init(root / "case", "tester")
    Ingestor(case, "tester").run([drive])
    pkg = root / "pkg"
    doc = export_package(case, pkg, "clerk")
    # the package travels to a machine that never saw the case
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "pkg"
    shutil.copytree(pkg, elsewhere)
    shutil.rmtree(root / "case", onerror=lambda f, p, e: (__import__("os").chmod(p, 0o700), f(p)))
    return elsewhere, doc


def fresh(package, tmp_path):
    p = tmp_path / "copy"
    shutil.copytree(package[0], p)
    return p


def kinds(rep):
    return {p.kind for p in rep.problems}


def test_package_verifies_offline(package):
    pkg, doc = package
    rep = verify_package(pkg)
    assert rep.ok, rep.problems
    assert doc["items"] == 8 and len(list((pkg / "originals").iterdir())) == 8
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert manifest["exporter"]["actor"] == "clerk"
    ledger = [json.loads(x) for x in (pkg / "ledger.jsonl").read_text().splitlines()]
    assert any(e.get("omitted") for e in ledger) and any(e.get("action") == "ingest" for e in ledger)
    assert "Case package" in (pkg / "report.html").read_text()
    assert doc["pdf"] == "" and (pkg / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "report.pdf" in manifest["files"]


def test_flipped_byte_in_an_original_is_named(package, tmp_path):
    p = fresh(package, tmp_path)
    victim = sorted((p / "originals").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0xFF
    victim.write_bytes(bytes(data))
    rep = verify_package(p)
    assert [x.where for x in rep.problems if x.kind == "package.altered"] == [f"originals/{victim.name}"]


def test_edited_manifest_line_is_caught(package, tmp_path):
    p = fresh(package, tmp_path)
    text = (p / "manifest.json").read_text()
    (p / "manifest.json").write_text(text.replace('"case_title": "', '"case_title": "EDITED ', 1))
    assert "package.signature" in kinds(verify_package(p))


def test_swapped_original_with_rewritten_manifest_is_caught(package, tmp_path):
    """Replace a file and fix its hash in the manifest: the signature no longer verifies."""
    import hashlib

    p = fresh(package, tmp_path)
    victim = sorted((p / "originals").iterdir())[0]
    victim.write_bytes(b"fake footage")
    m = json.loads((p / "manifest.json").read_text())
    m["files"][f"originals/{victim.name}"] = hashlib.sha256(b"fake footage").hexdigest()
    (p / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
    assert "package.signature" in kinds(verify_package(p))


def test_added_deleted_and_ledger_edits_are_caught(package, tmp_path):
    p = fresh(package, tmp_path)
    (p / "originals" / "extra.mp4").write_bytes(b"planted")
    (p / "timeline.svg").unlink()
    lines = (p / "ledger.jsonl").read_text().splitlines()
    i = next(i for i, x in enumerate(lines) if '"action": "ingest"' in x)
    lines[i] = lines[i].replace('"original_name": "', '"original_name": "X', 1)
    (p / "ledger.jsonl").write_text("\n".join(lines) + "\n")
    found = kinds(verify_package(p))
    assert {"package.extra", "package.missing", "package.altered", "ledger.altered"} <= found


def test_cli_verify_package_exit_codes(package, tmp_path):
    p = fresh(package, tmp_path)
    ok = run_cli("verify-package", str(p), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"]
    (p / "items.json").write_text("[]")
    bad = run_cli("verify-package", str(p))
    assert bad.returncode == 1 and "items.json" in bad.stderr


def test_export_refuses_non_empty_folder_and_unknown_items(tmp_path, case):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ExportError):
        export_package(case, tmp_path / "full", "tester")
    with pytest.raises(ExportError):
        export_package(case, tmp_path / "new", "tester", items=["deadbeef"])


def test_scene_cuts_inside_an_item_travel_in_the_package(tmp_path, demo_drive):
    """An edit found inside a file is part of what is handed over: in items.json and in the report."""
    from custodes.store.db import EvidenceObject, Signal

    drive, _ = demo_drive
    case = Case.init(tmp_path / "case", "tester")
    Ingestor(case, "tester").run([drive])
    with case.sessions() as s:
        sha = sorted(x for (x,) in s.query(EvidenceObject.sha256).filter(EvidenceObject.kind == "file"))[0]
        s.add_all([Signal(sha256=sha, analyzer="scene cuts", version="cuts-2", kind="scene_cut", start_s=t, end_s=t,
                          value=1.0, data={"found_by": how}) for t, how in ((4.6, "frames"), (9.0, "keyframes"))])
        s.commit()
    export_package(case, tmp_path / "pkg", "clerk", items=[sha])
    item = json.loads((tmp_path / "pkg" / "items.json").read_text())[0]
    assert item["scene_cuts"] == [{"t_s": 4.6, "found_by": "frames", "analyzer_version": "cuts-2"},
                                  {"t_s": 9.0, "found_by": "keyframes", "analyzer_version": "cuts-2"}]
    report = (tmp_path / "pkg" / "report.html").read_text()
    assert "<li>4.6 s</li>" in report and "9.0 s (or in the seconds before" in report
    assert verify_package(tmp_path / "pkg").ok

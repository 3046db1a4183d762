"""Case packages: exported, copied elsewhere, verified offline; every alteration named."""

import json
import os
import re
import shutil
from pathlib import Path

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
    assert "Case report" in (pkg / "report.html").read_text()
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
    assert re.search(r"<li>[^<]*4\.6 s\)?</li>", report) and re.search(r"9\.0 s\)? \(or in the seconds before", report)
    assert verify_package(tmp_path / "pkg").ok


# -- forgery: what someone who handles the package can and cannot do ----------------------------------------------

def _append(p, actor, key, action, subject=None, details=None):
    from tests.store.test_ledger import signed_entry

    lines = (p / "ledger.jsonl").read_text().splitlines()
    line = signed_entry(lines[-1], actor, key, action, details or {})
    if subject:
        e = json.loads(line)
        e["subject"] = subject
        from custodes.store.ledger import canonical, entry_digest

        e["hash"] = entry_digest({k: v for k, v in e.items() if k not in ("hash", "sig")})
        import base64

        e["sig"] = base64.b64encode(key.sign(bytes.fromhex(e["hash"]))).decode()
        line = canonical(e).decode()
    (p / "ledger.jsonl").write_text("\n".join([*lines, line]) + "\n")


def _resign(p, actor, key):
    """Rehash every file into the manifest, point it at the ledger's last entry, sign it with ``key``."""
    import base64
    import hashlib

    from custodes.store.ledger import fingerprint

    m = json.loads((p / "manifest.json").read_text())
    m["files"] = {rel: hashlib.sha256((p / rel).read_bytes()).hexdigest()
                  for rel in sorted(x.relative_to(p).as_posix() for x in p.rglob("*") if x.is_file())
                  if rel not in ("manifest.json", "manifest.sig")}
    m["exporter"] = {"actor": actor, "key": fingerprint(key.public_key())}
    m["ledger_head"] = json.loads((p / "ledger.jsonl").read_text().splitlines()[-1])["hash"]
    mbytes = json.dumps(m, indent=2, sort_keys=True).encode() + b"\n"
    (p / "manifest.json").write_bytes(mbytes)
    (p / "manifest.sig").write_text(base64.b64encode(key.sign(mbytes)).decode() + "\n")


def _swap_first_original(p):
    originals = sorted((p / "originals").iterdir())
    victim, other = originals[0], originals[1]
    victim.write_bytes(other.read_bytes())  # other footage under the old SHA-256 name
    items = json.loads((p / "items.json").read_text())
    items[0]["names"] = ["CAM-01 nothing happened.mp4"]
    (p / "items.json").write_text(json.dumps(items))
    (p / "report.html").write_text("<p>nothing happened</p>")
    return victim


def test_forged_package_with_a_fresh_key_for_the_exporter_fails(package, tmp_path):
    """Finding 1, the recipe as reported: key.register for the exporter's name with a fresh key, an original
    replaced under its old name, items.json and the report rewritten, the manifest rehashed and re-signed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.store.test_ledger import registration

    p = fresh(package, tmp_path)
    victim = _swap_first_original(p)
    fake = Ed25519PrivateKey.generate()
    _append(p, "clerk", fake, "key.register", details=registration(fake))
    _resign(p, "clerk", fake)
    rep = verify_package(p)
    assert not rep.ok
    found = {(x.kind, x.where) for x in rep.problems}
    assert ("package.original", f"originals/{victim.name}") in found  # the content is not what its name says
    assert any(k == "ledger.key" for k, _ in found)  # a second key for 'clerk', vouched for by no one
    assert ("package.signature", "manifest.sig") in found  # so the manifest is signed by no valid key
    proc = run_cli("verify-package", str(p))
    assert proc.returncode == 1 and "package.original" in proc.stdout + proc.stderr


def test_forged_package_with_a_new_signer_and_a_forged_ingest_fails(package, tmp_path):
    """The variant: a new actor 'mallory' ingests the fake footage under its true hash and exports it."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.store.test_ledger import registration

    p = fresh(package, tmp_path)
    fake_bytes = b"\x00\x00\x00\x18ftypmp42 other footage"
    sha = hashlib.sha256(fake_bytes).hexdigest()
    (p / "originals" / f"{sha}.mp4").write_bytes(fake_bytes)
    m = json.loads((p / "manifest.json").read_text())
    m["items"] = [*m["items"], sha]
    (p / "manifest.json").write_text(json.dumps(m))
    items = json.loads((p / "items.json").read_text())
    (p / "items.json").write_text(json.dumps([*items, {"sha256": sha, "file": f"originals/{sha}.mp4"}]))
    key = Ed25519PrivateKey.generate()
    _append(p, "mallory", key, "key.register", details=registration(key))
    _append(p, "mallory", key, "ingest", sha, {"original_name": "CAM-09.mp4"})
    _append(p, "mallory", key, "export", details={"items": m["items"]})
    _resign(p, "mallory", key)
    found = kinds(verify_package(p))
    assert "ledger.key" in found and "package.signature" in found and "package.provenance" in found


def test_rebuilt_package_is_caught_by_the_values_sent_out_of_band(package, tmp_path):
    """A package rebuilt from nothing (a new case with its own case key) is internally sound: only the case key
    fingerprint or a ledger head sent separately tells it apart. Both are printed for the recipient to compare."""
    real = verify_package(package[0])
    assert real.ok and len(real.case_key) == 32 and real.exporter == "clerk" and len(real.ledger_head) == 64
    assert verify_package(package[0], expect_key=real.case_key, expect_head=real.ledger_head).ok
    assert verify_package(package[0], expect_key=real.exporter_key.upper()).ok
    other = Case.init(tmp_path / "forger", "forger")
    from custodes.store.db import EvidenceObject

    Ingestor(other, "forger").run([sorted((package[0] / "originals").iterdir())[1]])
    with other.sessions() as s:
        sha = s.query(EvidenceObject.sha256).scalar()
    export_package(other, tmp_path / "rebuilt", "forger", items=[sha])
    assert verify_package(tmp_path / "rebuilt").ok  # on its own terms
    rep = verify_package(tmp_path / "rebuilt", expect_key=real.case_key, expect_head=real.ledger_head)
    assert {"package.key", "ledger.head"} <= kinds(rep)
    out = run_cli("verify-package", str(tmp_path / "rebuilt"), "--expect-key", real.case_key)
    assert out.returncode == 1 and "package.key" in out.stderr
    shown = "".join(run_cli("verify-package", str(package[0])).stderr.split())
    assert real.case_key in shown and real.ledger_head in shown


def test_package_ledger_must_end_in_the_export_of_these_items(package, tmp_path):
    p = fresh(package, tmp_path)
    lines = (p / "ledger.jsonl").read_text().splitlines()
    (p / "ledger.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # the export event cut off
    m = json.loads((p / "manifest.json").read_text())
    assert "package.export" in kinds(verify_package(p)) and m["items"]


def test_report_is_built_from_the_package_only(tmp_path, demo_drive):
    """Finding 6: a planted reports/timeline.svg (a fake timeline, a script, a file:// link to the case's private
    key) and a hostile transcript language reach neither the HTML report nor the PDF."""
    from custodes.store.db import EvidenceObject, TranscriptSegment

    drive, _ = demo_drive
    case = Case.init(tmp_path / "case", "tester")
    Ingestor(case, "tester").run([drive])
    key_file = case.root / "keys" / "tester.ed25519"
    (case.reports / "timeline.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg"><text>FAKE TIMELINE</text><script>alert(1)</script>'
        f'<a href="file://{key_file}"><text>key</text></a></svg>')
    with case.sessions() as s:
        sha = sorted(x for (x,) in s.query(EvidenceObject.sha256).filter(EvidenceObject.kind == "file"))[0]
        s.add(TranscriptSegment(sha256=sha, start_s=0.0, end_s=1.0, language="<i>ru</i>", text="да",
                                avg_logprob=0.0, version="test"))
        s.commit()
    export_package(case, tmp_path / "pkg", "clerk", items=[sha])
    report = (tmp_path / "pkg" / "report.html").read_text()
    assert "FAKE TIMELINE" not in report and "<script>" not in report and "file://" not in report
    assert "language &lt;i&gt;ru&lt;/i&gt;" in report and "<i>ru</i>" not in report
    pdf = (tmp_path / "pkg" / "report.pdf").read_bytes()
    assert b"PRIVATE KEY" not in pdf and b"EmbeddedFile" not in pdf and b"FAKE" not in pdf


def test_report_pdf_fetches_nothing_but_embedded_data(tmp_path):
    from custodes.export.package import _write_pdf

    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER-123")
    html = (f'<html><body><p>x</p><a rel="attachment" href="file://{secret}">a</a>'
            f'<img src="file://{secret}"><link rel="stylesheet" href="file://{secret}"></body></html>')
    assert _write_pdf(html, tmp_path / "r.pdf") == ""
    pdf = (tmp_path / "r.pdf").read_bytes()
    assert b"EmbeddedFile" not in pdf and b"SECRET-MARKER-123" not in pdf  # WeasyPrint's own fetcher attaches it


@pytest.mark.parametrize("point", ["export.after_intent", "export.before_confirm"])
def test_export_killed_at_each_point_ends_with_one_confirmed_export(tmp_path, small_clip, point):
    """Finding 4 of issue 20: kill -9 between the export event and the finished package. The case says the export
    is unfinished; the rerun finishes it under the same event: one export, one confirmation, a valid package."""
    from custodes.store.verify import verify_case

    case = Case.init(tmp_path / "case", "tester")
    Ingestor(case, "tester").run([small_clip])
    out = tmp_path / "pkg"
    args = ("export", str(case.root), "--out", str(out), "--actor", "clerk")
    killed = run_cli(*args, env={"CUSTODES_FAULT": point})
    assert killed.returncode == -9
    assert "export.unfinished" in {w.kind for w in verify_case(Case(case.root)).warnings}
    run_cli(*args, check=True)
    entries = list(Case(case.root).ledger.entries())
    assert [e["action"] for e in entries].count("export") == 1
    assert [e["action"] for e in entries].count("export.done") == 1
    rep = verify_case(Case(case.root))
    assert rep.ok and "export.unfinished" not in {w.kind for w in rep.warnings}
    assert verify_package(out).ok
    assert not out.with_name("pkg.part").exists()


def test_links_and_non_files_in_a_package_are_named(package, tmp_path):
    """Footage added through a linked folder, a dangling link, a pipe: none is a file of the package."""
    p = fresh(package, tmp_path)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "EXTRA_cam03.mp4").write_bytes(b"more footage")
    (p / "originals_more").symlink_to(hidden)
    (p / "originals" / "dangling.mp4").symlink_to(tmp_path / "nonexistent")
    os.mkfifo(p / "fifo")
    found = {(x.kind, x.where) for x in verify_package(p).problems}
    assert {("package.extra", "originals_more"), ("package.extra", "originals/dangling.mp4"),
            ("package.extra", "fifo")} <= found


def test_a_genuine_package_of_a_file_named_with_a_line_separator_verifies(tmp_path, small_clip):
    case = Case.init(tmp_path / "case", "tester")
    odd = tmp_path / "cam\u2028x\u0085y.mp4"
    odd.write_bytes(small_clip.read_bytes())
    Ingestor(case, "tester").run([odd])
    export_package(case, tmp_path / "pkg", "clerk")
    rep = verify_package(tmp_path / "pkg")
    assert rep.ok, rep.problems


def test_demo_package_checks_with_sha256sum_alone_and_lists_every_original(package, tmp_path):
    """The demo case's package, on a machine that never saw the case: `sha256sum -c` alone passes, and the
    report's exhibit list prints every original's full SHA-256."""
    import subprocess

    p = fresh(package, tmp_path)
    proc = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=p, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(p / "report.pdf"), "-"], capture_output=True, text=True,
                              check=True).stdout
        words = set(text.split())
        assert set(json.loads((p / "manifest.json").read_text())["items"]) <= words
        assert not re.search(r"\bNone\b|\bnan\b|\d{2}:\d{2}:\d{2}\.\d+", text)
    if shutil.which("pdftoppm"):  # the demo package's report as page images, kept as test artefacts
        base = os.environ.get("CUSTODES_TEST_ARTEFACTS")
        pages = (Path(base) / "report-pages-demo") if base else tmp_path / "report-pages-demo"
        pages.mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "50", "-png", str(p / "report.pdf"), str(pages / "page")], check=True)
        assert list(pages.glob("page-*.png"))
        print(f"report page images: {pages}")

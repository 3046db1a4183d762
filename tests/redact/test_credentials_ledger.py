"""The case's C2PA CA in the signed ledger: issue and reissue are recorded, verify and verify-package catch a
swapped ca.pem, and a case made before these events verifies with a warning and is recorded on next use."""

import hashlib
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from custodes.export.package import export_package, verify_package
from custodes.ingest.pipeline import Ingestor
from custodes.redact.credentials import CA_EVENT, case_credentials
from custodes.redact.derive import redact_item
from custodes.redact.faces import RedactionError
from custodes.store.case import Case
from custodes.store.verify import verify_case
from tests.conftest import run_cli
from tests.redact.test_credentials import old_style_credentials


def sha(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def kinds(rep) -> set[str]:
    return {p.kind for p in rep.problems}


def ca_events(case: Case) -> list[dict]:
    return [e for e in case.ledger.entries() if e["action"] == CA_EVENT]


@pytest.fixture
def ingested(tmp_path, small_clip):
    case = Case.init(tmp_path / "case", "tester")
    Ingestor(case, "tester").run([small_clip])
    return case, hashlib.sha256(small_clip.read_bytes()).hexdigest()


def foreign_ca(tmp_path) -> bytes:
    """A CA certificate an attacker made, with the same names as the case's."""
    case_credentials(tmp_path / "attacker", "c-1")
    return (tmp_path / "attacker" / "c2pa" / "ca.pem").read_bytes()


def test_issue_is_recorded_and_a_swapped_ca_fails_verify(tmp_path, ingested):
    case, original = ingested
    c2pa = case.keyring.root / "c2pa"
    assert ca_events(case) == [] and not c2pa.exists()
    redact_item(case, original[:12], "editor", faces="blur", end_s=1.0)
    [ev] = ca_events(case)
    ca = x509.load_pem_x509_certificates((c2pa / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificates((c2pa / "signer-chain.pem").read_bytes())[0]
    assert [c["sha256"] for c in ev["details"]["ca"]] == [sha(c) for c in ca] and len(ca) == 1
    assert ev["details"]["ca"][0]["subject"] == ca[0].subject.rfc4514_string()
    ski = ca[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    assert ev["details"]["ca"][0]["ski"] == ski
    assert ev["details"]["signer"]["sha256"] == sha(leaf) and "retired" not in ev["details"]
    assert ev["key"] and ev["seq"] < next(e["seq"] for e in case.ledger.entries() if e["action"] == "redact")
    rep = verify_case(case)
    assert rep.ok, rep.problems
    assert not {w.kind for w in rep.warnings} & {"credentials.unrecorded", "credentials.altered"}

    good = (c2pa / "ca.pem").read_bytes()
    (c2pa / "ca.pem").write_bytes(foreign_ca(tmp_path))
    rep = verify_case(case)
    assert not rep.ok and kinds(rep) == {"credentials.altered"}
    assert f"ledger seq {ev['seq']}" in rep.problems[0].message
    proc = run_cli("verify", str(case.root))
    assert proc.returncode == 1 and "credentials.altered" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    # nothing is signed with certificates the ledger does not know
    with pytest.raises(RedactionError, match="differ from those ledger seq"):
        redact_item(case, original[:12], "editor", faces="solid", end_s=1.0)
    # one certificate appended to the trust list (an attacker's CA trusted alongside) is caught as well
    (c2pa / "ca.pem").write_bytes(good + foreign_ca(tmp_path))
    assert kinds(verify_case(case)) == {"credentials.altered"}
    (c2pa / "ca.pem").write_bytes(good)
    assert verify_case(case).ok
    # and the signer's chain
    chain = (c2pa / "signer-chain.pem").read_bytes()
    (c2pa / "signer-chain.pem").write_bytes((tmp_path / "attacker" / "c2pa" / "signer-chain.pem").read_bytes())
    assert kinds(verify_case(case)) == {"credentials.altered"}
    (c2pa / "signer-chain.pem").write_bytes(chain)
    assert verify_case(case).ok


def test_reissue_records_the_retired_ca(tmp_path, ingested):
    case, original = ingested
    c2pa = case.keyring.root / "c2pa"
    old_chain, _ = old_style_credentials(case.keyring.root, case.id)
    old_ca = x509.load_pem_x509_certificates(old_chain)[1]
    redact_item(case, original[:12], "editor", faces="blur", end_s=1.0)
    [ev] = ca_events(case)
    new_ca = x509.load_pem_x509_certificates((c2pa / "signer-chain.pem").read_bytes())[1]
    assert ev["details"]["retired"]["sha256"] == sha(old_ca)
    assert [c["sha256"] for c in ev["details"]["ca"]] == [sha(new_ca), sha(old_ca)]
    assert verify_case(case).ok
    [retired] = c2pa.glob("retired-*/ca.pem")
    kept = retired.read_bytes()
    retired.write_bytes(foreign_ca(tmp_path))
    rep = verify_case(case)
    assert kinds(rep) == {"credentials.altered"} and rep.problems[0].where == str(retired)
    retired.write_bytes(kept)
    assert verify_case(case).ok


def test_a_case_from_before_ca_events_warns_then_is_recorded_on_next_use(tmp_path, ingested):
    case, original = ingested
    c2pa = case.keyring.root / "c2pa"
    case_credentials(case.keyring.root, case.id)  # as an older Custodes did: certificates, no event
    rep = verify_case(case)
    assert rep.ok and "credentials.unrecorded" in {w.kind for w in rep.warnings}
    # even without an event, a ca.pem that is not the signer's CA is named
    good = (c2pa / "ca.pem").read_bytes()
    (c2pa / "ca.pem").write_bytes(foreign_ca(tmp_path))
    assert kinds(verify_case(case)) == {"credentials.altered"}
    with pytest.raises(RedactionError, match="not the CA of the derivative signer"):
        redact_item(case, original[:12], "editor", faces="blur", end_s=1.0)
    assert ca_events(case) == []  # a swapped file is never recorded as the case's
    (c2pa / "ca.pem").write_bytes(good)
    redact_item(case, original[:12], "editor", faces="blur", end_s=1.0)
    [ev] = ca_events(case)
    assert ev["details"]["recorded_late"] is True
    assert [c["sha256"] for c in ev["details"]["ca"]] == [sha(c) for c in x509.load_pem_x509_certificates(good)]
    rep = verify_case(case)
    assert rep.ok and "credentials.unrecorded" not in {w.kind for w in rep.warnings}
    (c2pa / "ca.pem").write_bytes(foreign_ca(tmp_path))
    assert kinds(verify_case(case)) == {"credentials.altered"}


def test_verify_package_catches_a_swapped_case_ca(tmp_path, ingested):
    case, original = ingested
    doc = redact_item(case, original[:12], "editor", faces="blur", end_s=1.0)
    pkg = tmp_path / "pkg"
    export_package(case, pkg, "editor", items=[doc["derivative"][:12]])
    ca = pkg / "credentials" / "case-ca.pem"
    assert ca.read_bytes() == (case.keyring.root / "c2pa" / "ca.pem").read_bytes()
    assert verify_package(pkg).ok
    bad = tmp_path / "bad"
    shutil.copytree(pkg, bad)
    (bad / "credentials" / "case-ca.pem").write_bytes(foreign_ca(tmp_path))
    rep = verify_package(bad)
    assert not rep.ok
    assert [(p.kind, p.where) for p in rep.problems] == [("package.altered", "credentials/case-ca.pem")]
    proc = run_cli("verify-package", str(bad))
    assert proc.returncode == 1 and "package.altered" in proc.stdout + proc.stderr


def test_kill_after_the_ca_event_is_unfinished_not_tampering_and_the_next_redaction_finishes(tmp_path, ingested):
    """kill -9 between the signed c2pa.ca event and the certificates put in place: verify warns (the recorded
    certificates lie whole in keys/c2pa/pending/), it does not report tampering; the next redaction issues anew."""
    case, original = ingested
    killed = run_cli("redact", str(case.root), original[:12], "--faces", "blur", "--json",
                     env={"CUSTODES_FAULT": "c2pa.issued"})
    assert killed.returncode == -9, killed.stderr
    c2pa = case.keyring.root / "c2pa"
    assert (c2pa / "pending" / "signer.key").is_file() and not (c2pa / "ca.pem").exists()
    rep = verify_case(Case(case.root))
    assert rep.ok, rep.problems
    assert "credentials.unfinished" in {w.kind for w in rep.warnings}
    # a pending/ that is not what the ledger recorded is no excuse: tampering is still named
    (c2pa / "pending" / "ca.pem").write_bytes(foreign_ca(tmp_path))
    assert "credentials.altered" in kinds(verify_case(Case(case.root)))
    done = run_cli("redact", str(case.root), original[:12], "--faces", "blur", "--json")
    assert done.returncode == 0, done.stderr
    assert not (c2pa / "pending").exists() and len(ca_events(Case(case.root))) == 2
    rep = verify_case(Case(case.root))
    assert rep.ok and not [w for w in rep.warnings if w.kind.startswith("credentials.")], (rep.problems, rep.warnings)

"""Content Credentials that readers other than c2pa-python accept.

Two strict readers that share no code with c2pa-rs: OpenSSL's ``verify -x509_strict`` for the certificates,
and c2pa-ts (TrustNXT's pure TypeScript C2PA implementation, installed from npm by ``make c2pa-reader``) for a
redacted derivative's manifest: signature, certificate, and the hash of the video data."""

import datetime
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from custodes.ingest.pipeline import Ingestor
from custodes.redact.credentials import (
    _ku,
    _name,
    _plain_pem,
    case_credentials,
    certificate_problems,
    read_credentials,
    sign_derivative,
)
from custodes.redact.derive import redact_item
from custodes.store.case import Case
from custodes.store.verify import verify_case

READER = Path(__file__).parent / "c2pa-ts"
NEEDS_READER = pytest.mark.skipif(
    shutil.which("node") is None or not (READER / "node_modules" / "@trustnxt" / "c2pa-ts").is_dir(),
    reason="the independent C2PA reader (c2pa-ts) is not installed: run `make c2pa-reader` (needs node and npm)")
NEEDS_OPENSSL = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def c2pa_ts(path: Path) -> dict:
    out = subprocess.run(["node", str(READER / "validate.mjs"), str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip(), out.stderr
    doc = json.loads(out.stdout)
    doc["codes"] = {s["code"]: s["success"] for s in doc.get("statuses", [])}
    return doc


def openssl_strict(chain: bytes, tmp: Path) -> subprocess.CompletedProcess:
    certs = x509.load_pem_x509_certificates(chain)
    (tmp / "leaf.pem").write_bytes(certs[0].public_bytes(serialization.Encoding.PEM))
    (tmp / "ca.pem").write_bytes(certs[1].public_bytes(serialization.Encoding.PEM))
    return subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "smimesign", "-CAfile",
                           str(tmp / "ca.pem"), str(tmp / "leaf.pem")], capture_output=True, text=True, timeout=60)


def old_style_credentials(keys_dir: Path, case_id: str) -> tuple[bytes, bytes]:
    """The certificates cases were given before: a CA without a Subject Key Identifier."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Custodes case CA", case_id))
          .issuer_name(_name("Custodes case CA", case_id)).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_ku(False), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("Custodes derivative signer", case_id))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_ku(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    d = keys_dir / "c2pa"
    d.mkdir(parents=True)
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "signer-chain.pem").write_bytes(chain)
    (d / "signer.key").write_bytes(_plain_pem(key))
    return chain, _plain_pem(key)


def sign_copy(src: Path, dst: Path, chain: bytes, key: bytes) -> None:
    with open(src, "rb") as original:
        sign_derivative(src, dst, original, hashlib.sha256(src.read_bytes()).hexdigest(), src.name,
                        [{"action": "c2pa.edited", "parameters": {"description": "faces blur"}}], chain, key, "t")


@pytest.mark.no_database
def test_case_certificates_have_what_a_strict_reader_requires(tmp_path):
    chain, _ = case_credentials(tmp_path / "keys", "c-1")
    assert certificate_problems(chain) == []
    leaf, ca = x509.load_pem_x509_certificates(chain)
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ca_ski.digest == x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # and the old certificates are named for what a strict reader rejects
    old, _ = old_style_credentials(tmp_path / "old", "c-1")
    assert any("subjectKeyIdentifier" in p for p in certificate_problems(old))


@NEEDS_OPENSSL
@pytest.mark.no_database
def test_openssl_strict_accepts_the_new_chain_and_rejects_the_old(tmp_path):
    chain, _ = case_credentials(tmp_path / "keys", "c-1")
    ok = openssl_strict(chain, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    old, _ = old_style_credentials(tmp_path / "old", "c-1")
    bad = openssl_strict(old, tmp_path)
    assert bad.returncode != 0 and "Subject Key Identifier" in bad.stdout + bad.stderr


@NEEDS_READER
@pytest.mark.slow
def test_independent_reader_accepts_a_redacted_derivative_and_catches_tampering(tmp_path, fight_surv):
    clip = tmp_path / "cctv.mp4"
    shutil.copyfile(fight_surv / "noFight" / "nofi020.mp4", clip)
    case = Case.init(tmp_path / "case", "tester")
    Ingestor(case, "tester").run([clip])
    original = hashlib.sha256(clip.read_bytes()).hexdigest()
    doc = redact_item(case, original[:12], "editor", faces="blur", end_s=1.0)
    derivative = case.store.path_for(doc["derivative"])
    leaf = x509.load_pem_x509_certificates((case.keyring.root / "c2pa" / "signer-chain.pem").read_bytes())[0]
    assert doc["signer_certificate_sha256"] == leaf.fingerprint(hashes.SHA256()).hex()
    got = c2pa_ts(derivative)
    assert got["format"] == "bmff" and got["manifests"] == 1
    assert got["valid"], got["statuses"]
    assert got["codes"].get("claimSignature.validated") is True
    assert got["codes"].get("assertion.bmffHash.match") is True  # the hash of the video data
    assert got["codes"].get("signingCredential.invalid") is None
    assert verify_case(case).ok  # verify still passes on the redacted case

    data = bytearray(derivative.read_bytes())
    mdat = data.find(b"mdat")
    assert mdat > 0
    for name, at in (("video", mdat + (len(data) - mdat) // 2), ("manifest", data.find(b"c2pa.actions") + 40)):
        tampered = bytearray(data)
        tampered[at] ^= 0x01  # one bit
        (tmp_path / f"{name}.mp4").write_bytes(tampered)
        bad = c2pa_ts(tmp_path / f"{name}.mp4")
        assert not bad["valid"], name
        failed = {c for c, ok in bad["codes"].items() if not ok}
        assert failed, (name, bad)
        if name == "video":
            assert "assertion.bmffHash.mismatch" in failed


@NEEDS_READER
@pytest.mark.no_database
def test_an_old_case_is_issued_new_certificates_and_old_manifests_stay_valid(tmp_path, fight_surv):
    keys = tmp_path / "keys"
    clip = fight_surv / "noFight" / "nofi020.mp4"
    old_chain, old_key = old_style_credentials(keys, "c-1")
    sign_copy(clip, tmp_path / "old-signed.mp4", old_chain, old_key)
    assert c2pa_ts(tmp_path / "old-signed.mp4")["codes"].get("signingCredential.invalid") is False  # the finding

    chain, key = case_credentials(keys, "c-1")
    assert chain != old_chain and certificate_problems(chain) == []
    retired = list((keys / "c2pa").glob("retired-*"))
    assert len(retired) == 1 and (retired[0] / "signer-chain.pem").read_bytes() == old_chain
    trusted = x509.load_pem_x509_certificates((keys / "c2pa" / "ca.pem").read_bytes())
    assert [c.subject for c in trusted] == [x509.load_pem_x509_certificates(chain)[1].subject] * 2
    assert trusted[1] == x509.load_pem_x509_certificates(old_chain)[1]  # the recipient's trust list keeps the old CA
    assert case_credentials(keys, "c-1") == (chain, key)  # issued once
    # the manifest signed before is untouched and still verifies (its chain travels inside it)
    before = read_credentials(tmp_path / "old-signed.mp4")
    assert before["validation_state"] == "Valid"
    sign_copy(clip, tmp_path / "new-signed.mp4", chain, key)
    assert c2pa_ts(tmp_path / "new-signed.mp4")["valid"]

"""Content Credentials (C2PA) on derivatives, signed offline with the case's own certificate.

Each case gets a small certificate authority and a signing certificate (ES256) in ``keys/c2pa/``
on first use; the private key never leaves the case folder (0600). Readers will report the
signature as *untrusted* until the recipient adds the case CA (``keys/c2pa/ca.pem``) to their
trust list — the manifest still proves what the file was made from and what was done to it.
The manifest names the original as a parent ingredient by its SHA-256 and lists the actions.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custodes import __version__


def _name(cn: str, case_id: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Custodes"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"case {case_id}")])


def _ku(sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not sign, crl_sign=not sign,
                         encipher_only=False, decipher_only=False)


def _plain_pem(key: Any) -> bytes:
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def case_credentials(keys_dir: Path, case_id: str, password: bytes | None = None) -> tuple[bytes, bytes]:
    """(certificate chain PEM, private key PEM) for signing this case's derivatives; made once.

    In an encrypted case the key file is encrypted PKCS#8; the plain PEM exists only in memory.
    """
    d = keys_dir / "c2pa"
    chain_p, key_p = d / "signer-chain.pem", d / "signer.key"
    if chain_p.exists() and key_p.exists():
        stored = serialization.load_pem_private_key(key_p.read_bytes(), password=password)
        return chain_p.read_bytes(), _plain_pem(stored)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    key_pem = _plain_pem(key)
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_p.write_bytes(chain)
    fd = os.open(key_p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    return chain, key_pem


def sign_derivative(unsigned: Path, signed: Path, original: BinaryIO, original_sha256: str, original_name: str,
                    actions: list[dict[str, Any]], chain: bytes, key_pem: bytes, title: str) -> None:
    import c2pa

    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=c2pa.C2paSigningAlg.ES256, sign_cert=chain,
                                                       private_key=key_pem, ta_url=None))
    manifest = {
        "claim_generator_info": [{"name": "custodes", "version": __version__}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.opened", "parameters": {"ingredientIds": ["original"]}}, *actions]}},
            {"label": "org.custodes.original", "data": {"sha256": original_sha256, "name": original_name}},
        ],
    }
    builder = c2pa.Builder(manifest)
    builder.add_ingredient({"title": original_name, "relationship": "parentOf", "label": "original",
                            "instance_id": f"sha256:{original_sha256}"}, "video/mp4", original)
    with open(unsigned, "rb") as src, open(signed, "w+b") as dst:
        builder.sign(signer, "video/mp4", src, dst)


def read_credentials(path: Path) -> dict[str, Any]:
    """The active manifest of a file, with the reader's validation state."""
    import c2pa

    reader = c2pa.Reader(str(path))
    doc = json.loads(reader.json())
    active = doc["manifests"][doc["active_manifest"]]
    return {"manifest": active, "validation_state": doc.get("validation_state"),
            "validation_status": doc.get("validation_status", [])}

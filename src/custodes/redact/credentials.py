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
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custodes import __version__
from custodes.store import faults


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


def certificate_problems(chain_pem: bytes) -> list[str]:
    """What a strict X.509 reader (RFC 5280, C2PA 2.1 section 14.5) would reject in a signer chain: leaf first,
    then its CA. Empty when the chain is fine."""
    certs = x509.load_pem_x509_certificates(chain_pem)
    if len(certs) < 2:
        return ["the chain holds no CA certificate"]
    leaf, ca = certs[0], certs[1]
    out = []

    def ext(cert: x509.Certificate, kind: Any) -> Any:
        try:
            return cert.extensions.get_extension_for_class(kind)
        except x509.ExtensionNotFound:
            return None

    bc, ku, ski = ext(ca, x509.BasicConstraints), ext(ca, x509.KeyUsage), ext(ca, x509.SubjectKeyIdentifier)
    if bc is None or not bc.critical or not bc.value.ca:
        out.append("CA: basicConstraints cA=TRUE, critical, is missing")
    if ku is None or not ku.critical or not ku.value.key_cert_sign:
        out.append("CA: keyUsage keyCertSign, critical, is missing")
    if ski is None:
        out.append("CA: subjectKeyIdentifier is missing (RFC 5280 4.2.1.2: required in every CA certificate)")
    elif ski.value.digest != x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest:
        out.append("CA: subjectKeyIdentifier is not its key's")
    bc, ku = ext(leaf, x509.BasicConstraints), ext(leaf, x509.KeyUsage)
    aki, eku = ext(leaf, x509.AuthorityKeyIdentifier), ext(leaf, x509.ExtendedKeyUsage)
    if bc is not None and bc.value.ca:
        out.append("signer: is a CA certificate")
    if ku is None or not ku.critical or not ku.value.digital_signature or ku.value.key_cert_sign:
        out.append("signer: keyUsage digitalSignature (only), critical, is missing")
    if eku is None or x509.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku.value or not (
            {ExtendedKeyUsageOID.EMAIL_PROTECTION, _DOCUMENT_SIGNING} & set(eku.value)):
        out.append("signer: extendedKeyUsage emailProtection or documentSigning (and not anyExtendedKeyUsage) "
                   "is missing")
    if ext(leaf, x509.SubjectKeyIdentifier) is None:
        out.append("signer: subjectKeyIdentifier is missing")
    if aki is None or (ski is not None and aki.value.key_identifier != ski.value.digest):
        out.append("signer: authorityKeyIdentifier is missing or is not its CA's key identifier")
    if leaf.issuer != ca.subject:
        out.append("signer: not issued by the CA that follows it")
    return out


def signer_fingerprint(chain_pem: bytes) -> str:
    """SHA-256 of the signing certificate (DER), as ``openssl x509 -fingerprint -sha256`` shows it."""
    return x509.load_pem_x509_certificates(chain_pem)[0].fingerprint(hashes.SHA256()).hex()


_DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning (RFC 9336)


CA_EVENT = "c2pa.ca"  # ledger action: the case's C2PA CA certificates (ca.pem) and signer, when issued


def certificate_record(cert: x509.Certificate) -> dict[str, str]:
    """What the ledger keeps of one certificate: its SHA-256 (DER), subject and subject key identifier."""
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except x509.ExtensionNotFound:
        ski = ""
    return {"sha256": cert.fingerprint(hashes.SHA256()).hex(), "subject": cert.subject.rfc4514_string(),
            "ski": ski, "serial": f"{cert.serial_number:x}"}


def credentials_record(keys_dir: Path) -> dict[str, Any] | None:
    """The ``c2pa.ca`` event details for the certificates now in ``keys/c2pa/``; None when there are none."""
    d = keys_dir / "c2pa"
    ca_p, chain_p = d / "ca.pem", d / "signer-chain.pem"
    if not ca_p.is_file() or not chain_p.is_file():
        return None
    return {"ca": [certificate_record(c) for c in x509.load_pem_x509_certificates(ca_p.read_bytes())],
            "signer": certificate_record(x509.load_pem_x509_certificates(chain_p.read_bytes())[0])}


def recorded_credentials(entries: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest ``c2pa.ca`` ledger event (entries in order), or None when the case has none."""
    last = None
    for e in entries:
        if e.get("action") == CA_EVENT:
            last = e
    return last


def credentials_problems(keys_dir: Path, event: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(where, sentence) for each way the C2PA certificates in ``keys/c2pa/`` differ from the ledger's latest
    ``c2pa.ca`` event. Without an event, only that ca.pem starts with the CA of the signer's chain."""
    return _problems(keys_dir / "c2pa", event)


def _problems(d: Path, event: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``credentials_problems`` of the certificates in folder ``d`` (keys/c2pa/, or its pending/)."""
    ca_p, chain_p = d / "ca.pem", d / "signer-chain.pem"
    out: list[tuple[str, str]] = []

    def certs(p: Path) -> list[x509.Certificate] | None:
        try:
            found = x509.load_pem_x509_certificates(p.read_bytes())
        except (OSError, ValueError):
            return None
        return found or None

    if event is None:
        ca, chain = certs(ca_p), certs(chain_p)
        if ca_p.exists() and chain_p.exists() and (ca is None or chain is None or ca[0] != chain[-1]):
            out.append((str(ca_p), "the case CA certificate (keys/c2pa/ca.pem) is not the CA of the derivative "
                                   "signer's chain: it was replaced or edited"))
        return out
    seq, want = event["seq"], event.get("details") or {}
    recorded = [c.get("sha256") for c in want.get("ca") or []]
    ca = certs(ca_p)
    if ca is None:
        out.append((str(ca_p), f"the case CA certificate (keys/c2pa/ca.pem) is missing or unreadable, but ledger "
                               f"seq {seq} recorded it"))
    elif [c.fingerprint(hashes.SHA256()).hex() for c in ca] != recorded:
        out.append((str(ca_p), f"the case CA certificates in keys/c2pa/ca.pem differ from those ledger seq {seq} "
                               "recorded: the file was replaced or edited"))
    chain = certs(chain_p)
    signer = (want.get("signer") or {}).get("sha256")
    if chain is None or chain[0].fingerprint(hashes.SHA256()).hex() != signer or \
            chain[-1].fingerprint(hashes.SHA256()).hex() not in recorded[:1]:
        out.append((str(chain_p), f"the derivative signer's chain (keys/c2pa/signer-chain.pem) is missing or differs "
                                  f"from the certificates ledger seq {seq} recorded: it was replaced or edited"))
    for r in sorted(d.glob("retired-*/ca.pem")):
        old = certs(r)
        if old is None or any(c.fingerprint(hashes.SHA256()).hex() not in recorded for c in old):
            out.append((str(r), f"the retired CA certificate {r.parent.name}/ca.pem is not one ledger seq {seq} "
                                "recorded: it was replaced or edited"))
    return out


def case_credentials(keys_dir: Path, case_id: str, password: bytes | None = None,
                     on_issue: Callable[[dict[str, Any]], None] | None = None) -> tuple[bytes, bytes]:
    """(certificate chain PEM, private key PEM) for signing this case's derivatives; made once.

    ``on_issue`` is called with the ``c2pa.ca`` ledger event details (each CA certificate of ca.pem and the
    signer's: SHA-256, subject, key identifier; for a reissue, the retired CA) when certificates are issued,
    once they are staged whole in ``keys/c2pa/pending/`` and before they are moved into place: a kill between
    leaves the recorded certificates there (``unfinished_issue``; verify warns), and the next use issues (and
    records) new ones.

    In an encrypted case the key file is encrypted PKCS#8; the plain PEM exists only in memory.

    Cases made before the certificates carried every extension a strict reader asks for (the CA had no
    subjectKeyIdentifier): their stored pair is retired, not changed — moved to ``keys/c2pa/retired-SERIAL/``,
    and a new CA and signer are issued for the derivatives made from now on. Derivatives signed before keep
    their manifests as they are: each manifest carries its own certificate chain, which still verifies its
    signature. ``ca.pem`` then holds the new CA followed by every retired one, so a recipient who trusts it
    trusts the derivatives of both.
    """
    d = keys_dir / "c2pa"
    chain_p, key_p = d / "signer-chain.pem", d / "signer.key"
    retired_record: dict[str, str] | None = None
    if chain_p.exists() and key_p.exists():
        if not certificate_problems(chain_p.read_bytes()):
            stored = serialization.load_pem_private_key(key_p.read_bytes(), password=password)
            return chain_p.read_bytes(), _plain_pem(stored)
        old = x509.load_pem_x509_certificates(chain_p.read_bytes())[-1]
        retired_record = certificate_record(old)
        retired = d / f"retired-{old.serial_number:x}"[:64]
        retired.mkdir(mode=0o700, exist_ok=True)
        for f in ("signer-chain.pem", "signer.key"):
            os.replace(d / f, retired / f)
        (retired / "ca.pem").write_bytes(old.public_bytes(serialization.Encoding.PEM))  # that CA alone
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(_name("Custodes case CA", case_id))
          .issuer_name(_name("Custodes case CA", case_id)).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_ku(False), critical=True)
          .add_extension(ca_ski, critical=False)
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("Custodes derivative signer", case_id))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_ku(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    key_pem = _plain_pem(key)
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    trusted = ca.public_bytes(serialization.Encoding.PEM) + b"".join(
        r.read_bytes() for r in sorted(d.glob("retired-*/ca.pem")))
    # Staged, recorded, then moved into place: a kill after the ledger event leaves the recorded certificates
    # whole in pending/ (verify warns `credentials.unfinished`, not tampering); the next use issues anew.
    pending = d / PENDING
    if pending.exists():
        shutil.rmtree(pending)
    pending.mkdir(mode=0o700)
    staged = {"ca.pem": trusted, "signer-chain.pem": chain,
              "signer.key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)}
    for name, data in staged.items():
        fd = os.open(pending / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fsync(fh.fileno())
    if on_issue is not None:
        on_issue({"ca": [certificate_record(c) for c in x509.load_pem_x509_certificates(trusted)],
                  "signer": certificate_record(cert),
                  **({"retired": retired_record} if retired_record else {}), "reason":
                  "reissued: the stored certificates lack what a strict reader requires" if retired_record
                  else "issued"})
    faults.point("c2pa.issued")  # kill -9 tests: the event signed, the certificates still in pending/
    for name in staged:  # the key last: a case with a key always has the chain it belongs to
        os.replace(pending / name, d / name)
    pending.rmdir()
    return chain, key_pem


PENDING = "pending"  # keys/c2pa/pending/: certificates being issued (case_credentials)


def unfinished_issue(keys_dir: Path, event: dict[str, Any] | None) -> bool:
    """Whether keys/c2pa/pending/ holds exactly the certificates the latest ``c2pa.ca`` event recorded: an
    issue killed after its event and before the move into place (the next redaction issues anew)."""
    pending = keys_dir / "c2pa" / PENDING
    return event is not None and pending.is_dir() and not _problems(pending, event)


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

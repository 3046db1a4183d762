"""Encryption of a case at rest: a seized case directory shows no footage, names, hashes or text,
while every Custodes command keeps working for someone who has the passphrase."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import zipfile
from pathlib import Path

import pytest

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case, CaseError
from custodes.store.crypto import (
    PLAIN_CHUNK,
    CaseKeys,
    CryptoError,
    DecryptingReader,
    EncryptingFile,
)
from custodes.store.verify import verify_case
from tests.conftest import run_cli
from tests.web.conftest import login

SECRET = "correct horse battery staple"


def _encrypt(tmp_path: Path, data: bytes, keys: CaseKeys, writes: int = 7) -> Path:
    p = tmp_path / "obj"
    with open(p, "wb") as raw:
        enc = EncryptingFile(raw, keys)
        cuts = sorted(random.Random(len(data)).sample(range(len(data) + 1), min(writes, len(data) + 1)))
        prev = 0
        for c in [*cuts, len(data)]:
            enc.write(data[prev:c])
            prev = c
        enc.finish(hashlib.sha256(data).hexdigest())
    return p


@pytest.mark.parametrize("size", [0, 1, PLAIN_CHUNK - 1, PLAIN_CHUNK, PLAIN_CHUNK + 1, 3 * PLAIN_CHUNK + 77])
def test_stream_round_trip_and_random_seeks(tmp_path, size):
    keys = CaseKeys(os.urandom(32))
    data = os.urandom(size)
    p = _encrypt(tmp_path, data, keys)
    with DecryptingReader(p, keys) as r:
        assert r.size == size and r.sha256 == hashlib.sha256(data).hexdigest()
        assert io.BufferedReader(r).read() == data
    rng = random.Random(size)
    with DecryptingReader(p, keys) as r:
        for _ in range(20):
            off = rng.randrange(size + 1)
            n = rng.randrange(1, PLAIN_CHUNK * 2)
            r.seek(off)
            got = bytearray()
            while len(got) < n and (chunk := r.read(n - len(got))):
                got += chunk
            assert bytes(got) == data[off:off + n]


def test_altered_truncated_or_foreign_ciphertext_is_refused(tmp_path):
    keys = CaseKeys(os.urandom(32))
    data = os.urandom(2 * PLAIN_CHUNK + 10)
    p = _encrypt(tmp_path, data, keys)
    good = p.read_bytes()

    def read_all(blob: bytes, k: CaseKeys = keys) -> bytes:
        p.write_bytes(blob)
        with DecryptingReader(p, k) as r:
            return io.BufferedReader(r).read()

    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 1
    with pytest.raises(CryptoError, match="fails authentication"):
        read_all(bytes(flipped))
    with pytest.raises(CryptoError):  # the last chunk cut off: the chunk before is not flagged last
        read_all(good[:-(10 + 16)])
    with pytest.raises(CryptoError, match="header"):
        read_all(good, CaseKeys(os.urandom(32)))
    assert read_all(good) == data


@pytest.fixture
def sealed_case(tmp_path, small_clip):
    src = tmp_path / "leak"
    src.mkdir()
    clip = src / "CAM07_beating_cell14.mp4"
    clip.write_bytes(small_clip.read_bytes())
    (src / "statement.txt").write_text("Witness statement of prisoner Ivanov about cell 14\n")
    with zipfile.ZipFile(src / "export.zip", "w") as zf:  # archives are unpacked through the decrypting reader
        zf.writestr("night/medical_report_Petrov.txt", "Medical report: fractures, bruising\n")
    case = Case.init(tmp_path / "case", "tester", title="Sealed case", secret=SECRET)
    rep = Ingestor(case, "tester").run([src])
    assert rep.objects_new == 4 and rep.archive_members == 1
    return case, clip


def test_nothing_readable_in_the_case_directory(sealed_case):
    case, clip = sealed_case
    data = clip.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    needles = [data[1000:1032], data[-64:-32], sha.encode(), b"CAM07_beating", b"Ivanov", b"statement.txt",
               b"Petrov", b"fractures",
               b"tester", b"SQLite format 3", b"PRIVATE KEY-----\nMII"]
    for f in case.root.rglob("*"):
        if f.is_file() and f.name != "case.json":
            blob = f.read_bytes()
            for n in needles:
                assert n not in blob, f"{n[:20]!r} readable in {f.relative_to(case.root)}"
    assert "Sealed case" in (case.root / "case.json").read_text()  # the title is the one thing in clear
    # ...and the case works for whoever has the passphrase:
    assert verify_case(case).ok
    probe = case.display_names()
    assert sorted(probe.values()) == ["CAM07_beating_cell14.mp4", "export.zip", "medical_report_Petrov.txt",
                                      "statement.txt"]
    with case.store.open(sha) as fh:
        assert fh.read() == data


def test_wrong_or_missing_passphrase_is_refused_and_alters_nothing(sealed_case, monkeypatch):
    case, _ = sealed_case
    before = {p: p.read_bytes() for p in case.root.rglob("*") if p.is_file()}
    with pytest.raises(CaseError, match="wrong passphrase"):
        Case(case.root, secret="not the passphrase")
    monkeypatch.delenv("CUSTODES_PASSPHRASE", raising=False)
    proc = run_cli("verify", str(case.root))
    assert proc.returncode != 0 and "encrypted" in proc.stderr
    proc = run_cli("verify", str(case.root), env={"CUSTODES_PASSPHRASE": "not the passphrase"})
    assert proc.returncode != 0 and "wrong passphrase" in proc.stderr
    assert before == {p: p.read_bytes() for p in case.root.rglob("*") if p.is_file()}
    proc = run_cli("verify", str(case.root), env={"CUSTODES_PASSPHRASE": SECRET})
    assert proc.returncode == 0, proc.stderr


def test_tampering_with_ciphertext_is_named_by_verify(sealed_case):
    case, clip = sealed_case
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    obj = case.store.path_for(sha)
    assert obj.name != sha[2:]  # named by a keyed hash, not the SHA-256
    os.chmod(obj, 0o644)
    blob = bytearray(obj.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    obj.write_bytes(bytes(blob))
    os.chmod(obj, 0o444)
    lines = case.ledger.path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2][:20] + (b"A" if lines[2][20:21] != b"A" else b"B") + lines[2][21:]
    case.ledger.path.write_bytes(b"".join(lines))
    rep = verify_case(Case(case.root, secret=SECRET))
    kinds = {(p.kind, p.where[:12]) for p in rep.problems}
    assert ("object.altered", sha[:12]) in kinds
    assert any(p.kind == "ledger.malformed" and p.where.startswith("line 3") for p in rep.problems)


def test_encrypted_case_triages_and_serves_ranges(sealed_case):
    from fastapi.testclient import TestClient

    from custodes.triage.runner import queue_rows, run_triage
    from custodes.web.app import create_app
    from custodes.web.users import add_user

    case, clip = sealed_case
    data = clip.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    rep = run_triage(case, "tester", workers=2)  # spawned workers get the keys, never the passphrase
    assert rep.analysed == 1 and not rep.failed
    assert queue_rows(case)["not_analysed"] == []
    add_user(case, "rita", "reviewer", SECRET, "tester")
    client = TestClient(create_app(case))
    r = login(client, "rita", SECRET)
    assert r.status_code in (302, 303)
    r = client.get(f"/media/{sha}", headers={"Range": "bytes=100-4195"})
    assert r.status_code == 206 and r.content == data[100:4196]
    assert client.get(f"/thumbs/{sha}.jpg?t=1").content[:2] == b"\xff\xd8"
    assert not (case.reports / "thumbs").exists()  # no plaintext pictures cached on disk


def test_cli_init_encrypt_ingest_and_rekey(tmp_path, small_clip):
    case_dir = tmp_path / "c"
    env = {"CUSTODES_PASSPHRASE": SECRET}
    proc = run_cli("init", str(case_dir), "--encrypt", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert '"encrypted": true' in proc.stdout
    assert run_cli("ingest", str(case_dir), str(small_clip), env=env).returncode == 0
    new = "another long passphrase"
    proc = run_cli("rekey", str(case_dir), env={**env, "CUSTODES_NEW_PASSPHRASE": new})
    assert proc.returncode == 0, proc.stderr
    assert "wrong passphrase" in run_cli("verify", str(case_dir), env=env).stderr
    proc = run_cli("verify", str(case_dir), "--json", env={"CUSTODES_PASSPHRASE": new})
    assert proc.returncode == 0 and '"objects_checked": 1' in proc.stdout
    assert "too short" in run_cli("init", str(tmp_path / "d"), "--encrypt",
                                  env={"CUSTODES_PASSPHRASE": "short"}).stderr


def test_redaction_and_package_from_an_encrypted_case(sealed_case, tmp_path):
    from custodes.export.package import export_package, verify_package
    from custodes.redact.derive import redact_item

    case, clip = sealed_case
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    doc = redact_item(case, sha[:12], "tester", faces="pixelate", audio="remove")
    with case.store.open(doc["derivative"]) as fh:
        derived = fh.read()
    assert derived[4:8] == b"ftyp"  # a real MP4 once decrypted...
    blob = case.store.path_for(doc["derivative"]).read_bytes()
    assert derived[:4096] not in blob and b"ftyp" not in blob[:64]  # ...stored as ciphertext
    assert not list(case.store.tmp_dir.iterdir())  # no plaintext temporaries left in the case
    key = (case.root / "keys" / "c2pa" / "signer.key").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key
    export_package(case, tmp_path / "pkg", "tester", items=[sha[:12]])
    assert verify_package(tmp_path / "pkg").ok  # the hand-over is plaintext, verifiable offline
    assert verify_case(case).ok


def test_encrypted_case_names_no_one_and_writes_no_plaintext_timeline(sealed_case):
    """Issue 20, finding 7: key files named by an HMAC, not by who worked on the case; `timeline` writes no
    plaintext plot (file names, cameras, times and gaps); the review app draws it in memory."""
    from fastapi.testclient import TestClient

    from custodes.web.app import create_app
    from custodes.web.users import add_user
    from tests.web.conftest import login

    case, _ = sealed_case
    add_user(case, "reviewer.anna", "reviewer", "correct horse battery", "tester")
    proc = run_cli("timeline", str(case.root), "--json", env={"CUSTODES_PASSPHRASE": SECRET})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["plot"] is None
    names = [f.name for f in case.root.rglob("*")]
    assert not any("tester" in n or "anna" in n or n.endswith(".svg") for n in names), names
    assert len(list((case.root / "keys").glob("*.ed25519"))) >= 2  # the keys are there, under hidden names
    c = TestClient(create_app(case), client=("127.0.0.1", 1))
    login(c, "reviewer.anna")
    svg = c.get("/reports/timeline.svg")
    assert svg.status_code == 200 and svg.text.startswith("<svg")
    assert not any(f.suffix == ".svg" for f in case.root.rglob("*"))
    assert verify_case(Case(case.root, secret=SECRET)).ok


def test_plaintext_temporary_of_a_killed_redaction_is_removed(sealed_case):
    """A redaction killed mid-way leaves its plaintext folder in /dev/shm; the next use of the case removes it."""
    import subprocess
    import sys

    case, _ = sealed_case
    scratch = case.scratch_dir()
    scratch.rmdir()
    base = scratch.parent
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    left = base / f"{child.pid}-killed"
    left.mkdir()
    (left / "redacted.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 plaintext footage")
    child.kill()
    child.wait()
    fresh = case.scratch_dir()
    assert not left.exists() and fresh.is_dir()
    fresh.rmdir()

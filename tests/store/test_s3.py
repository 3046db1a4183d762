"""Originals on S3-compatible storage with Object Lock: ingest uploads them write-once, every reader
(probe, triage, player, verify) reads them by ranges, and a replaced object is named by verify.

The S3 endpoint is moto's server (a real HTTP S3 API on loopback, with versioning and Object Lock
enforcement): the only S3-compatible server installable here. The same code talks to MinIO, Ceph RGW or AWS.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import zipfile

import pytest

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case, CaseError
from custodes.store.s3 import S3Location
from custodes.store.verify import verify_case
from tests.conftest import run_cli

moto_server = pytest.importorskip("moto.server")
CREDS = {"AWS_ACCESS_KEY_ID": "custodes-test", "AWS_SECRET_ACCESS_KEY": "custodes-test-secret",
         "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in CREDS}
    os.environ.update(CREDS)
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="evidence-locked", ObjectLockEnabledForBucket=True)
    client.create_bucket(Bucket="evidence-plain")
    yield endpoint, client
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def s3_case(tmp_path_factory, s3, small_clip):
    endpoint, _ = s3
    src = tmp_path_factory.mktemp("drive")
    (src / "CAM07.mp4").write_bytes(small_clip.read_bytes())
    with zipfile.ZipFile(src / "export.zip", "w") as zf:
        zf.writestr("notes/log.txt", "round at 02:00\n")
    loc = S3Location.parse("s3://evidence-locked/cases/b-block", endpoint, "us-east-1", "governance", 30)
    case = Case.init(tmp_path_factory.mktemp("s3case") / "case", "tester", objects=loc)
    rep = Ingestor(case, "tester").run([src])
    assert rep.objects_new == 3 and rep.archive_members == 1
    return case, small_clip.read_bytes()


def test_ingest_uploads_write_once_and_keeps_nothing_locally(s3, s3_case):
    _, client = s3
    case, data = s3_case
    sha = hashlib.sha256(data).hexdigest()
    key = f"cases/b-block/{sha[:2]}/{sha[2:]}"
    head = client.head_object(Bucket="evidence-locked", Key=key)
    assert head["ContentLength"] == len(data) and head["ObjectLockMode"] == "GOVERNANCE"
    assert not [p for p in (case.root / "objects").rglob("*") if p.is_file()]  # staging emptied
    version = client.list_object_versions(Bucket="evidence-locked", Prefix=key)["Versions"][0]["VersionId"]
    with pytest.raises(Exception, match="AccessDenied"):
        client.delete_object(Bucket="evidence-locked", Key=key, VersionId=version)
    rep = verify_case(case)
    assert rep.ok and rep.objects_checked == 3 and not rep.warnings
    with case.store.open(sha) as fh:
        fh.seek(1000)
        assert fh.read(5000) == data[1000:6000]


def test_analysis_and_player_read_by_ranges(s3_case):
    from fastapi.testclient import TestClient

    from custodes.triage.runner import run_triage
    from custodes.web.app import create_app
    from custodes.web.users import add_user
    from tests.web.conftest import login

    case, data = s3_case
    sha = hashlib.sha256(data).hexdigest()
    with case.sessions() as s:
        from custodes.store.db import MediaProbe

        assert s.get(MediaProbe, sha).duration_s > 5  # probed through the range reader
    rep = run_triage(case, "tester", workers=2)  # spawned workers read S3 with their own client
    assert rep.analysed == 1 and not rep.failed
    add_user(case, "rita", "reviewer", "correct horse battery", "tester")
    client = TestClient(create_app(case))
    login(client, "rita", "correct horse battery")
    r = client.get(f"/media/{sha}", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == data[:100]


def test_replaced_object_is_named_by_verify(s3, tmp_path, small_clip):
    endpoint, client = s3
    loc = S3Location.parse("s3://evidence-locked/cases/tamper", endpoint, "us-east-1", "governance", 30)
    case = Case.init(tmp_path / "c", "tester", objects=loc)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.mp4").write_bytes(small_clip.read_bytes())
    Ingestor(case, "tester").run([src])
    sha = hashlib.sha256(small_clip.read_bytes()).hexdigest()
    # versioning keeps the locked original; a new version on top is what readers would now get
    client.put_object(Bucket="evidence-locked", Key=f"cases/tamper/{sha[:2]}/{sha[2:]}", Body=b"swapped")
    rep = verify_case(case)
    assert [p.kind for p in rep.problems] == ["object.altered"]


def test_bucket_without_object_lock_is_refused(s3, tmp_path):
    endpoint, _ = s3
    loc = S3Location.parse("s3://evidence-plain/x", endpoint, "us-east-1")
    with pytest.raises(CaseError, match="no Object Lock"):
        Case.init(tmp_path / "c", "tester", objects=loc)
    assert not (tmp_path / "c").exists()  # a refused init leaves nothing behind
    proc = run_cli("init", str(tmp_path / "d"), "--objects", "s3://evidence-plain/x", "--s3-endpoint", endpoint,
                   "--lock-mode", "none", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["objects"]["lock_mode"] == ""


def test_redaction_and_case_package_from_s3(s3_case, tmp_path):
    from custodes.export.package import export_package, verify_package
    from custodes.redact.credentials import read_credentials
    from custodes.redact.derive import redact_item

    case, data = s3_case
    sha = hashlib.sha256(data).hexdigest()
    doc = redact_item(case, sha[:12], "tester", faces="blur", audio="remove")
    assert case.store.exists(doc["derivative"])  # the derivative went to the bucket too, locked
    copy = tmp_path / "redacted.mp4"
    with case.store.open(doc["derivative"]) as fh:
        copy.write_bytes(fh.read())
    cred = read_credentials(copy)
    assert json.dumps(cred["manifest"]).count(sha) >= 1  # the original named by its hash
    export_package(case, tmp_path / "pkg", "tester", items=[sha[:12]])
    assert verify_package(tmp_path / "pkg").ok
    assert (tmp_path / "pkg" / "originals").is_dir()

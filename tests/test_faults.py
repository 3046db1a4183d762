"""A full disk at ingest, triage, export and the ledger append: one sentence naming what failed and what to
do, nothing stored lost, and a re-run that ends where an uninterrupted run ends.

The case lives on a real, tiny file system (a tmpfs mounted for the test; CI runs as root) that the test
fills with a real file, so every write fails the way it fails on a laptop whose disk is full."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from custodes.media.synth import ClipSpec, write_clip
from tests.conftest import run_cli


class Disk:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Take all free space but ``leave`` bytes, with an ordinary file."""
        self.free()
        size = max(self.free_bytes() - leave, 0)
        with open(self.filler, "wb") as fh, contextlib.suppress(OSError):
            os.posix_fallocate(fh.fileno(), 0, size)
        if leave == 0:  # the last pages too
            try:
                with open(self.root / "filler-tail", "ab", buffering=0) as fh:
                    while True:
                        fh.write(b"\0" * 4096)
            except OSError:
                pass

    def free(self) -> None:
        for p in (self.filler, self.root / "filler-tail"):
            p.unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield Disk(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults") / "drive"
    d.mkdir()
    for i in range(3):
        write_clip(d / f"CAM0{i}.mp4", ClipSpec(f"CAM-0{i}", datetime(2026, 3, 14, 2, i * 10), 6, fps=10,
                                                size=(320, 180)))
    (d / "archive").mkdir()
    for i in range(3):
        (d / "archive" / f"dump{i}.bin").write_bytes(os.urandom(6 << 20))
    return d


def one_sentence(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    err = " ".join(proc.stderr.split())
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr and err.count("error:") == 1, proc.stderr
    for w in words:
        assert w in err, err
    return err


def state(case_dir: Path) -> tuple[object, ...]:
    """What must be identical to an uninterrupted run: items with their origins and probes, refusals, and
    one ingest event per provenance row."""
    items = json.loads(run_cli("items", str(case_dir), "--json", check=True).stdout)
    shape = sorted((i["sha256"], i["kind"], (i.get("media") or {}).get("status"),
                    tuple(sorted((c["source_path"], c["member_path"]) for c in i["copies"]))) for i in items)
    events = Counter()
    for line in (case_dir / "ledger.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["action"] == "ingest":
            events[e["details"]["provenance"]] += 1
    assert set(events.values()) == {1}, events
    return shape, len(events)


def verify_ok(case_dir: Path) -> dict:
    rep = json.loads(run_cli("verify", str(case_dir), "--json").stdout)
    assert rep["ok"], rep["problems"]
    return rep


@pytest.fixture(scope="module")
def reference(tmp_path_factory, drive):
    case_dir = tmp_path_factory.mktemp("reference") / "case"
    run_cli("init", str(case_dir), check=True)
    run_cli("ingest", str(case_dir), str(drive), check=True)
    return state(case_dir)


def test_disk_fills_during_ingest_then_the_rerun_finishes(disk, drive, reference):
    case_dir = disk.root / "case"
    run_cli("init", str(case_dir), check=True)
    disk.fill(leave=9 << 20)  # room for the clips and one dump, not for all three
    proc = run_cli("ingest", str(case_dir), str(drive))
    one_sentence(proc, "disk is full", "run the command again")
    assert not list((case_dir / "objects" / ".tmp").iterdir())  # the half copy is gone
    verify_ok(case_dir)  # what was stored is intact and accounted for
    before = json.loads(run_cli("items", str(case_dir), "--json", check=True).stdout)
    assert all(i["sha256"] for i in before)
    # no refusal was recorded for the files that did not fit: the disk was at fault, not the files
    refused = [e for e in map(json.loads, (case_dir / "ledger.jsonl").read_text().splitlines())
               if e["action"] == "ingest.refused"]
    assert refused == []
    disk.free()
    run_cli("ingest", str(case_dir), str(drive), check=True)
    assert state(case_dir) == reference
    verify_ok(case_dir)


def test_read_only_commands_work_on_a_full_disk(disk, drive):
    case_dir = disk.root / "case"
    run_cli("init", str(case_dir), check=True)
    run_cli("ingest", str(case_dir), str(drive / "CAM00.mp4"), check=True)
    disk.fill()
    assert disk.free_bytes() < 64 << 10
    verify_ok(case_dir)
    for args in (["items"], ["queue"], ["jobs"], ["ledger", "head"]):
        proc = run_cli(args[0], *args[1:], str(case_dir), "--json")
        assert proc.returncode == 0, (args, proc.stderr)
        json.loads(proc.stdout)
    one_sentence(run_cli("ingest", str(case_dir), str(drive / "CAM01.mp4")), "full")
    disk.free()
    verify_ok(case_dir)


def test_torn_ledger_append_then_every_command_works(disk, drive, reference):
    """A full disk tore the ledger's last line: ingest, `ledger show` and `ledger head` failed on every re-run."""
    case_dir = disk.root / "case"
    run_cli("init", str(case_dir), check=True)
    proc = run_cli("ingest", str(case_dir), str(drive), env={"CUSTODES_FAULT": "ledger.append:torn"})
    one_sentence(proc, "disk is full")
    assert not (case_dir / "ledger.jsonl").read_bytes().endswith(b"\n")  # the fault really tore a line
    for args in (["ledger", "head", str(case_dir)], ["ledger", "show", str(case_dir)]):
        p = run_cli(*args)
        assert p.returncode == 0, p.stderr
    rep = json.loads(run_cli("verify", str(case_dir), "--json").stdout)
    assert rep["ok"] and "ledger.torn" in {w["kind"] for w in rep["warnings"]}
    run_cli("ingest", str(case_dir), str(drive), check=True)
    assert state(case_dir) == reference
    rep = verify_ok(case_dir)
    assert "ledger.torn" not in {w["kind"] for w in rep["warnings"]}
    actions = [json.loads(line)["action"] for line in (case_dir / "ledger.jsonl").read_text().splitlines()]
    assert actions.count("ledger.repair") == 1


def test_disk_fills_during_triage_and_export(disk, drive, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("CAM00.mp4", "CAM01.mp4"):
        shutil.copy2(drive / name, clips / name)
    ref = tmp_path / "ref"
    run_cli("init", str(ref), check=True)
    run_cli("ingest", str(ref), str(clips), check=True)
    run_cli("triage", str(ref), "--workers", "1", check=True)
    want_queue = json.loads(run_cli("queue", str(ref), "--json", check=True).stdout)

    case_dir = disk.root / "case"
    run_cli("init", str(case_dir), check=True)
    run_cli("ingest", str(case_dir), str(clips), check=True)
    disk.fill()
    one_sentence(run_cli("triage", str(case_dir), "--workers", "1"), "full", "run the command again")
    disk.free()
    verify_ok(case_dir)
    run_cli("triage", str(case_dir), "--workers", "1", check=True)

    def shape(q):
        return [(r["sha256"], r.get("start_s"), r.get("end_s"), r.get("score")) for r in q["segments"]], \
            q["not_analysed"], q["partly_analysed"]

    assert shape(json.loads(run_cli("queue", str(case_dir), "--json", check=True).stdout)) == shape(want_queue)

    out = disk.root / "package"
    disk.fill()
    one_sentence(run_cli("export", str(case_dir), "--out", str(out)), "full")
    disk.free()
    run_cli("export", str(case_dir), "--out", str(out), check=True)
    pkg = json.loads(run_cli("verify-package", str(out), "--json").stdout)
    assert pkg["ok"], pkg
    actions = Counter(json.loads(line)["action"] for line in (case_dir / "ledger.jsonl").read_text().splitlines())
    assert actions["export"] == 1 and actions["export.done"] == 1  # no second export event
    verify_ok(case_dir)


def test_disk_fills_under_the_review_app(disk, drive):
    """Login and annotations on a full disk: one sentence (503), nothing half-saved; after space is freed the
    same annotation saves once."""
    import re

    from fastapi.testclient import TestClient

    from custodes.ingest.pipeline import Ingestor
    from custodes.store.case import Case
    from custodes.store.verify import verify_case
    from custodes.web.app import create_app
    from custodes.web.users import add_user

    case = Case.init(disk.root / "case", "tester")
    Ingestor(case, "tester").run([drive / "CAM00.mp4"])
    add_user(case, "rita", "reviewer", "correct horse battery", "tester")
    client = TestClient(create_app(case), client=("127.0.0.1", 50000))

    def login():
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        return client.post("/login", data={"username": "rita", "password": "correct horse battery",
                                           "csrf": csrf}, follow_redirects=False)

    disk.fill()
    r = login()
    assert r.status_code == 503 and "disk" in r.json()["detail"] and "Traceback" not in r.text
    disk.free()
    assert login().status_code == 303
    sha = client.get("/api/queue", params={"limit": 1000}).json()
    sha = sha[0]["sha256"] if sha else json.loads(run_cli("items", str(case.root), "--json").stdout)[0]["sha256"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/items/{sha}").text).group(1)
    form = {"label": "beating", "start_s": "1", "end_s": "3", "note": "on a full disk", "csrf": csrf}
    disk.fill()
    r = client.post(f"/items/{sha}/annotations", data=form, headers={"accept": "text/html"},
                    follow_redirects=False)
    assert r.status_code == 503 and "disk is full" in " ".join(r.text.split()) and "Traceback" not in r.text
    disk.free()
    assert client.get(f"/api/items/{sha}").json()["annotations"] == []  # nothing half-saved
    r = client.post(f"/items/{sha}/annotations", data=form, follow_redirects=False)
    assert r.status_code == 303
    assert [a["note"] for a in client.get(f"/api/items/{sha}").json()["annotations"]] == ["on a full disk"]
    annotate = [e for e in case.ledger.entries() if e["action"] == "annotate"]
    assert len(annotate) == 1
    rep = verify_case(case)
    assert rep.ok, rep.problems


@pytest.mark.skipif(not os.environ.get("CUSTODES_TEST_PG"), reason="needs the PostgreSQL test server")
def test_disk_fills_during_a_migration_to_postgresql(disk, drive):
    """The copy lands on the server, the case's own disk is full: one sentence, the case stays whole where it
    was, and the rerun takes its finished copy and switches, with one case.migrate event."""
    pg = os.environ["CUSTODES_TEST_PG"]
    case_dir = disk.root / "case"
    run_cli("init", str(case_dir), "--db", "sqlite", check=True)
    run_cli("ingest", str(case_dir), str(drive / "CAM00.mp4"), check=True)
    disk.fill()
    one_sentence(run_cli("migrate", str(case_dir), "--to", pg), "full")
    assert "db_url" not in json.loads((case_dir / "case.json").read_text())
    disk.free()
    verify_ok(case_dir)
    run_cli("migrate", str(case_dir), "--to", pg, check=True)
    assert "db_url" in json.loads((case_dir / "case.json").read_text())
    actions = Counter(json.loads(line)["action"] for line in (case_dir / "ledger.jsonl").read_text().splitlines())
    assert actions["case.migrate"] == 1
    verify_ok(case_dir)


def test_disk_fills_during_a_redaction(disk, drive):
    """Issue 20, finding 4: a full disk in the redaction window. One sentence; nothing half-made is left named;
    once space is freed the same redaction gives one derivative and one redact event."""
    case_dir = disk.root / "case"
    run_cli("init", str(case_dir), check=True)
    run_cli("ingest", str(case_dir), str(drive / "CAM00.mp4"), check=True)
    sha = json.loads(run_cli("items", str(case_dir), "--json", check=True).stdout)[0]["sha256"]
    disk.fill()
    one_sentence(run_cli("redact", str(case_dir), sha[:12], "--faces", "blur"), "full")
    disk.free()
    verify_ok(case_dir)
    run_cli("redact", str(case_dir), sha[:12], "--faces", "blur", check=True)
    run_cli("redact", str(case_dir), sha[:12], "--faces", "blur", check=True)  # asked again: the same copy
    actions = Counter(json.loads(line)["action"] for line in (case_dir / "ledger.jsonl").read_text().splitlines())
    assert actions["redact"] == 1
    items = json.loads(run_cli("items", str(case_dir), "--json", check=True).stdout)
    assert sum(i["kind"] == "derivative" for i in items) == 1
    verify_ok(case_dir)

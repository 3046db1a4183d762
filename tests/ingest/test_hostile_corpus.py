"""Issue 21, "Must show": every hostile input fixed one by one, together in one folder, ingested in one batch
through the real CLI. Nothing stops the batch; each bad item is refused or marked with a reason; each good one
is stored and probed ok; verify, timeline and complaints work on the case; a second ingest of the same folder
adds nothing; a later ingest of another clip into the same case works.

The corpus is built by the tests' own recipes (imported from the tests that prove each fix alone)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import py7zr
import pytest
from sqlalchemy import select

from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from custodes.store.db import MediaProbe, Provenance, Rejection
from tests.conftest import run_cli
from tests.ingest.test_hostile import nested_bomb
from tests.ingest.test_names import EVIL, _without_dac_override, zip_with_raw_names
from tests.media.test_hostile_media import _plain_clip, poison, write_big_video

LOCKED = "Камера 2 (закрыта)"
RAW_NAME = b"\xff\xfe\xd0clip.txt"
TAR_FILES = {"Камера 3/запись_2026-01-02.txt": b"tar member one", "ШИЗО/видеорегистратор №7.txt": b"tar member two"}
CP866_ZIP = [("Отдел/Камера 1/запись.txt".encode("cp866"), b"cp866 member", False), (b"plain.txt", b"ascii", False)]
FLAGGED_ZIP = [("Камера/запись.txt".encode("cp1251"), b"flagged one", True), (b"\xb0\xb1.bin", b"flagged two", True)]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _can_lock_out_root() -> bool:
    if os.geteuid() != 0:
        return True  # mode bits alone keep an ordinary user out
    try:
        subprocess.run(["true"], preexec_fn=_without_dac_override, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


PREEXEC = _without_dac_override if os.geteuid() == 0 else None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``tests.conftest.run_cli``, run without root's right to read any folder (test_names.py's recipe), so
    the locked folder is unreadable to the CLI as it is to anyone on a real drive."""
    if PREEXEC is None:
        return run_cli(*args)
    return subprocess.run([sys.executable, "-m", "custodes", *args], capture_output=True, text=True,
                          preexec_fn=PREEXEC, timeout=600)


def cli_json(*args: str) -> Any:
    proc = cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("corpus")
    drive = root / "drive"
    drive.mkdir()
    # -- good files
    good = [write_clip(drive / f"CAM0{i}_0001.mp4", ClipSpec(f"CAM-0{i}", datetime(2026, 1, 2, 3, 4 + i, 5), 3,
                                                             fps=10, size=(320, 180), seed=i)) for i in (3, 4)]
    (drive / "notes.txt").write_text("передано адвокатом 2026-01-05\n", encoding="utf-8")
    # -- names
    (drive / os.fsdecode(RAW_NAME)).write_bytes(b"a name that is not UTF-8")
    with tarfile.open(drive / "выгрузка_cp1251.tar", "w", encoding="cp1251", format=tarfile.GNU_FORMAT) as tf:
        for name, data in TAR_FILES.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    zip_with_raw_names(drive / "archive_cp866.zip", CP866_ZIP)
    zip_with_raw_names(drive / "flag_lies.zip", FLAGGED_ZIP)
    (drive / EVIL["title"]).write_bytes(b"not a video, a name that retitles the terminal")
    # -- archives
    (drive / "42.zip").write_bytes(nested_bomb(copies=8, levels=2, zeros=1 << 20))  # 512 MiB, ~40 KB on disk
    with py7zr.SevenZipFile(drive / "same_names.7z", "w") as z:
        z.writestr(b"first recording", "cam/clip.bin")
        z.writestr(b"second recording", "cam/clip.bin")
    (drive / "damaged.zip").write_bytes(b"PK\x03\x04garbage" * 10)
    # -- poison and absurd media
    (drive / "poisoned.mp4").write_bytes(poison(good[0].read_bytes()))
    write_big_video(drive / "huge_16000x9000.mp4")
    rng = np.random.default_rng(21)
    for name in ("noise.mp4", "noise.cdg"):
        (drive / name).write_bytes(rng.bytes(1500))
    far = _plain_clip(drive / "far_future.mp4", "9999-12-31T23:59:59Z")
    # -- a folder nobody may list
    locked = None
    if _can_lock_out_root():
        locked = drive / LOCKED
        locked.mkdir()
        (locked / "hidden.mp4").write_bytes(b"behind a folder nobody may list")
        locked.chmod(0)
    # -- a good clip that comes later, and a complaints register
    later = write_clip(root / "later" / "CAM05_0001.mp4",
                       ClipSpec("CAM-05", datetime(2026, 1, 2, 5, 0, 0), 3, fps=10, size=(320, 180), seed=5))
    register = root / "complaints.csv"
    with register.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["start", "end", "facility", "person", "text"],
                                  ["2026-01-02 03:07", "2026-01-02 03:08", "ИК-1", "А.", "избиение"]])
    yield {"drive": drive, "good": good, "far": far, "locked": locked, "later": later, "register": register}
    if locked is not None:
        locked.chmod(0o755)


def records(case: Case) -> tuple[Any, ...]:
    with case.sessions() as s:
        prov = sorted((p.source_path, p.member_path, p.sha256, p.raw_name) for p in s.scalars(select(Provenance)))
        rej = sorted((r.source_path, r.member_path, r.reason) for r in s.scalars(select(Rejection)))
        media = sorted((m.sha256, m.status, m.reason) for m in s.scalars(select(MediaProbe)))
    events = Counter(e["action"] for e in case.ledger.entries() if e["action"].startswith("ingest"))
    return prov, rej, media, events


@pytest.fixture(scope="module")
def ingested(corpus: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    case_dir = tmp_path_factory.mktemp("corpus-case") / "case"
    run_cli("init", str(case_dir), check=True)
    proc = cli("ingest", str(case_dir), str(corpus["drive"]), "--json")
    assert proc.returncode == 0, proc.stderr  # one batch, nothing stops it
    report = json.loads(proc.stdout)
    items = cli_json("items", str(case_dir))
    return {"case_dir": case_dir, "report": report, "items": items}


def by_copy(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(file name under the drive, member path) -> item."""
    return {(Path(c["source_path"]).name, c["member_path"]): it for it in items for c in it["copies"]}


def test_every_bad_item_is_refused_or_marked_with_a_reason(corpus, ingested):
    report = ingested["report"]
    refused = {(Path(r["source_path"]).name, r["member_path"]): r["reason"] for r in report["refused"]}
    # archives: the bomb stops where the source's one budget runs out; the damaged zip is kept and named
    assert "all nesting levels together" in refused.pop(("42.zip", next(k[1] for k in refused if k[0] == "42.zip")))
    assert "damaged" in refused.pop(("damaged.zip", ""))
    if corpus["locked"] is not None:
        assert refused.pop((LOCKED, "")).startswith("cannot read folder: Permission denied")
    assert refused == {}, refused  # nothing else refused: every other file is stored
    items = by_copy(ingested["items"])
    media = {k: (it["media"] or {}) for k, it in items.items()}
    # poison and absurd media: stored, and marked with one-sentence reasons
    assert media[("poisoned.mp4", "")]["status"] == "damaged"
    assert media[("poisoned.mp4", "")]["reason"].startswith("video stream 0 has no known codec")
    assert (media[("huge_16000x9000.mp4", "")]["status"], media[("huge_16000x9000.mp4", "")]["reason"]) == \
        ("unreadable", "frame size 16000×9000 beyond what the review tools decode; kept as stored")
    for noise in ("noise.mp4", "noise.cdg", EVIL["title"]):
        m = media[(noise, "")]
        assert m["status"] in ("not_media", "unreadable") and m["reason"] and "\n" not in m["reason"], (noise, m)
    # the bomb itself and the damaged zip are kept as evidence; the bomb's unpacking stayed within its budget
    assert items[("42.zip", "")]["kind"] == items[("damaged.zip", "")]["kind"] == "archive"
    store = ingested["case_dir"] / "objects"
    assert sum(p.stat().st_size for p in store.glob("??/*")) < 40_000_000
    assert list((store / ".tmp").iterdir()) == []
    # the hidden file behind the locked folder was never read
    assert not any(k[0] == "hidden.mp4" for k in items)
    assert report["media"]["damaged"] == 1 and report["media"]["ok"] == 3


def test_names_in_every_encoding_keep_a_readable_form_and_their_bytes(corpus, ingested):
    drive, items = corpus["drive"], ingested["items"]
    copies = {(c["source_path"], c["member_path"]): c for it in items for c in it["copies"]}
    case = Case(ingested["case_dir"])
    with case.sessions() as s:
        raw = {(p.source_path, p.member_path): p.raw_name for p in s.scalars(select(Provenance))}
    escaped = str(drive) + "/\\xff\\xfe\\xd0clip.txt"
    assert copies[(escaped, "")]["name"] == "\\xff\\xfe\\xd0clip.txt"
    assert bytes.fromhex(raw[(escaped, "")]) == os.fsencode(drive) + b"/" + RAW_NAME
    tar = str(drive / "выгрузка_cp1251.tar")
    for name in TAR_FILES:
        assert raw[(tar, name)] == name.encode("cp1251").hex()
    cp866 = str(drive / "archive_cp866.zip")
    assert raw[(cp866, "Отдел/Камера 1/запись.txt")] == CP866_ZIP[0][0].hex()
    assert copies[(cp866, "Отдел/Камера 1/запись.txt")]["name"] == "запись.txt"
    assert raw[(cp866, "plain.txt")] is None
    flagged = str(drive / "flag_lies.zip")
    assert raw[(flagged, "Камера/запись.txt")] == FLAGGED_ZIP[0][0].hex()
    assert raw[(flagged, "\\xb0\\xb1.bin")] == FLAGGED_ZIP[1][0].hex()
    sevenz = str(drive / "same_names.7z")
    contents = {}
    for member in ("cam/clip.bin", "cam/clip.bin [same name #2]"):
        it = next(i for i in items if any((c["source_path"], c["member_path"]) == (sevenz, member)
                                          for c in i["copies"]))
        with case.store.open(it["sha256"]) as fh:
            contents[member] = fh.read()
    assert contents == {"cam/clip.bin": b"first recording", "cam/clip.bin [same name #2]": b"second recording"}
    # JSON keeps the exact name; the human listing shows the escapes and sends none to the terminal
    assert (str(drive / EVIL["title"]), "") in copies
    shown = cli("items", str(ingested["case_dir"]))
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout


def test_every_good_file_is_stored_and_probed_ok(corpus, ingested):
    items = by_copy(ingested["items"])
    for clip in [*corpus["good"], corpus["far"]]:
        it = items[(clip.name, "")]
        assert it["sha256"] == sha(clip)
        assert it["media"]["status"] == "ok" and it["media"]["video_codec"] == "h264", it
    assert items[("CAM03_0001.mp4", "")]["media"]["width"] == 320
    notes = items[("notes.txt", "")]
    assert notes["sha256"] == sha(corpus["drive"] / "notes.txt") and notes["media"]["status"] == "not_media"
    case = Case(ingested["case_dir"])
    for it in ingested["items"]:  # every stored byte is the byte read
        assert case.store.rehash(it["sha256"]) == it["sha256"]


def test_verify_timeline_and_complaints_work_on_the_case(corpus, ingested):
    case_dir = str(ingested["case_dir"])
    rep = cli_json("verify", case_dir)
    assert rep["ok"], rep["problems"]
    prov, rej, _, events = records(Case(ingested["case_dir"]))
    assert events == {"ingest": len(prov), "ingest.refused": len(rej)}  # one event per row, none lost
    doc = cli_json("timeline", case_dir)
    placed = {r["sha256"] for c in doc["cameras"] for r in c["recordings"]}
    assert {sha(g) for g in corpus["good"]} <= placed
    unplaced = {u["sha256"]: u["reason"] for u in doc["unplaced"]}
    assert unplaced[sha(corpus["far"])].endswith("implausible creation time 9999-12-31T23:59:59Z ignored")
    assert sha(corpus["drive"] / "huge_16000x9000.mp4") not in placed
    cli_json("complaints", "import", case_dir, str(corpus["register"]))
    (row,) = cli_json("complaints", "list", case_dir)
    assert sha(corpus["far"]) not in {c["sha256"] for c in row["covered_by"]}
    assert sha(corpus["good"][0]) in {c["sha256"] for c in row["covered_by"]}  # CAM-03 03:07:05..03:07:08


def test_second_ingest_of_the_same_folder_adds_nothing(corpus, ingested):
    case = Case(ingested["case_dir"])
    before = records(case)
    again = cli_json("ingest", str(case.root), str(corpus["drive"]))
    assert again["objects_new"] == 0 and again["duplicates"] == 0 and again["bytes_read"] < 1_000_000
    assert records(case) == before  # no row, no ingest or refusal event, no probe added
    rep = cli_json("verify", str(case.root))
    assert rep["ok"], rep["problems"]


def test_another_clip_ingested_later_into_the_same_case(corpus, ingested):
    case = Case(ingested["case_dir"])
    prov, rej, media, events = records(case)
    late = cli_json("ingest", str(case.root), str(corpus["later"]))
    assert late["refused"] == [] and late["objects_new"] == 1 and late["media"] == {"ok": 1}
    prov2, rej2, media2, events2 = records(case)
    assert rej2 == rej and len(prov2) == len(prov) + 1
    assert [m[:2] for m in media2 if m not in media] == [(sha(corpus["later"]), "ok")]
    assert events2 == events + Counter({"ingest": 1})
    rep = cli_json("verify", str(case.root))
    assert rep["ok"], rep["problems"]

"""Names from a real Russian drive: not UTF-8, in legacy code pages, unreadable folders, terminal escapes.

Every name gets one readable form (the same on every run, so a re-run adds nothing) and keeps its bytes
where they are not that form's UTF-8; nothing stops, nothing is lost, ``verify`` stays OK.
"""

import ctypes
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from custodes.ingest.pipeline import Ingestor
from custodes.store import case as case_module
from custodes.store import seals
from custodes.store.db import Provenance, Rejection
from custodes.store.verify import verify_case
from tests.conftest import cli_json, run_cli


def records(case):
    with case.sessions() as s:
        prov = sorted((p.member_path or p.source_path, p.original_name, p.raw_name, p.sha256)
                      for p in s.scalars(select(Provenance)))
        rej = sorted((r.source_path, r.member_path, r.reason, r.raw_name) for r in s.scalars(select(Rejection)))
    events = Counter(e["action"] for e in case.ledger.entries() if e["action"].startswith("ingest"))
    return prov, rej, events


def ingest_twice(case, src):
    """Ingest, then again: the second run must find everything recorded and add nothing."""
    first = Ingestor(case, "tester").run([src])
    before = records(case)
    again = Ingestor(case, "tester").run([src])
    assert records(case) == before
    assert again.objects_new == 0 and again.duplicates == 0
    report = verify_case(case)
    assert report.ok, report.problems
    return first, before


def ingest_events(case):
    return [e["details"] for e in case.ledger.entries() if e["action"] == "ingest"]


def members(case):
    """member path -> (original name, raw name, bytes)."""
    with case.sessions() as s:
        rows = list(s.scalars(select(Provenance).where(Provenance.member_path != "")))
    return {p.member_path: (p.original_name, p.raw_name, content(case, p.sha256)) for p in rows}


def content(case, sha256):
    with case.store.open(sha256) as fh:
        return fh.read()


def test_file_name_not_utf8_is_escaped_and_its_bytes_kept(case, tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    raw = b"\xff\xfe\xd0clip.mp4"
    (drive / os.fsdecode(raw)).write_bytes(b"evidence")
    (drive / "plain.txt").write_bytes(b"plain")
    rep, _ = ingest_twice(case, drive)
    assert rep.refused == [] and rep.objects_new == 2
    with case.sessions() as s:
        row = s.scalars(select(Provenance).where(Provenance.original_name != "plain.txt")).one()
        plain = s.scalars(select(Provenance).where(Provenance.original_name == "plain.txt")).one()
    # shown stably, byte by byte; the bytes themselves are the provenance, in the row and its signed event
    assert row.source_path == str(drive) + "/\\xff\\xfe\\xd0clip.mp4"
    assert row.original_name == "\\xff\\xfe\\xd0clip.mp4"
    assert bytes.fromhex(row.raw_name) == os.fsencode(drive) + b"/" + raw
    event = next(d for d in ingest_events(case) if d["provenance"] == row.id)
    assert event["raw_name"] == row.raw_name and event["source_path"] == row.source_path
    assert plain.raw_name is None
    assert "raw_name" not in next(d for d in ingest_events(case) if d["provenance"] == plain.id)
    assert content(case, row.sha256) == b"evidence"


@pytest.mark.parametrize(("encoding", "fmt"), [("cp1251", tarfile.GNU_FORMAT), ("cp1251", tarfile.USTAR_FORMAT),
                                               ("cp866", tarfile.GNU_FORMAT), ("cp1251", tarfile.PAX_FORMAT)])
def test_tar_names_in_a_russian_code_page(case, tmp_path, encoding, fmt):
    """Russian Windows tools write tar names in cp1251 (some in cp866); a PAX header holds UTF-8."""
    tar = tmp_path / "выгрузка.tar"
    files = {"Камера 3/запись_2026-01-02.mp4": b"clip one", "ШИЗО/видеорегистратор №7.avi": b"clip two",
             "readme.txt": b"ascii"}
    with tarfile.open(tar, "w", encoding=encoding, format=fmt) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    rep, _ = ingest_twice(case, tar)
    assert rep.refused == [] and rep.archive_members == 3
    got = members(case)
    assert {k: v[2] for k, v in got.items()} == files
    assert got["Камера 3/запись_2026-01-02.mp4"][0] == "запись_2026-01-02.mp4"
    for name, (_, raw, _) in got.items():
        in_header = fmt != tarfile.PAX_FORMAT and not name.isascii()
        assert raw == (name.encode(encoding).hex() if in_header else None)


def zip_with_raw_names(path, entries):
    """A zip whose names are the given bytes, with or without the UTF-8 flag (bit 11), as Windows
    archivers write them. zipfile cannot write such names: it writes ASCII stand-ins of the same length,
    then the bytes and the flag are put into both headers of each member."""
    stand_ins = [f"~{i}~".ljust(len(raw), "~") for i, (raw, _, _) in enumerate(entries)]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for stand_in, (_, data, _) in zip(stand_ins, entries, strict=True):
            zf.writestr(stand_in, data)
    with zipfile.ZipFile(path) as zf:
        local = [i.header_offset for i in zf.infolist()]
        central = zf.start_dir
    buf = bytearray(path.read_bytes())

    def put(flag_at, name_at, raw, utf8):
        assert bytes(buf[name_at:name_at + len(raw)]).isascii()
        buf[name_at:name_at + len(raw)] = raw
        flags = int.from_bytes(buf[flag_at:flag_at + 2], "little") & ~0x800 | (0x800 if utf8 else 0)
        buf[flag_at:flag_at + 2] = flags.to_bytes(2, "little")

    for offset, (raw, _, utf8) in zip(local, entries, strict=True):
        put(offset + 6, offset + 30, raw, utf8)
    pos = central
    for raw, _, utf8 in entries:
        assert buf[pos:pos + 4] == b"PK\x01\x02"
        put(pos + 8, pos + 46, raw, utf8)
        n, e, c = (int.from_bytes(buf[pos + k:pos + k + 2], "little") for k in (28, 30, 32))
        pos += 46 + n + e + c
    path.write_bytes(bytes(buf))


def test_zip_from_russian_windows_without_utf8_flag_is_read_as_cp866(case, tmp_path):
    archive = tmp_path / "archive.zip"
    entries = [("Отдел/Камера 1/запись.mp4".encode("cp866"), b"cp866 name", False),
               ("видео_ОИК-1.avi".encode("cp1251"), b"cp1251 name", False),
               ("café.txt".encode("cp437"), b"neither: cp437, the zip default", False),
               (b"plain/ascii.txt", b"ascii", False),
               ("Протокол.pdf".encode(), b"utf-8, flagged", True)]
    zip_with_raw_names(archive, entries)
    with zipfile.ZipFile(archive) as zf:  # what Python alone shows
        assert zf.namelist()[0] == "ÄΓñÑ½/èá¼Ñαá 1/ºá»¿ß∞.mp4"
    rep, _ = ingest_twice(case, archive)
    assert rep.refused == []
    got = members(case)
    assert {k: (v[1], v[2]) for k, v in got.items()} == {
        "Отдел/Камера 1/запись.mp4": (entries[0][0].hex(), b"cp866 name"),
        "видео_ОИК-1.avi": (entries[1][0].hex(), b"cp1251 name"),
        "café.txt": (entries[2][0].hex(), b"neither: cp437, the zip default"),
        "plain/ascii.txt": (None, b"ascii"),
        "Протокол.pdf": (None, b"utf-8, flagged"),
    }
    assert got["Отдел/Камера 1/запись.mp4"][0] == "запись.mp4"
    assert {d["member_path"]: d.get("raw_name") for d in ingest_events(case) if d["member_path"]} == \
        {k: v[1] for k, v in got.items()}


def test_zip_utf8_flag_over_other_bytes_is_read_not_refused(case, tmp_path):
    """Some archivers set the UTF-8 flag over cp1251 bytes; zipfile then refuses the whole archive."""
    archive = tmp_path / "flagged.zip"
    entries = [("Камера/запись.mp4".encode("cp1251"), b"one", True),
               ("Протокол.pdf".encode(), b"two", True),
               (b"\xb0\xb1.bin", b"three", True)]
    zip_with_raw_names(archive, entries)
    with pytest.raises(UnicodeDecodeError):
        zipfile.ZipFile(archive)
    rep, _ = ingest_twice(case, archive)
    assert rep.refused == []
    assert {k: (v[1], v[2]) for k, v in members(case).items()} == {
        "Камера/запись.mp4": (entries[0][0].hex(), b"one"),
        "Протокол.pdf": (None, b"two"),
        "\\xb0\\xb1.bin": ("b0b12e62696e", b"three"),  # no code page reads it: the bytes, escaped
    }


def test_rows_without_raw_name_digest_as_before_the_column(case, tmp_path):
    """Seals written before migration 0013 digest rows without raw_name: such rows still match them."""
    (tmp_path / "a.txt").write_bytes(b"a")
    Ingestor(case, "tester").run([tmp_path / "a.txt"])
    with case.sessions() as s:
        row = s.scalars(select(Provenance)).one()
        old_columns = [c.key for c in inspect(Provenance).column_attrs if c.key != "raw_name"]
        before = json.dumps({c: seals._norm(getattr(row, c)) for c in old_columns}, sort_keys=True, default=str,
                            ensure_ascii=False)
        assert seals.row_text(Provenance, row) == before
        row.raw_name = "ff"
        assert '"raw_name": "ff"' in seals.row_text(Provenance, row)
        s.rollback()


def test_migration_0013_down_and_up_keeps_the_case_verifying(case, tmp_path):
    tar = tmp_path / "a.tar"
    with tarfile.open(tar, "w", encoding="cp1251", format=tarfile.GNU_FORMAT) as tf:
        ti = tarfile.TarInfo("Камера.txt")
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"x"))
    (tmp_path / "plain.txt").write_bytes(b"plain")
    Ingestor(case, "tester").run([tmp_path / "plain.txt"])
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(case_module.__file__).parent / "migrations"))
    with case.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    assert case.schema_revision() == "0012"
    case.ensure_schema()
    assert case.schema_revision() == max(case_module.known_revisions())
    Ingestor(case, "tester").run([tar])
    report = verify_case(case)
    assert report.ok, report.problems


def _without_dac_override():
    """Root reads any folder: drop the capabilities that let it (the kernel then checks the mode bits)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, from the bounding set: gone after exec
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_folder_is_refused_by_name(case, tmp_path):
    drive = tmp_path / "drive"
    locked = drive / "Камера 2"
    locked.mkdir(parents=True)
    (drive / "ok.txt").write_bytes(b"readable")
    (locked / "hidden.mp4").write_bytes(b"behind a folder nobody may list")
    preexec = None
    if os.geteuid() == 0:
        try:
            subprocess.run(["true"], preexec_fn=_without_dac_override, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot drop root's right to read any folder here: {exc}")
        preexec = _without_dac_override
    locked.chmod(0)
    try:
        for _ in range(2):  # and again: the same refusal, nothing added
            proc = subprocess.run([sys.executable, "-m", "custodes", "ingest", str(case.root), str(drive), "--json"],
                                  capture_output=True, text=True, preexec_fn=preexec, timeout=300)
            assert proc.returncode == 0, proc.stderr
            refused = json.loads(proc.stdout)["refused"]
            assert refused == [{"source_path": str(locked), "member_path": "", "reason":
                                "cannot read folder: Permission denied; none of its files were ingested — copy it "
                                "with sufficient rights and ingest again"}]
    finally:
        locked.chmod(0o755)
    prov, rej, events = records(case)
    assert [p[0] for p in prov] == [str(drive / "ok.txt")]
    assert [(r[0], r[2][:30]) for r in rej] == [(str(locked), "cannot read folder: Permission")]
    assert events == {"ingest": 1, "ingest.refused": 1}
    report = verify_case(case)
    assert report.ok, report.problems


EVIL = {"title": "\x1b]0;pwned\x07evil.mp4", "clear": "\x1b[2Jclear.mp4", "bidi": "report\u202egpj.exe",
        "c1": "csi\x9b31mred.mp4"}


def test_terminal_escapes_in_names_are_shown_escaped(case, tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    for key, name in EVIL.items():
        (drive / name).write_bytes(f"not a video {key}".encode())
    (drive / ("link\x1b[2J")).symlink_to("/etc/\x1b]0;x\x07passwd")
    env = {"COLUMNS": "400", "TERM": "xterm-256color"}
    outputs = [run_cli("ingest", str(case.root), str(drive), env=env, check=True),
               run_cli("items", str(case.root), env=env, check=True),
               run_cli("ledger", "show", str(case.root), env=env, check=True),
               run_cli("verify", str(case.root), env=env, check=True)]
    shown = "".join(p.stdout + p.stderr for p in outputs)
    for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert bad not in shown
    for escaped in ("\\x1b]0;pwned\\x07evil.mp4", "\\x1b[2Jclear.mp4", "report\\u202egpj.exe", "csi\\x9b31mred.mp4"):
        assert escaped in outputs[1].stdout  # items lists every name
    assert "link\\x1b[2J" in outputs[0].stderr  # the refused link, named
    # JSON keeps the exact names
    names = {c["name"] for item in cli_json("items", str(case.root)) for c in item["copies"]}
    assert names == set(EVIL.values())

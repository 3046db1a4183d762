"""The complaints import is strict (a register is evidence): repeated columns, rows wider than the header, formats
that cannot be right and UTC offsets are refused with a sentence; a window past midnight ends the next day; and
recovery still reads a register the way it was read when imported."""

import json
import os
from datetime import datetime

import pytest

from custodes.store.recover import recover_case
from custodes.timeline.complaints import ComplaintsError, import_csv, parse_rows
from tests.conftest import run_cli


def _refused(res) -> str:
    assert res.returncode == 1 and "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    return " ".join(res.stderr.split())


@pytest.mark.no_database
def test_a_repeated_column_is_refused_naming_it():
    data = b"ref,start,end,Start \nF,2026-03-01 10:00,2026-03-01 10:05,1999-01-01 00:00\n"
    with pytest.raises(ComplaintsError, match=r"column 'start' more than once \(columns 2, 4\); nothing imported"):
        parse_rows(data, strict=True)
    assert len(parse_rows(b"ref,start,end,,\nF,2026-03-01 10:00,2026-03-01 10:05,,\n", strict=True)) == 1


@pytest.mark.no_database
def test_rows_with_more_fields_than_the_header_are_refused_naming_the_lines():
    data = (b"ref,start,end\nG,2026-03-01 10:00,2026-03-01 10:05\nH,2026-03-01 10:00,2026-03-01 10:05,extra\n"
            b"I,2026-03-01 11:00,2026-03-01 11:05,,\nJ,2026-03-01 10:00,2026-03-01 10:05,x,y\n")
    with pytest.raises(ComplaintsError, match=r"more fields than the header has columns on line\(s\) 3, 5;"):
        parse_rows(data, strict=True)
    # empty fields past the end (a spreadsheet's trailing separators) lose nothing
    assert len(parse_rows(data.replace(b",extra", b"").replace(b",x,y", b""), strict=True)) == 4


@pytest.mark.no_database
def test_a_window_past_midnight_ends_the_next_day():
    (row,) = parse_rows(b"ref;date;from;to\nB;14.03.2026;23:50;00:10\n", strict=True)
    assert (row["start"], row["end"]) == (datetime(2026, 3, 14, 23, 50), datetime(2026, 3, 15, 0, 10))
    # with start and end written out, an end before the start is still an error
    with pytest.raises(ComplaintsError, match="line 2: end is before start"):
        parse_rows(b"start,end\n2026-03-14 23:50,2026-03-14 00:10\n", strict=True)


@pytest.mark.no_database
def test_formats_that_cannot_be_right_are_refused():
    data = b"start,end\n2026-03-01 10:00+0300,2026-03-01 10:05+0300\n"
    for fmt in ("%Y-%m-%d %H:%M%z", "%Y-%m-%d %H:%M %Z"):
        with pytest.raises(ComplaintsError, match="has a UTC offset"):
            parse_rows(data, fmt, strict=True)
    # read without the checks (recovery), an offset still gives a sentence, never a TypeError
    with pytest.raises(ComplaintsError, match="line 2: date/time .* has a UTC offset"):
        parse_rows(data, "%Y-%m-%d %H:%M%z")
    with pytest.raises(ComplaintsError, match=r"'%Q' is not a pattern that can be read"):
        parse_rows(b"start,end\n2026-03-01 10:00,2026-03-01 10:05\n", "%Q", strict=True)
    with pytest.raises(ComplaintsError, match="does not read dates back as written"):
        parse_rows(b"start,end\n14/03/2026 02:00,14/03/2026 02:05\n", "%d/%m/%Y %I:%M", strict=True)
    assert parse_rows(b"start,end\n14/03/2026 02:00 PM,14/03/2026 02:05 PM\n", "%d/%m/%Y %I:%M %p",
                      strict=True)[0]["start"] == datetime(2026, 3, 14, 14, 0)
    assert parse_rows(b"start,end\n03/04/26 10:00,03/04/26 10:05\n", "MM/DD/YY", strict=True)[0]["start"] \
        == datetime(2026, 3, 4, 10, 0)


def test_cli_refuses_with_one_sentence_and_records_nothing(tmp_path, case):
    before = len(list(case.ledger.entries()))
    dup = tmp_path / "dup.csv"
    dup.write_text("ref,start,end,start\nF,2026-03-01 10:00,2026-03-01 10:05,1999-01-01 00:00\n")
    assert "column 'start' more than once" in _refused(run_cli("complaints", "import", str(case.root), str(dup)))
    extra = tmp_path / "extra.csv"
    extra.write_text("ref,start,end\nG,2026-03-01 10:00,2026-03-01 10:05,extra,extra2\n")
    assert "on line(s) 2" in _refused(run_cli("complaints", "import", str(case.root), str(extra)))
    aware = tmp_path / "z.csv"
    aware.write_text("ref,start,end\nA,2026-03-01 10:00+0300,2026-03-01 10:05+0300\n")
    assert "UTC offset" in _refused(run_cli("complaints", "import", str(case.root), str(aware),
                                            "--date-format", "%Y-%m-%d %H:%M%z"))
    # the format is refused before the file is read: a missing file is not what the sentence is about
    err = _refused(run_cli("complaints", "import", str(case.root), str(tmp_path / "absent.csv"),
                           "--date-format", "%Q"))
    assert "'%Q' is not a pattern" in err
    assert len(list(case.ledger.entries())) == before
    with pytest.raises(ComplaintsError, match="not a pattern"):
        import_csv(case, tmp_path / "absent.csv", "tester", "%Q")


@pytest.mark.skipif(bool(os.environ.get("CUSTODES_DB")), reason="recovery rebuilds the SQLite file inside the case")
def test_recover_reads_registers_as_they_were_imported(tmp_path, case):
    night = tmp_path / "night.csv"
    night.write_text("ref;date;from;to\nB;14.03.2026;23:50;00:10\n")
    assert import_csv(case, night, "tester")["imported"] == 1
    # a register imported before the import was strict (a repeated column, where the last one was read, and a
    # --date-format strptime cannot read, where the ISO dates were read): recovery rebuilds it as it was read
    old = tmp_path / "old.csv"
    old.write_text("ref,start,end,start\nF,2026-03-01 10:00,2026-03-01 10:05,2026-03-01 10:01\n")
    stored = case.store.put_file(old)
    case.ledger.append("tester", "complaints.import", stored.sha256,
                       {"file": str(old), "rows": 1, "size": stored.size, "date_format": "%Q"})
    rep = recover_case(case.root, "tester", force=True)
    assert rep.rebuilt["complaints"] == 2
    got = {r["ref"]: (r["start"], r["end"]) for r in
           json.loads(run_cli("complaints", "list", str(case.root), "--json").stdout)}
    assert got == {"B": ("2026-03-14T23:50:00", "2026-03-15T00:10:00"),
                   "F": ("2026-03-01T10:01:00", "2026-03-01T10:05:00")}

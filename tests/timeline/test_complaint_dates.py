"""The complaints register: dates that read two ways are refused unless a format is given; ; and tab separate."""

from datetime import datetime

import pytest

from custodes.timeline.complaints import LEGACY, ComplaintsError, parse_rows
from tests.conftest import run_cli


@pytest.mark.no_database
def test_ambiguous_slash_dates_are_refused_unless_a_format_is_given():
    data = b"start,end,text\n03/04/2012 10:00,03/04/2012 10:05,x\n"
    with pytest.raises(ComplaintsError, match=r"ambiguous dates.*3 April or 4 March.*--date-format"):
        parse_rows(data)
    assert parse_rows(data, "DD/MM/YYYY")[0]["start"] == datetime(2012, 4, 3, 10, 0)
    assert parse_rows(data, "MM/DD/YYYY")[0]["start"] == datetime(2012, 3, 4, 10, 0)
    assert parse_rows(data, "%m/%d/%Y %H:%M")[0]["end"] == datetime(2012, 3, 4, 10, 5)
    assert parse_rows(data, LEGACY)[0]["start"] == datetime(2012, 4, 3, 10, 0)  # how old imports were read
    with pytest.raises(ComplaintsError, match="--date-format 'sometimes'"):
        parse_rows(data, "sometimes")


@pytest.mark.no_database
def test_the_file_itself_can_settle_the_order():
    day_first = b"start,end,text\n03/04/2012 10:00,03/04/2012 10:05,x\n25/04/2012 10:00,25/04/2012 11:00,y\n"
    assert parse_rows(day_first)[0]["start"] == datetime(2012, 4, 3, 10, 0)
    month_first = b"start,end,text\n03/04/2012 10:00,03/04/2012 10:05,x\n04/25/2012 10:00,04/25/2012 11:00,y\n"
    assert parse_rows(month_first)[0]["start"] == datetime(2012, 3, 4, 10, 0)
    both = b"start,end,text\n25/04/2012 10:00,25/04/2012 10:05,x\n04/25/2012 10:00,04/25/2012 11:00,y\n"
    with pytest.raises(ComplaintsError, match="both day first and month first"):
        parse_rows(both)
    # ISO and dotted dates were never ambiguous
    assert parse_rows(b"start,end\n2012-03-04 10:00,14.03.2012 10:00\n")[0]["end"] == datetime(2012, 3, 14, 10, 0)


@pytest.mark.no_database
def test_semicolon_and_tab_separated_files():
    semi = "ref;start;end;unit;text\nK-1;14.03.2026 02:00;14.03.2026 02:05;B;Geschlagen, getreten – Zelle 4\n".encode()
    (row,) = parse_rows(semi)
    assert row["ref"] == "K-1" and row["unit"] == "B" and row["text"] == "Geschlagen, getreten – Zelle 4"
    (row,) = parse_rows(b"start\tend\ttext\n2026-03-14 02:00\t2026-03-14 02:05\ta, b; c\n")
    assert row["text"] == "a, b; c" and row["end"] == datetime(2026, 3, 14, 2, 5)


def test_cli_refuses_then_imports_with_a_date_format(tmp_path, case):
    reg = tmp_path / "register.csv"
    reg.write_text("ref;start;end;text\nK-7;03/04/2026 10:00;03/04/2026 10:30;x\n")
    before = len(list(case.ledger.entries()))
    res = run_cli("complaints", "import", str(case.root), str(reg))
    assert res.returncode == 1 and "ambiguous" in res.stderr and "Traceback" not in res.stderr
    assert len(list(case.ledger.entries())) == before
    res = run_cli("complaints", "import", str(case.root), str(reg), "--date-format", "MM/DD/YYYY", "--json")
    assert res.returncode == 0, res.stderr
    rows = run_cli("complaints", "list", str(case.root), "--json").stdout
    assert '"start": "2026-03-04T10:00:00"' in rows
    event = [e for e in case.ledger.entries() if e["action"] == "complaints.import"][-1]
    assert event["details"]["date_format"] == "MM/DD/YYYY"  # recover reads the register the same way

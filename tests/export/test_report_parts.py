"""The report's formatting parts, without a case: nothing prints None/nan/microseconds, custody in words."""

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from custodes.export import report

pytestmark = pytest.mark.no_database


def test_values_never_print_none_nan_or_microseconds():
    assert report.text(None) == "—" and report.text(float("nan")) == "—" and report.text("None") == "—"
    assert report.text(" CAM-07 ") == "CAM-07"
    assert report.offset(75.6) == "1:16" and report.offset(3725) == "1:02:05" and report.offset(math.inf) == "—"
    assert report.duration(0) == "—" and report.duration(None) == "—" and report.duration(20.04) == "0:20"
    assert report.moment("2026-03-14T02:00:00.123456Z", UTC) == "2026-03-14 02:00:00 UTC"
    assert report.moment("2026-03-14T02:00:00.5+00:00", ZoneInfo("Europe/Moscow")) == "2026-03-14 05:00:00 MSK"
    assert report.moment(None, UTC) == "—"
    start = datetime(2026, 3, 14, 2, 0, 0)
    assert report.span(1.25, 4.9, start) == "02:00:01–02:00:04 (0:01–0:05)"
    assert report.confidence(-0.2) == "82 %" and report.confidence(None) == "—" and report.confidence(math.nan) == "—"


def test_people_with_roles_in_the_report_language():
    ps = [{"pseudonym": "P-5", "role": "victim"}, {"pseudonym": "O-1", "role": "perpetrator"}, {"pseudonym": ""}]
    assert report.people(ps) == "P-5 (victim), O-1 (perpetrator)"
    assert report.people(ps, "ru") == "P-5 (потерпевший), O-1 (нарушитель)"
    assert report.people(None) == ""


def test_plot_skips_non_finite_values_and_draws_a_legend_worthy_svg():
    svg = report.plot_svg([(0, 1, 0.2), (1, 2, math.nan), (2, 3, 0.9)], [(0, 1, -30.0), (1, 2, math.inf)], 3.0)
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    assert svg.count("<rect") == 3 and "#c0392b" in svg and "<polyline" in svg  # background + 2 bars, loudness
    assert report.plot_svg([], [], 10.0) == "" and report.plot_svg([(0, 1, 0.5)], [], 0.0) == ""


def test_transcript_rows_mark_loops_hallucinations_and_keep_translations():
    rows = report.transcript_rows([
        {"start_s": 0.0, "end_s": 2.0, "language": "en", "text": "No, no, no, " * 50, "avg_logprob": -0.1},
        {"start_s": 2.0, "end_s": 3.0, "language": "ru", "text": "Не надо!", "avg_logprob": -0.4,
         "translation": "Don't!"},
        {"start_s": 3.0, "end_s": 4.0, "language": "ru", "text": "Продолжение следует...", "avg_logprob": -1.0,
         "translation": "To be continued..."},
        {"start_s": 4.0, "end_s": 5.0, "language": "en", "text": "  ", "avg_logprob": -1.0},
    ], None)
    assert len(rows) == 3
    assert rows[0]["text"].lower().count("no") <= 2 and rows[0]["note"] == "repetition loop removed"
    assert rows[1]["translation"] == "Don't!" and rows[1]["note"] == ""
    assert rows[2]["text"] == "—" and rows[2]["translation"] == "" and "hallucination" in rows[2]["note"]


def test_custody_in_plain_words_in_both_languages():
    sha = "ab" * 32
    ledger = [
        {"seq": 1, "time": "2026-03-14T02:00:00.999999Z", "actor": "rita", "action": "ingest", "subject": sha,
         "details": {"original_name": "CAM-07.mp4", "source_path": "/media/usb/CAM-07.mp4"}},
        {"seq": 2, "prev": "x", "hash": "y", "omitted": True},
        {"seq": 3, "time": "2026-03-14T03:00:00Z", "actor": "bob", "action": "review", "subject": sha,
         "details": {"state": "confirmed"}},
        {"seq": 4, "time": "2026-03-14T03:00:00Z", "actor": "bob", "action": "views", "subject": sha, "details": {}},
        {"seq": 5, "time": "2026-03-14T04:00:00Z", "actor": "eve", "action": "something.new", "subject": None,
         "details": None},
    ]
    en = report.custody_rows(ledger, {sha: "E1 (CAM-07.mp4)"}, UTC, "en")
    assert [r["when"] for r in en] == ["2026-03-14 02:00:00", "2026-03-14 03:00:00", "2026-03-14 04:00:00"]
    assert en[0]["what"] == "received CAM-07.mp4 and stored it under its SHA-256 (from /media/usb/CAM-07.mp4)"
    assert en[1]["what"] == "reviewed a flagged stretch of E1 (CAM-07.mp4): confirmed"
    assert en[2]["what"] == "something.new"  # an action the report has no words for yet is named, not dropped
    ru = report.custody_rows(ledger, {sha: "E1 (CAM-07.mp4)"}, UTC, "ru")
    assert ru[0]["what"].startswith("принял(а) CAM-07.mp4")


def test_css_strings_cannot_break_out_of_the_page_rules():
    assert report.css('a"b\\c\n{d}<e>') == "abcde"
    assert report.css(None) == ""

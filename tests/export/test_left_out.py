"""The report's "not included" list keeps every refusal: a file stored at the same place by another intake is
said beside it, never taken to undo it (cards reuse paths and names: it may be another file)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from custodes.export.package import _left_out
from custodes.ingest.archives import ArchiveLimits
from custodes.ingest.pipeline import Ingestor
from custodes.store.db import Rejection


def _refused(left: list[dict[str, str]]) -> list[dict[str, str]]:
    return [d for d in left if d["sha256"] == "—"]


def test_a_refusal_stays_listed_when_something_is_stored_at_its_place_later(case, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "export.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"0" * 200_000)  # compresses ~1000:1
        zf.writestr("b.txt", b"second member")
    # a tight ratio limit refuses the archive (a bomb, for all this ingest can tell)
    first = Ingestor(case, "tester", limits=ArchiveLimits(max_ratio=5, ratio_floor_bytes=0)).run([src])
    assert first.refused, "the tight limit must refuse something on the first run"
    with case.sessions() as s:
        listed = _refused(_left_out(s, set(), "en"))
    assert [d["name"] for d in listed] == ["export.zip"] and "another intake" not in listed[0]["reason"]
    # the same place, another archive (a card reused): one member of the same name is stored
    with zipfile.ZipFile(src / "export.zip", "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("b.txt", b"another card's file")
    Ingestor(case, "tester").run([src])
    with case.sessions() as s:
        assert s.query(Rejection).count() == 1  # the refusal stays (it is sealed history)
        listed = _refused(_left_out(s, set(), "en"))
        listed_ru = _refused(_left_out(s, set(), "ru"))
    assert [d["name"] for d in listed] == ["export.zip"], listed
    assert "zip bomb" in listed[0]["reason"] and "stored by another intake; it may not be the same file" in \
        listed[0]["reason"]
    assert "при другом приёме" in listed_ru[0]["reason"]

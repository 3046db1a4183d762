"""The near-duplicate bench's reference rows (vPDQ and TMK, bench-only packages): they run on the bench's
own files and pair a real re-encode with its source, not an unrelated clip; without the packages the bench
says why the row is missing instead of failing."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from custodes.dupes.variants import make_variants

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import dupes_bench  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory, fight_surv):
    d = tmp_path_factory.mktemp("ref")
    src = shutil.copy2(fight_surv / "fight" / "fi001.mp4", d / "fi001.mp4")
    other = shutil.copy2(fight_surv / "noFight" / "nofi010.mp4", d / "nofi010.mp4")
    copy = make_variants(Path(src), d, ("reencode",))["reencode"]
    return [Path(src), copy, Path(other)]


@pytest.mark.parametrize("tool", ["vpdq", "tmkpy"])
def test_missing_reference_tool_is_a_stated_skip(monkeypatch, tool):
    monkeypatch.setitem(sys.modules, tool, None)  # import fails as if not installed
    fn = dupes_bench.reference_vpdq if tool == "vpdq" else dupes_bench.reference_tmk
    with pytest.raises(dupes_bench.ReferenceMissing, match=f"{tool} is not installed.*make bench installs"):
        fn([])


@pytest.mark.parametrize("fn", [dupes_bench.reference_vpdq, dupes_bench.reference_tmk], ids=["vpdq", "tmk"])
def test_reference_tool_pairs_a_reencode_with_its_source_only(files, fn):
    pytest.importorskip("vpdq" if fn is dupes_bench.reference_vpdq else "tmkpy")
    out = fn(files)
    label = out["label"]
    src, copy, other = (f.name for f in files)
    assert label.get(src) is not None and label.get(src) == label.get(copy)
    assert label.get(other) is None
    assert out["pairs"] == 1


def test_table_has_a_row_per_tool_and_states_a_skip():
    s = {"found": dict.fromkeys(dupes_bench.ALL_VARIANTS, 20), "precision": 1.0, "recall": 1.0, "false_pairs": 0}
    text = dupes_bench.table({"tools": [dupes_bench._row("custodes dupes", s, 20),
                                        {"tool": "TMK", "skipped": "tmkpy is not installed"}]})
    lines = text.splitlines()
    assert len(lines) == 4 and "| custodes dupes | 20/20 |" in lines[2]
    assert lines[3].startswith("| TMK | skipped: tmkpy is not installed |")

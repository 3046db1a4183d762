"""`custodes migrate`: a case moves SQLite → PostgreSQL → SQLite and nothing changes on the way.

Needs a real PostgreSQL server: `make test` starts one (scripts/pg-test-server) and sets
CUSTODES_TEST_PG to its URL template.
"""

from __future__ import annotations

import json
import os

import pytest

from custodes.ingest.pipeline import Ingestor
from custodes.search.index import search
from custodes.store.case import Case, CaseError
from custodes.store.transfer import migrate_database
from custodes.store.verify import verify_case
from custodes.triage.runner import queue_rows, run_triage
from custodes.web.users import add_user
from tests.conftest import run_cli

PG = os.environ.get("CUSTODES_TEST_PG")
pytestmark = pytest.mark.skipif(not PG, reason="no PostgreSQL test server (CUSTODES_TEST_PG); `make test` starts one")


def _state(case: Case) -> dict:
    q = queue_rows(case)
    return {
        "queue": [(r["sha256"], r["start_s"], r["end_s"], round(r["score"], 6)) for r in q["segments"]],
        "names": case.display_names(),
        "search": sorted((h["sha256"], h["kind"], h["ref"]) for h in search(case, "CAM")),  # ranks differ by engine
        "ledger_ok": verify_case(case).ok,
    }


@pytest.fixture(scope="module")
def sqlite_case(tmp_path_factory, demo_drive):
    drive, _ = demo_drive
    case = Case.init(tmp_path_factory.mktemp("mig") / "case", "tester", title="Move me", db_url="sqlite")
    Ingestor(case, "tester").run([drive])
    run_triage(case, "tester", workers=1)
    add_user(case, "rita", "reviewer", "correct horse battery", "tester")
    return case


def test_round_trip_sqlite_postgres_sqlite_loses_nothing(sqlite_case):
    case = sqlite_case
    before = _state(case)
    assert before["queue"] and before["ledger_ok"]
    res = migrate_database(case, PG, "tester")
    assert res["from"] == "sqlite" and res["to"].startswith("postgresql+psycopg://")
    assert "custodes:" not in json.loads((case.root / "case.json").read_text())["db_url"]  # no password stored
    on_pg = Case(case.root)
    assert on_pg.engine.dialect.name == "postgresql"
    assert _state(on_pg) == before
    assert res["old_sqlite_kept_as"] and os.path.exists(res["old_sqlite_kept_as"])
    # new rows after the move get fresh ids (sequences were advanced past the copied rows)
    add_user(on_pg, "omar", "reviewer", "another good passphrase", "tester")

    back = migrate_database(on_pg, "sqlite", "tester")
    assert back["to"] == "sqlite" and back["tables"]["users"] == res["tables"]["users"] + 1
    on_sqlite = Case(case.root)
    assert on_sqlite.engine.dialect.name == "sqlite"
    assert _state(on_sqlite) == before
    moves = [e for e in on_sqlite.ledger.entries() if e["action"] == "case.migrate"]
    assert [m["details"]["to"].split(":")[0] for m in moves] == ["postgresql+psycopg", "sqlite"]


def test_refusals_leave_the_case_where_it_was(sqlite_case, tmp_path):
    case = Case(sqlite_case.root)
    meta = (case.root / "case.json").read_text()
    with pytest.raises(CaseError, match="cannot reach"):
        migrate_database(case, "postgresql://nobody@127.0.0.1:1/x_{case_id}", "tester")
    with pytest.raises(CaseError, match="already uses"):
        migrate_database(case, "sqlite", "tester")
    used = Case.init(tmp_path / "other", "tester", db_url=PG)
    with pytest.raises(CaseError, match="already holds a case"):
        migrate_database(case, used.db_url, "tester")
    assert (case.root / "case.json").read_text() == meta
    assert verify_case(Case(case.root)).ok


def test_cli_init_on_postgres_and_migrate_json(tmp_path, small_clip):
    d = tmp_path / "c"
    proc = run_cli("init", str(d), "--db", PG, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["database"].startswith("postgresql")
    assert run_cli("ingest", str(d), str(small_clip)).returncode == 0
    proc = run_cli("migrate", str(d), "--to", "sqlite", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["to"] == "sqlite" and doc["tables"]["objects"] == 1
    assert run_cli("verify", str(d)).returncode == 0


def test_migration_killed_after_its_copy_resumes_without_a_manual_drop(tmp_path, small_clip):
    """Issue 20, finding 4: kill -9 after the copy to PostgreSQL committed, before the case switched to it. The
    rerun recognises its own complete copy (every table's digest equal) and finishes: one case.migrate event."""
    case = Case.init(tmp_path / "case", "tester", db_url="sqlite")
    Ingestor(case, "tester").run([small_clip])
    killed = run_cli("migrate", str(case.root), "--to", PG, env={"CUSTODES_FAULT": "migrate.after_copy"})
    assert killed.returncode == -9
    assert Case(case.root).engine.dialect.name == "sqlite"  # still where it was
    run_cli("migrate", str(case.root), "--to", PG, check=True)
    moved = Case(case.root)
    assert moved.engine.dialect.name == "postgresql"
    assert [e["action"] for e in moved.ledger.entries()].count("case.migrate") == 1
    assert verify_case(moved).ok


def test_migration_killed_between_its_event_and_the_switch(tmp_path, small_clip):
    """Issue 20: kill -9 after the signed case.migrate event, before case.json names the new database. The case
    is whole on its old database (a warning, not case.altered); the rerun switches under the same event."""
    case = Case.init(tmp_path / "case", "tester", db_url="sqlite")
    Ingestor(case, "tester").run([small_clip])
    killed = run_cli("migrate", str(case.root), "--to", PG, env={"CUSTODES_FAULT": "migrate.before_switch"})
    assert killed.returncode == -9
    still = Case(case.root)
    assert still.engine.dialect.name == "sqlite"
    rep = verify_case(still)
    assert rep.ok, rep.problems
    assert "case.migrate_unfinished" in {w.kind for w in rep.warnings}
    run_cli("migrate", str(case.root), "--to", PG, check=True)
    moved = Case(case.root)
    assert moved.engine.dialect.name == "postgresql"
    assert [e["action"] for e in moved.ledger.entries()].count("case.migrate") == 1
    rep = verify_case(moved)
    assert rep.ok and "case.migrate_unfinished" not in {w.kind for w in rep.warnings}, rep.problems

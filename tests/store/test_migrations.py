from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from custodes.store.case import known_revisions
from custodes.store.db import Base
from tests.conftest import run_cli


def test_migrations_build_exactly_the_models(case):
    def not_fts(name, type_, parent_names):  # the FTS5 search index is raw SQL, not a model
        return not (type_ == "table" and name.startswith("search_index"))

    with case.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_name": not_fts})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    assert case.schema_revision() == max(known_revisions())


def test_migrate_is_idempotent(case):
    case.ensure_schema()
    assert set(inspect(case.engine).get_table_names()) >= {"objects", "provenance", "batches", "media"}


def test_a_case_from_a_newer_version_is_refused_and_left_alone(case):
    from sqlalchemy import text

    with case.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9001'"))
    before = case.ledger.path.read_bytes()
    proc = run_cli("verify", str(case.root))
    assert proc.returncode == 1
    assert "newer version" in proc.stderr and "Traceback" not in proc.stderr
    assert case.schema_revision() == "9001" and case.ledger.path.read_bytes() == before

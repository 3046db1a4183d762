from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from custodes.store.db import Base


def test_migrations_build_exactly_the_models(case):
    def not_fts(name, type_, parent_names):  # the FTS5 search index is raw SQL, not a model
        return not (type_ == "table" and name.startswith("search_index"))

    with case.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_name": not_fts})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    assert case.schema_revision() == "0013"


def test_migrate_is_idempotent(case):
    case.ensure_schema()
    assert set(inspect(case.engine).get_table_names()) >= {"objects", "provenance", "batches", "media"}

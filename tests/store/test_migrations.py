from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from custodes.store.db import Base


def test_migrations_build_exactly_the_models(case):
    with case.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert case.schema_revision() == "0005"


def test_migrate_is_idempotent(case):
    case.ensure_schema()
    assert set(inspect(case.engine).get_table_names()) >= {"objects", "provenance", "batches", "media"}

"""Full-text search index for PostgreSQL (the twin of SQLite's FTS5 table from 0005).

A plain table with a generated ``tsvector`` column and a GIN index; the ``simple``
configuration lower-cases without stemming, so Russian and English are treated alike.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TABLE search_index (id BIGSERIAL PRIMARY KEY, text TEXT NOT NULL, kind VARCHAR(16), "
                   "sha256 VARCHAR(64), start_s DOUBLE PRECISION, end_s DOUBLE PRECISION, ref VARCHAR(80), "
                   "tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED)")
        op.execute("CREATE INDEX ix_search_index_tsv ON search_index USING GIN (tsv)")
        op.execute("CREATE INDEX ix_search_index_kind ON search_index (kind)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE search_index")

"""Speech transcripts and the full-text search index (SQLite FTS5).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transcripts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("objects.sha256"), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("avg_logprob", sa.Float(), nullable=False),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
    )
    op.create_index("ix_transcripts_sha256", "transcripts", ["sha256"])
    if op.get_bind().dialect.name == "sqlite":
        # kind: transcript | overlay | note; ref: row id in its own table; unicode61 folds case and
        # diacritics for Latin and Cyrillic alike
        op.execute("CREATE VIRTUAL TABLE search_index USING fts5(text, kind UNINDEXED, sha256 UNINDEXED, "
                   "start_s UNINDEXED, end_s UNINDEXED, ref UNINDEXED, tokenize='unicode61 remove_diacritics 2')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_index")
    op.drop_table("transcripts")

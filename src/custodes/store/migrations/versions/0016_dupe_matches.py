"""Near-duplicate matches, stored by ``custodes dupes`` as a finding (sealed in the ledger, grouped by ``a``).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dupe_matches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("a", sa.String(64), sa.ForeignKey("objects.sha256"), nullable=False),
        sa.Column("b", sa.String(64), sa.ForeignKey("objects.sha256"), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("match", sa.Float(), nullable=False),
        sa.Column("views", sa.String(80), nullable=False),
        sa.Column("transforms", sa.JSON(), nullable=False),
        sa.Column("frames", sa.JSON(), nullable=False),
        sa.Column("verification", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dupe_matches_run_id", "dupe_matches", ["run_id"])
    op.create_index("ix_dupe_matches_a", "dupe_matches", ["a"])
    op.create_index("ix_dupe_matches_b", "dupe_matches", ["b"])


def downgrade() -> None:
    op.drop_index("ix_dupe_matches_b", "dupe_matches")
    op.drop_index("ix_dupe_matches_a", "dupe_matches")
    op.drop_index("ix_dupe_matches_run_id", "dupe_matches")
    op.drop_table("dupe_matches")

"""Review state per segment (sealed) and per-user interface settings.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("objects.sha256"), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),  # a hint: the verdict is about the span below
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_reviews_sha256", "reviews", ["sha256"])
    op.create_table(
        "user_prefs",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("data", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_prefs")
    op.drop_index("ix_reviews_sha256", "reviews")
    op.drop_table("reviews")

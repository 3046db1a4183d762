"""Derivatives: redacted copies and other objects made from originals.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "derivatives",
        sa.Column("sha256", sa.String(64), sa.ForeignKey("objects.sha256"), primary_key=True),
        sa.Column("parent_sha256", sa.String(64), sa.ForeignKey("objects.sha256"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_derivatives_parent_sha256", "derivatives", ["parent_sha256"])


def downgrade() -> None:
    op.drop_table("derivatives")

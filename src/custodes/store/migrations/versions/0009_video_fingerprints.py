"""Video-level TMK fingerprints.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "video_fingerprints",
        sa.Column("sha256", sa.String(64), sa.ForeignKey("objects.sha256"), primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("video_fingerprints")

"""Inventory: when and by which camera each video was recorded.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("sha256", sa.String(64), sa.ForeignKey("objects.sha256"), primary_key=True),
        sa.Column("camera_id", sa.String(64), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_recordings_camera_id", "recordings", ["camera_id"])


def downgrade() -> None:
    op.drop_index("ix_recordings_camera_id", "recordings")
    op.drop_table("recordings")

"""Near-duplicates: PDQ frame hashes and their band index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "frame_hashes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("objects.sha256"), nullable=False),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
    )
    op.create_index("ix_frame_hashes_sha256", "frame_hashes", ["sha256"])
    op.create_table(
        "hash_bands",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("frame_id", sa.Integer(), sa.ForeignKey("frame_hashes.id"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("band", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    op.create_index("ix_hash_bands_lookup", "hash_bands", ["band", "value"])
    op.create_index("ix_hash_bands_frame_id", "hash_bands", ["frame_id"])
    op.create_index("ix_hash_bands_sha256", "hash_bands", ["sha256"])


def downgrade() -> None:
    op.drop_table("hash_bands")
    op.drop_table("frame_hashes")

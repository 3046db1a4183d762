"""Evidence store: batches, objects, provenance, rejections, media probes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "objects",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=True),
    )
    op.create_table(
        "provenance",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("objects.sha256"), nullable=False),
        sa.Column("batch_id", sa.String(36), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("member_path", sa.Text(), nullable=False),
        sa.Column("original_name", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("parent_sha256", sa.String(64), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=True),
        sa.UniqueConstraint("source_path", "member_path", "sha256", "mtime_ns", name="uq_provenance_origin"),
    )
    op.create_index("ix_provenance_sha256", "provenance", ["sha256"])
    op.create_index("ix_provenance_batch_id", "provenance", ["batch_id"])
    op.create_table(
        "rejections",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("batch_id", sa.String(36), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("member_path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=True),
        sa.UniqueConstraint("source_path", "member_path", "reason", name="uq_rejection"),
    )
    op.create_index("ix_rejections_batch_id", "rejections", ["batch_id"])
    op.create_table(
        "media",
        sa.Column("sha256", sa.String(64), sa.ForeignKey("objects.sha256"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("container", sa.String(64), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("fps", sa.Float(), nullable=True),
        sa.Column("video_codec", sa.String(64), nullable=True),
        sa.Column("audio_codec", sa.String(64), nullable=True),
        sa.Column("creation_time", sa.String(64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("streams", sa.JSON(), nullable=False),
        sa.Column("probe_version", sa.String(32), nullable=False),
        sa.Column("probed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("media")
    op.drop_index("ix_rejections_batch_id", "rejections")
    op.drop_table("rejections")
    op.drop_index("ix_provenance_batch_id", "provenance")
    op.drop_index("ix_provenance_sha256", "provenance")
    op.drop_table("provenance")
    op.drop_table("objects")
    op.drop_table("batches")

"""Job table: which job (engine, workers, version) produced each analysis run.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("host", sa.String(128), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
    )
    op.create_index("ix_jobs_kind", "jobs", ["kind"])
    with op.batch_alter_table("analysis_runs") as batch:
        batch.add_column(sa.Column("job_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("worker", sa.String(128), nullable=False, server_default=""))
        batch.create_index("ix_analysis_runs_job_id", ["job_id"])
        batch.create_foreign_key("fk_analysis_runs_job_id", "jobs", ["job_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("analysis_runs") as batch:
        batch.drop_constraint("fk_analysis_runs_job_id", type_="foreignkey")
        batch.drop_index("ix_analysis_runs_job_id")
        batch.drop_column("worker")
        batch.drop_column("attempts")
        batch.drop_column("job_id")
    op.drop_index("ix_jobs_kind", "jobs")
    op.drop_table("jobs")

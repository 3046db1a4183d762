"""Transcripts: an English machine translation of non-English speech (Whisper's translate task).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing row: seals leave a NULL translation out of the digest (store/seals.py LATE_COLUMNS)
    with op.batch_alter_table("transcripts") as batch:
        batch.add_column(sa.Column("translation", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transcripts") as batch:
        batch.drop_column("translation")

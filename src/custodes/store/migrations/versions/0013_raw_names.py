"""Raw names: the bytes of a file or member name that is not UTF-8, kept beside its readable form.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing row: seals leave a NULL raw_name out of the digest (store/seals.py LATE_COLUMNS)
    for table in ("provenance", "rejections"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("raw_name", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in ("provenance", "rejections"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("raw_name")

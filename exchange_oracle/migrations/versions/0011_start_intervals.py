"""jobs.start_intervals: the CVAT intervals a job starts from (VAD pre-segments, a
requester's suggestions, machine drafts), so a job handed to its next worker is reset to
them rather than to bare pre-segments

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("start_intervals", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("start_intervals")

"""escrows.outage_since: when the build was last found blocked by CVAT with no progress
since (NULL while it moves); past CVAT_OUTAGE_LIMIT_S the escrow fails with the reason

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.add_column(sa.Column("outage_since", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.drop_column("outage_since")

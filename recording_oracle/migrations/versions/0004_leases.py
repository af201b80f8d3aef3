"""inbox.lease_until (the handling worker's heartbeat; a lapsed lease is swept to another
worker) and escrows.results_tx (the storeResults transaction signed for the escrow, kept
before it is sent, so a worker killed while it is pending waits for it instead of sending
a second one)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))
    with op.batch_alter_table("escrows") as batch:
        batch.add_column(sa.Column("results_tx", sa.String(66)))


def downgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.drop_column("results_tx")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("lease_until")

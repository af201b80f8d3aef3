"""escrows.iteration: how many times the escrow's annotations went to the recording oracle

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
    with op.batch_alter_table("escrows") as batch:
        batch.add_column(sa.Column("iteration", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.drop_column("iteration")

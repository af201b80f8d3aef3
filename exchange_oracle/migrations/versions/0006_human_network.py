"""HUMAN network: assignments.updated_at (HUMAN App syncs by it), abuse flags on escrows and
workers, the requester's regions TSV

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE assignments SET updated_at = COALESCE(finished_at, created_at)")
    with op.batch_alter_table("assignments") as batch:
        batch.alter_column("updated_at", nullable=False)
    with op.batch_alter_table("escrows") as batch:
        batch.add_column(sa.Column("regions_text", sa.Text()))
        batch.add_column(
            sa.Column("suspended", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("blocked_reason", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("blocked_reason")
    with op.batch_alter_table("escrows") as batch:
        batch.drop_column("suspended")
        batch.drop_column("regions_text")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("updated_at")

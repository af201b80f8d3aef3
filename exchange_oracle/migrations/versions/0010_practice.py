"""escrows.practice (the practice clip) and practice_results (each worker's tries at it)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.add_column(sa.Column("practice", sa.JSON))
    op.create_table(
        "practice_results",
        sa.Column(
            "escrow_id",
            sa.Integer,
            sa.ForeignKey("escrows.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("wallet_address", sa.String(42), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result", sa.JSON),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("practice_results")
    with op.batch_alter_table("escrows") as batch:
        batch.drop_column("practice")

"""escrows and scored assignments

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escrows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.Integer, nullable=False),
        sa.Column("escrow_address", sa.String(42), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("iteration", sa.Integer, nullable=False),
        sa.Column("jobs_total", sa.Integer),
        sa.Column("note", sa.Text),
        sa.Column("results_url", sa.Text),
        sa.Column("results_hash", sa.String(64)),
        sa.Column("funds_reserved", sa.String(80)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("chain_id", "escrow_address", name="uq_escrows_chain_id"),
    )
    op.create_table(
        "results",
        sa.Column("assignment_id", sa.String(64), primary_key=True),
        sa.Column(
            "escrow_id",
            sa.Integer,
            sa.ForeignKey("escrows.id", ondelete="CASCADE", name="fk_results_escrow_id_escrows"),
            nullable=False,
        ),
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("clip", sa.String(255), nullable=False),
        sa.Column("wallet_address", sa.String(42), nullable=False),
        sa.Column("iteration", sa.Integer, nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("quality", sa.Float, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("honeypots", sa.Integer, nullable=False),
        sa.Column("segments", sa.JSON, nullable=False),
        sa.Column("time_map", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_results_escrow_id", "results", ["escrow_id"])


def downgrade() -> None:
    op.drop_index("ix_results_escrow_id", "results")
    op.drop_table("results")
    op.drop_table("escrows")

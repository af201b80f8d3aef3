"""source_files: per-file analysis, spread over Celery workers; escrows.gt_text

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "escrow_id",
            sa.Integer,
            sa.ForeignKey(
                "escrows.id", ondelete="CASCADE", name="fk_source_files_escrow_id_escrows"
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("ground_truth", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("speech", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("escrow_id", "name", name="uq_source_files_escrow_id"),
    )
    op.create_index("ix_source_files_escrow_id", "source_files", ["escrow_id"])
    with op.batch_alter_table("escrows") as batch:
        batch.add_column(sa.Column("gt_text", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.drop_column("gt_text")
    op.drop_index("ix_source_files_escrow_id", "source_files")
    op.drop_table("source_files")

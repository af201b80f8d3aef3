"""index for GET /job

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_escrows_status_created_at", "escrows", ["status", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_escrows_status_created_at", "escrows")

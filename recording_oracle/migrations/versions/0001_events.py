"""inbox and outbox

Revision ID: 0001
Revises:
"""

from oracle_core.migrations import create_event_tables_v1, drop_event_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables_v1()


def downgrade() -> None:
    drop_event_tables_v1()

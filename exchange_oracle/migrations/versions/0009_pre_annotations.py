"""escrows.pre_annotations: the requester's suggestions per media file, read from
data.pre_annotations_url when the escrow is prepared and placed on clips at packing

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.add_column(sa.Column("pre_annotations", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("escrows") as batch:
        batch.drop_column("pre_annotations")

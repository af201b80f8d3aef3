"""escrows, jobs, assignments, workers

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
ACTIVE = sa.text("status = 'active'")


def upgrade() -> None:
    op.create_table(
        "escrows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.Integer, nullable=False),
        sa.Column("escrow_address", sa.String(42), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("manifest", sa.JSON),
        sa.Column("failure_reason", sa.Text),
        sa.Column("cvat_project_id", sa.Integer),
        sa.Column("cvat_webhook_id", sa.Integer),
        sa.Column("webhook_secret", sa.String(64)),
        sa.Column("reward_per_job", sa.String(80)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("chain_id", "escrow_address", name="uq_escrows_chain_id"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "escrow_id",
            sa.Integer,
            sa.ForeignKey("escrows.id", ondelete="CASCADE", name="fk_jobs_escrow_id_escrows"),
            nullable=False,
        ),
        sa.Column("clip_index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("clip_key", sa.String(255), nullable=False),
        sa.Column("time_map", sa.JSON, nullable=False),
        sa.Column("pre_segments", sa.JSON, nullable=False),
        sa.Column("honeypots", sa.JSON, nullable=False),
        sa.Column("cvat_task_id", sa.Integer),
        sa.Column("cvat_job_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("escrow_id", "clip_index", name="uq_jobs_escrow_id"),
        sa.UniqueConstraint("cvat_job_id", name="uq_jobs_cvat_job_id"),
    )
    op.create_index("ix_jobs_escrow_id", "jobs", ["escrow_id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "assignments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "job_id",
            sa.Integer,
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_assignments_job_id_jobs"),
            nullable=False,
        ),
        sa.Column(
            "escrow_id",
            sa.Integer,
            sa.ForeignKey(
                "escrows.id", ondelete="CASCADE", name="fk_assignments_escrow_id_escrows"
            ),
            nullable=False,
        ),
        sa.Column("wallet_address", sa.String(42), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("iteration", sa.Integer, nullable=False),
        sa.Column("reject_reason", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_assignments_job_id", "assignments", ["job_id"])
    op.create_index("ix_assignments_wallet_address", "assignments", ["wallet_address"])
    op.create_index(
        "uq_assignments_worker_escrow_active",
        "assignments",
        ["escrow_id", "wallet_address"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index(
        "uq_assignments_job_active",
        "assignments",
        ["job_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_table(
        "workers",
        sa.Column("wallet_address", sa.String(42), primary_key=True),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("cvat_user_id", sa.Integer),
        sa.Column("cvat_username", sa.String(150)),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_table("assignments")
    op.drop_table("jobs")
    op.drop_table("escrows")

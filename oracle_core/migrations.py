"""Alembic for each oracle's own database: one env implementation, one history per oracle.

`upgrade("exchange_oracle", url)` runs `exchange_oracle/migrations` against `url`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, engine_from_config, pool

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def alembic_config(package: str, url: str) -> Config:
    module = importlib.import_module(package)
    folder = Path(module.__file__ or "").parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["package"] = package
    return cfg


def upgrade(package: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(package, url), revision)


def downgrade(package: str, url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(package, url), revision)


def run_env(target_metadata: MetaData) -> None:
    """The body of every oracle's `migrations/env.py` (online mode only)."""
    cfg = context.config
    connectable = engine_from_config(
        cfg.get_section(cfg.config_ini_section)
        or {"sqlalchemy.url": cfg.get_main_option("sqlalchemy.url")},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


# -- frozen schema steps shared by both oracles' histories -----------------------------------
def create_event_tables_v1() -> None:
    """inbox and outbox as EventTables defined them at revision 0001 (never edit: add steps)."""
    from alembic import op

    ts = sa.DateTime(timezone=True)
    op.create_table(
        "inbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("chain_id", sa.Integer, nullable=False),
        sa.Column("escrow_address", sa.String(42), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("event_data", sa.JSON),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("processed_at", ts),
        sa.UniqueConstraint("digest", name="uq_inbox_digest"),
    )
    op.create_index("ix_inbox_escrow_address", "inbox", ["escrow_address"])
    op.create_index("ix_inbox_status", "inbox", ["status"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("chain_id", sa.Integer, nullable=False),
        sa.Column("escrow_address", sa.String(42), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("target_address", sa.String(42), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", ts, nullable=False),
        sa.Column("lease_until", ts),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("delivered_at", ts),
    )
    op.create_index("ix_outbox_escrow_address", "outbox", ["escrow_address"])
    op.create_index("ix_outbox_status", "outbox", ["status"])
    op.create_index("ix_outbox_next_attempt_at", "outbox", ["next_attempt_at"])


def drop_event_tables_v1() -> None:
    from alembic import op

    op.drop_table("outbox")
    op.drop_table("inbox")

"""The recording oracle's database (Alembic migrates it; see migrations/)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from oracle_core.db import UtcDateTime
from oracle_core.events import EventTables
from oracle_core.migrations import NAMING

metadata = MetaData(naming_convention=NAMING)
events = EventTables(metadata)
TS = UtcDateTime()

# Escrow status: validating (iterations of job_finished -> scores -> rejections) ->
# assembling (final; the archive is being built) -> uploaded (archive in the bucket, hash
# known) -> recorded (results on the escrow, job_completed sent) -> cleaned; canceled
# (cancellation_requested, the chain agreeing) -> cleaned
escrows = Table(
    "escrows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("chain_id", Integer, nullable=False),
    Column("escrow_address", String(42), nullable=False),
    Column("status", String(16), nullable=False),
    Column("iteration", Integer, nullable=False),
    Column("jobs_total", Integer),
    Column("note", Text),
    Column("results_url", Text),
    Column("results_hash", String(64)),
    Column("funds_reserved", String(80)),  # token base units as text
    Column("results_tx", String(66)),  # storeResults as signed, kept before it is sent
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("chain_id", "escrow_address"),
)

# One scored assignment. Scores are kept forever: an assignment is never scored twice.
results = Table(
    "results",
    metadata,
    Column("assignment_id", String(64), primary_key=True),
    Column(
        "escrow_id",
        Integer,
        ForeignKey("escrows.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("job_id", Integer, nullable=False),
    Column("clip", String(255), nullable=False),
    Column("wallet_address", String(42), nullable=False),
    Column("iteration", Integer, nullable=False),
    Column("metric", String(16), nullable=False),
    Column("value", Float),
    Column("quality", Float, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("honeypots", Integer, nullable=False),
    # [{name, accuracy, macro_f1, honeypots, target}] for the attributes scored on honeypots
    Column("attributes", JSON),
    Column("segments", JSON, nullable=False),  # the annotation as scored, clip time
    Column("time_map", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
)

"""The exchange oracle's database (Alembic migrates it; see migrations/)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from oracle_core.db import UtcDateTime
from oracle_core.events import EventTables
from oracle_core.migrations import NAMING

metadata = MetaData(naming_convention=NAMING)
events = EventTables(metadata)
TS = UtcDateTime()


def _now() -> datetime:
    return datetime.now(UTC)


# Escrow status: building -> analysing (files analysed in parallel) -> packing (clips and
# CVAT tasks; jobs appear one by one) -> ready -> exporting (every job done) -> validation
# (annotations sent to the recording oracle) -> ready again if work was rejected, or
# recorded (accepted) -> completed (paid and cleaned up); failed | canceled on the way.
escrows = Table(
    "escrows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("chain_id", Integer, nullable=False),
    Column("escrow_address", String(42), nullable=False),
    Column("status", String(16), nullable=False),
    Column("manifest", JSON),
    Column("failure_reason", Text),
    Column("cvat_project_id", Integer),
    Column("cvat_webhook_id", Integer),
    Column("webhook_secret", String(64)),
    Column("reward_per_job", String(80)),  # token base units, as text: fits any uint256
    Column("iteration", Integer, nullable=False, server_default=text("0")),
    Column("gt_text", Text),  # the requester's ground truth, as read at intake
    Column("regions_text", Text),  # the requester's regions TSV, when the manifest has one
    # Suggestions from data.pre_annotations_url, per media file (exchange_oracle.imports)
    Column("pre_annotations", JSON),
    # The practice clip (exchange_oracle.practice): key, duration, time map, pre-segments
    Column("practice", JSON),
    # 1 while the reputation oracle reports abuse in this escrow: nothing listed or given.
    Column("suspended", Integer, nullable=False, server_default=text("0")),
    Column("outage_since", TS),  # the build found CVAT down, with no progress since
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("chain_id", "escrow_address"),
)
# GET /job pages through listed escrows newest first.
Index("ix_escrows_status_created_at", escrows.c.status, escrows.c.created_at, escrows.c.id)

# One media file of an escrow, analysed by any Celery worker (VAD, duration); status
# pending -> done | failed (error says why, e.g. corrupt audio). The last analysis to
# finish hands the escrow on to packing.
source_files = Table(
    "source_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "escrow_id",
        Integer,
        ForeignKey("escrows.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(1024), nullable=False),
    Column("object_key", String(1024), nullable=False),
    Column("ground_truth", Integer, nullable=False),  # 1: a honeypot source
    Column("status", String(16), nullable=False),
    Column("duration_ms", Integer),
    Column("speech", JSON),  # [[start_ms, end_ms], ...]
    Column("error", Text),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("escrow_id", "name"),
)

# Job status: pending (being built) -> free <-> assigned -> completed; canceled
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "escrow_id",
        Integer,
        ForeignKey("escrows.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("clip_index", Integer, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("duration_ms", Integer, nullable=False),
    Column("clip_key", String(255), nullable=False),
    Column("time_map", JSON, nullable=False),
    Column("pre_segments", JSON, nullable=False),
    # The CVAT intervals the job starts from (VAD, suggestions, drafts); a job handed to
    # its next worker is reset to these. NULL: jobs packed before, VAD pre-segments only.
    Column("start_intervals", JSON),
    Column("honeypots", JSON, nullable=False),
    Column("cvat_task_id", Integer),
    Column("cvat_job_id", Integer, unique=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("escrow_id", "clip_index"),
)

# Assignment status: active -> completed (-> rejected by the recording oracle) | expired |
# canceled (resigned, or the escrow was canceled)
assignments = Table(
    "assignments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("escrow_id", Integer, ForeignKey("escrows.id", ondelete="CASCADE"), nullable=False),
    Column("wallet_address", String(42), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("iteration", Integer, nullable=False),
    Column("reject_reason", Text),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("finished_at", TS),
    # Every change moves it: HUMAN App learns of changes only through `updated_after`.
    Column("updated_at", TS, nullable=False, default=_now, onupdate=_now),
)
ACTIVE = text("status = 'active'")
# The database itself refuses a second unfinished assignment per worker and escrow, or per job.
Index(
    "uq_assignments_worker_escrow_active",
    assignments.c.escrow_id,
    assignments.c.wallet_address,
    unique=True,
    postgresql_where=ACTIVE,
    sqlite_where=ACTIVE,
)
Index(
    "uq_assignments_job_active",
    assignments.c.job_id,
    unique=True,
    postgresql_where=ACTIVE,
    sqlite_where=ACTIVE,
)

# A worker's tries at an escrow's practice clip: whether they passed, and what the last
# try got right and wrong (shown to them; the practice answers are theirs to see).
practice_results = Table(
    "practice_results",
    metadata,
    Column("escrow_id", Integer, ForeignKey("escrows.id", ondelete="CASCADE"), primary_key=True),
    Column("wallet_address", String(42), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("passed", Integer, nullable=False),  # 0/1
    Column("skipped", Integer, nullable=False, default=0),  # 0/1: an optional one, passed by
    Column("result", JSON),
    Column("updated_at", TS, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("wallet_address", String(42), primary_key=True),
    Column("email", String(255), nullable=False),
    Column("cvat_user_id", Integer),
    Column("cvat_username", String(150)),
    Column("created_at", TS, nullable=False),
    Column("blocked_reason", Text),  # set by abuse_detected naming this wallet, until dismissed
)

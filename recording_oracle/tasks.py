"""The recording oracle's Celery app: accepted events are processed here and outgoing events
delivered. `celery -A recording_oracle.tasks worker -B` runs it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import OperationalError as DatabaseDown

from oracle_core.chain import ChainError
from oracle_core.db import transaction
from oracle_core.events import dispatch_after_commit
from oracle_core.storage import StorageError
from oracle_core.tasks import (
    UNHANDLED,
    OutboxContext,
    make_celery,
    register_inbox_tasks,
    register_outbox_tasks,
)
from recording_oracle.context import RecordingContext
from recording_oracle.db import escrows, events
from recording_oracle.process import on_cancellation, on_job_finished

_context: RecordingContext | None = None


def context() -> RecordingContext:
    global _context
    if _context is None:
        use(RecordingContext())
    assert _context is not None
    return _context


def use(ctx: RecordingContext) -> None:
    """Install the context tasks run with (tests and the demo build their own)."""
    global _context
    _context = ctx
    dispatch_after_commit(ctx.sessions, lambda row_id: deliver_outbox.delay(row_id))


# A dropped database connection (OperationalError) is retried like the network.
TRANSIENT = (ChainError, StorageError, ConnectionError, TimeoutError, OSError, DatabaseDown)


def handle(row: Any) -> str:
    ctx = context()
    if row.event_type == "job_finished":
        return on_job_finished(ctx, row.chain_id, row.escrow_address, row.event_data or {})
    if row.event_type == "cancellation_requested":
        return on_cancellation(ctx, row.chain_id, row.escrow_address)
    if row.event_type == "escrow_recorded":
        return "noted"
    if row.event_type == "escrow_cleaned":
        with transaction(ctx.sessions) as session:
            session.execute(
                update(escrows)
                .where(
                    escrows.c.chain_id == row.chain_id,
                    escrows.c.escrow_address == row.escrow_address,
                    escrows.c.status.in_(("recorded", "canceled")),
                )
                .values(status="cleaned")
            )
        return "cleaned"
    return UNHANDLED


app = make_celery("recording_oracle", RecordingContext().settings.celery_broker_url)
deliver_outbox, sweep_outbox = register_outbox_tasks(
    app, lambda: OutboxContext(context().settings, context().sessions, events, context().chain)
)
process_event, sweep_inbox = register_inbox_tasks(
    app, lambda: context().sessions, events, handle, TRANSIENT
)

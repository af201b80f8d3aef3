"""The exchange oracle's Celery app: accepted events are processed here, out of the request,
and outgoing events delivered. `celery -A exchange_oracle.tasks worker -B` runs it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from exchange_oracle.build import BuildFailed, build_escrow, cancel_escrow
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import events
from exchange_oracle.lifecycle import expire
from oracle_core.chain import ChainError
from oracle_core.events import DONE, FAILED, dispatch_after_commit, stale_inbox
from oracle_core.storage import StorageError
from oracle_core.tasks import OutboxContext, make_celery, register_outbox_tasks

log = logging.getLogger(__name__)
_context: ExchangeContext | None = None


def context() -> ExchangeContext:
    global _context
    if _context is None:
        use(ExchangeContext())
    assert _context is not None
    return _context


def use(ctx: ExchangeContext) -> None:
    """Install the context tasks run with (tests and the demo build their own)."""
    global _context
    _context = ctx
    dispatch_after_commit(ctx.sessions, lambda row_id: deliver_outbox.delay(row_id))


app = make_celery("exchange_oracle", ExchangeContext().settings.celery_broker_url)
deliver_outbox, sweep_outbox = register_outbox_tasks(
    app, lambda: OutboxContext(context().settings, context().sessions, events, context().chain)
)
TRANSIENT = (ChainError, StorageError, ConnectionError, TimeoutError, OSError)


@app.task(name="exchange_oracle.process_event", bind=True, max_retries=8)
def process_event(self: Any, inbox_id: str) -> str:
    """Handle one accepted event once; transient failures retry with growing delays."""
    ctx = context()
    inbox = events.inbox
    with ctx.sessions() as session:
        row = session.execute(select(inbox).where(inbox.c.id == inbox_id)).first()
    if row is None or row.status in (DONE, FAILED):
        return "skipped"
    try:
        outcome = handle(ctx, row)
    except Refused as exc:
        _record(ctx, inbox_id, FAILED, str(exc))
        return "refused"
    except TRANSIENT as exc:
        _record(ctx, inbox_id, None, f"{type(exc).__name__}: {exc}")
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 1))) from None
    _record(
        ctx,
        inbox_id,
        DONE if outcome != "unhandled" else None,
        None if outcome != "unhandled" else f"no handler for {row.event_type} yet",
    )
    return outcome


INBOX_SWEEP_S = 30.0


@app.task(name="exchange_oracle.sweep_inbox")
def sweep_inbox(older_than_s: float = INBOX_SWEEP_S) -> int:
    """Dispatch again any accepted event still pending: nothing accepted is ever dropped."""
    with context().sessions() as session:
        ids = stale_inbox(session, events, older_than_s)
    for inbox_id in ids:
        process_event.delay(inbox_id)
    return len(ids)


app.conf.beat_schedule["sweep-inbox"] = {"task": sweep_inbox.name, "schedule": INBOX_SWEEP_S}


EXPIRY_EVERY_S = 5.0


@app.task(name="exchange_oracle.expire_assignments")
def expire_assignments() -> dict[str, int]:
    ctx = context()
    cvat = ctx.cvat()
    try:
        return expire(ctx.sessions, cvat)
    finally:
        cvat.close()


app.conf.beat_schedule["expire-assignments"] = {
    "task": expire_assignments.name,
    "schedule": EXPIRY_EVERY_S,
}


def handle(ctx: ExchangeContext, row: Any) -> str:
    if row.event_type == "escrow_created":
        try:
            jobs = build_escrow(ctx.build, row.chain_id, row.escrow_address)
        except BuildFailed:
            return "failed"  # the escrow is marked failed and the launcher told why
        return f"{jobs} jobs"
    if row.event_type == "escrow_canceled":
        try:
            return cancel_escrow(ctx.build, row.chain_id, row.escrow_address)
        except BuildFailed as exc:
            raise Refused(str(exc)) from None
    return "unhandled"


class Refused(Exception):
    """The event is valid but cannot apply (e.g. cancel of a live escrow): recorded, not retried."""


def _record(ctx: ExchangeContext, inbox_id: str, status: str | None, error: str | None) -> None:
    inbox = events.inbox
    values: dict[str, Any] = {"attempts": inbox.c.attempts + 1, "error": error}
    if status:
        values.update(status=status, processed_at=datetime.now(UTC))
    with ctx.sessions() as session, session.begin():
        session.execute(update(inbox).where(inbox.c.id == inbox_id).values(**values))

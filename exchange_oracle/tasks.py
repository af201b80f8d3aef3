"""The exchange oracle's Celery app: accepted events are processed here, out of the request,
and outgoing events delivered. `celery -A exchange_oracle.tasks worker -B` runs it."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from cvat_sdk.api_client.exceptions import ApiException as CvatApiError
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError as DatabaseDown
from urllib3.exceptions import HTTPError as Urllib3Error

from exchange_oracle.build import (
    BuildFailed,
    analyze_source,
    finish_escrow,
    prepare_escrow,
)
from exchange_oracle.completion import (
    NotPaid,
    clean_up,
    escrow_recorded,
    export_escrow,
    reject_assignments,
)
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, events, source_files
from exchange_oracle.lifecycle import expire, reconcile
from exchange_oracle.moderation import cancel_escrow, dismiss_abuse, report_abuse
from exchange_oracle.outage import cvat_outage
from oracle_core.chain import ChainError
from oracle_core.events import dispatch_after_commit
from oracle_core.storage import StorageError
from oracle_core.tasks import (
    UNHANDLED,
    OutboxContext,
    Refused,
    make_celery,
    register_inbox_tasks,
    register_outbox_tasks,
)

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


# Worth retrying: the chain, storage, CVAT (5xx, timeouts, refused connections), the network.
TRANSIENT = (
    ChainError,
    StorageError,
    ConnectionError,
    TimeoutError,
    OSError,
    CvatApiError,
    Urllib3Error,
    DatabaseDown,
)


def handle(row: Any) -> str:
    """One accepted event, by type."""
    ctx = context()
    if row.event_type == "escrow_created":
        try:
            prepared = prepare_escrow(ctx.build, row.chain_id, row.escrow_address)
        except BuildFailed:
            return "failed"  # the escrow is marked failed and the launcher told why
        for name in prepared.pending:
            analyze_file.delay(prepared.escrow_id, name)
        if prepared.status == "packing":
            pack_escrow.delay(prepared.escrow_id)
        return f"{prepared.status}: {len(prepared.pending)} files to analyse"
    if row.event_type in ("escrow_canceled", "cancellation_requested"):
        try:
            return cancel_escrow(ctx.build, row.chain_id, row.escrow_address)
        except BuildFailed as exc:
            raise Refused(str(exc)) from None
    if row.event_type == "abuse_detected":
        return report_abuse(ctx.build, row.chain_id, row.escrow_address, row.event_data or {})
    if row.event_type == "abuse_dismissed":
        return dismiss_abuse(ctx.build, row.chain_id, row.escrow_address, row.event_data or {})
    if row.event_type == "submission_rejected":
        rejected = (row.event_data or {}).get("assignments")
        if not isinstance(rejected, list):
            raise Refused("submission_rejected needs event_data.assignments: a list")
        return reject_assignments(ctx.build, row.chain_id, row.escrow_address, rejected)
    if row.event_type == "job_completed":
        return escrow_recorded(ctx.build, row.chain_id, row.escrow_address)
    if row.event_type == "escrow_completed":
        try:
            return clean_up(ctx.build, row.chain_id, row.escrow_address)
        except NotPaid as exc:
            raise Refused(str(exc)) from None
    return UNHANDLED


app = make_celery("exchange_oracle", ExchangeContext().settings.celery_broker_url)
deliver_outbox, sweep_outbox = register_outbox_tasks(
    app, lambda: OutboxContext(context().settings, context().sessions, events, context().chain)
)
process_event, sweep_inbox = register_inbox_tasks(
    app, lambda: context().sessions, events, handle, TRANSIENT
)


# Below STALLED_S, so the resume sweep never doubles a step that is only waiting to retry.
RETRY_CAP_S = 15.0


def _retry(task: Any, exc: Exception) -> Exception:
    """Jittered exponential backoff, capped: an outage that ends is noticed within seconds.
    Build steps retry without a count; what ends a CVAT outage is CVAT_OUTAGE_LIMIT_S."""
    wait = min(RETRY_CAP_S, 2.0 ** (task.request.retries + 1)) * random.uniform(0.5, 1.0)
    return task.retry(exc=exc, countdown=wait)


@app.task(name="exchange_oracle.analyze_file", bind=True, max_retries=None)
def analyze_file(self: Any, escrow_id: int, name: str) -> str:
    """One media file of an escrow; the last one to finish starts the packing."""
    try:
        last = analyze_source(context().build, escrow_id, name)
    except BuildFailed:
        return "failed"
    except TRANSIENT as exc:
        raise _retry(self, exc) from None
    if last:
        pack_escrow.delay(escrow_id)
    return "analysed, packing" if last else "analysed"


@app.task(name="exchange_oracle.pack_escrow", bind=True, max_retries=None)
def pack_escrow(self: Any, escrow_id: int) -> str:
    """Clips, uploads and CVAT tasks for an analysed escrow; jobs are listed one by one."""
    try:
        return f"{finish_escrow(context().build, escrow_id)} jobs"
    except BuildFailed:
        return "failed"
    except (CvatApiError, Urllib3Error) as exc:  # each request was already retried
        if cvat_outage(context().build, escrow_id, exc):
            return "failed: CVAT down past CVAT_OUTAGE_LIMIT_S"
        raise _retry(self, exc) from None
    except TRANSIENT as exc:
        raise _retry(self, exc) from None


STALLED_S = 20.0  # four missed heartbeats (heartbeat.HEARTBEAT_S): the step's worker is gone


@app.task(name="exchange_oracle.resume_builds")
def resume_builds(stalled_s: float = STALLED_S) -> dict[str, int]:
    """Builds whose worker died or whose hand-off was lost: analyses and packing whose
    heartbeat stopped `stalled_s` ago are dispatched again (a running step beats every
    few seconds, so a live one is never doubled)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=stalled_s)
    with context().sessions() as session:
        files = session.execute(
            select(source_files.c.escrow_id, source_files.c.name)
            .join(escrows, escrows.c.id == source_files.c.escrow_id)
            .where(
                escrows.c.status == "analysing",
                source_files.c.status == "pending",
                source_files.c.updated_at < cutoff,
            )
        ).all()
        packing = (
            session.execute(
                select(escrows.c.id).where(
                    escrows.c.status == "packing", escrows.c.updated_at < cutoff
                )
            )
            .scalars()
            .all()
        )
        for escrow_id, name in files:
            session.execute(
                update(source_files)
                .where(source_files.c.escrow_id == escrow_id, source_files.c.name == name)
                .values(updated_at=datetime.now(UTC))
            )
        if packing:  # claimed for this dispatch: the next sweep waits for its heartbeat
            session.execute(
                update(escrows)
                .where(escrows.c.id.in_(packing))
                .values(updated_at=datetime.now(UTC))
            )
        session.commit()
    for escrow_id, name in files:
        analyze_file.delay(escrow_id, name)
    for escrow_id in packing:
        pack_escrow.delay(escrow_id)
    return {"files": len(files), "packing": len(packing)}


@app.task(name="exchange_oracle.export_annotations", bind=True, max_retries=8)
def export_annotations(self: Any, escrow_id: int) -> str:
    """Every job of the escrow is done: annotations to the bucket, `job_finished` out."""
    try:
        return export_escrow(context().build, escrow_id)
    except TRANSIENT as exc:
        raise _retry(self, exc) from None


EXPIRY_EVERY_S = 5.0


@app.task(name="exchange_oracle.expire_assignments")
def expire_assignments() -> dict[str, Any]:
    ctx = context()
    cvat = ctx.cvat()
    try:
        counts = expire(ctx.sessions, cvat)
    finally:
        cvat.close()
    for escrow_id in counts["finished"]:
        export_annotations.delay(escrow_id)
    return counts


RECONCILE_EVERY_S = 30.0


@app.task(name="exchange_oracle.reconcile")
def reconcile_with_cvat(stale_s: float = RECONCILE_EVERY_S) -> dict[str, int]:
    """Completions whose CVAT webhook was lost, and exports whose hand-off was lost."""
    ctx = context()
    cvat = ctx.cvat()
    try:
        completed, finished = reconcile(ctx.sessions, cvat)
    finally:
        cvat.close()
    cutoff = datetime.now(UTC) - timedelta(seconds=stale_s)
    with ctx.sessions() as session:
        stale = session.execute(
            select(escrows.c.id).where(
                escrows.c.status == "exporting", escrows.c.updated_at < cutoff
            )
        ).scalars()
        finished += list(stale)
    for escrow_id in dict.fromkeys(finished):
        export_annotations.delay(escrow_id)
    return {"completed": completed, "exports": len(set(finished))}


app.conf.beat_schedule.update(
    {
        "expire-assignments": {"task": expire_assignments.name, "schedule": EXPIRY_EVERY_S},
        "reconcile": {"task": reconcile_with_cvat.name, "schedule": RECONCILE_EVERY_S},
        "resume-builds": {"task": resume_builds.name, "schedule": 10.0},
    }
)

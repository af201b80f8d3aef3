"""Celery wiring for the outbox: deliver each event as soon as it commits, retry with
exponential backoff, and sweep periodically so nothing waits on a lost task."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from oracle_core.chain import Chain
from oracle_core.config import OracleSettings
from oracle_core.events import DONE, FAILED, Backoff, EventTables, deliver, due, stale_inbox
from oracle_core.heartbeat import heartbeat
from oracle_core.registration import webhook_target

log = logging.getLogger(__name__)


def make_celery(name: str, broker_url: str) -> Celery:
    """One oracle's Celery app. `filesystem://` is the broker that needs no server (the
    demo's embedded default): messages are files under CELERY_FILESYSTEM_FOLDER."""
    app = Celery(name, broker=broker_url)
    if broker_url.startswith("filesystem://"):
        folder = Path(os.environ.get("CELERY_FILESYSTEM_FOLDER", ".demo/broker"))
        folder.mkdir(parents=True, exist_ok=True)
        app.conf.broker_transport_options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),  # else `control/` in the cwd
            "store_processed": False,
        }
    app.conf.update(
        task_default_queue=name,  # oracles sharing one Redis never take each other's tasks
        task_acks_late=True,  # a worker killed mid-task leaves the task to be redone
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
    )
    return app


@dataclass
class OutboxContext:
    settings: OracleSettings
    sessions: sessionmaker[Session]
    tables: EventTables
    chain: Chain

    def resolve_url(self, address: str) -> tuple[str, str | None]:
        return webhook_target(
            self.chain, address, self.settings.webhook_url_overrides, self.settings.url_policy()
        )

    @property
    def backoff(self) -> Backoff:
        s = self.settings
        return Backoff(s.outbox_backoff_s, s.outbox_backoff_max_s, s.outbox_max_attempts)


SWEEP_EVERY_S = 30.0


def register_outbox_tasks(app: Celery, context: Callable[[], OutboxContext]) -> tuple[Any, Any]:
    """Adds `deliver_outbox(id)` and `sweep_outbox()` (on Celery beat) to `app`."""

    @app.task(name=f"{app.main}.deliver_outbox", bind=True)
    def deliver_outbox(self: Any, row_id: str) -> str:
        ctx = context()
        with httpx.Client(timeout=ctx.settings.webhook_timeout_s) as client:
            result = deliver(
                ctx.sessions,
                ctx.tables,
                row_id,
                private_key=ctx.settings.signing_key(),
                resolve_url=ctx.resolve_url,
                backoff=ctx.backoff,
                client=client,
            )
        if result.status == "retry":
            deliver_outbox.apply_async((row_id,), countdown=result.retry_in_s)
        return result.status

    @app.task(name=f"{app.main}.sweep_outbox")
    def sweep_outbox() -> int:
        ctx = context()
        with ctx.sessions() as session:
            ids = due(session, ctx.tables)
        for row_id in ids:
            deliver_outbox.delay(row_id)
        return len(ids)

    app.conf.beat_schedule = {
        **(app.conf.beat_schedule or {}),
        "sweep-outbox": {"task": sweep_outbox.name, "schedule": SWEEP_EVERY_S},
    }
    return deliver_outbox, sweep_outbox


def _lease(extra_s: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=INBOX_LEASE_S + extra_s)


class Refused(Exception):
    """The event is valid but cannot apply (e.g. cancel of a live escrow): recorded, not retried."""


UNHANDLED = "unhandled"
INBOX_SWEEP_S = 10.0  # beat's period for sweep_inbox
# A handler holds its event's lease this long past its last heartbeat: a worker killed
# mid-event is replaced within INBOX_LEASE_S + INBOX_SWEEP_S.
INBOX_LEASE_S = 15.0


def register_inbox_tasks(
    app: Celery,
    sessions: Callable[[], sessionmaker[Session]],
    tables: EventTables,
    handle: Callable[[Any], str],
    transient: tuple[type[BaseException], ...],
) -> tuple[Any, Any]:
    """Adds `process_event(inbox_id)` and `sweep_inbox()` (on beat) to `app`. `handle`
    gets the inbox row and returns what it did (or UNHANDLED); it raises Refused for an
    event that cannot apply, or one of `transient` for a failure worth retrying."""
    inbox = tables.inbox

    def record(inbox_id: str, status: str | None, error: str | None, hold_s: float = 0) -> None:
        values: dict[str, Any] = {"attempts": inbox.c.attempts + 1, "error": error}
        if status:
            values.update(status=status, processed_at=datetime.now(UTC))
        values["lease_until"] = _lease(hold_s) if hold_s else None
        with sessions()() as session, session.begin():
            session.execute(update(inbox).where(inbox.c.id == inbox_id).values(**values))

    def renew(inbox_id: str) -> Any:
        return update(inbox).where(inbox.c.id == inbox_id).values(lease_until=_lease(0))

    @app.task(name=f"{app.main}.process_event", bind=True, max_retries=8)
    def process_event(self: Any, inbox_id: str) -> str:
        """Handle one accepted event once; transient failures retry with growing delays."""
        with sessions()() as session, session.begin():
            session.execute(renew(inbox_id))
            row = session.execute(select(inbox).where(inbox.c.id == inbox_id)).first()
        if row is None or row.status in (DONE, FAILED):
            return "skipped"
        try:
            with heartbeat(sessions(), lambda: renew(inbox_id)):
                outcome = handle(row)
        except Refused as exc:
            record(inbox_id, FAILED, str(exc))
            return "refused"
        except transient as exc:
            wait = min(300, 2 ** (self.request.retries + 1))
            record(inbox_id, None, f"{type(exc).__name__}: {exc}", hold_s=wait)
            raise self.retry(exc=exc, countdown=wait) from None
        except Exception as exc:  # a bug, not the weather: the next sweep tries again
            record(inbox_id, None, f"{type(exc).__name__}: {exc}")
            raise
        if outcome == UNHANDLED:
            record(inbox_id, None, f"no handler for {row.event_type}")
        else:
            record(inbox_id, DONE, None)
        return outcome

    @app.task(name=f"{app.main}.sweep_inbox")
    def sweep_inbox(older_than_s: float = INBOX_SWEEP_S) -> int:
        """Dispatch again any accepted event still pending: nothing accepted is ever dropped."""
        with sessions()() as session, session.begin():
            ids = stale_inbox(session, tables, older_than_s)
            if ids:  # claimed for this dispatch, so the next sweep does not queue it again
                session.execute(
                    update(inbox).where(inbox.c.id.in_(ids)).values(lease_until=_lease(0))
                )
        for inbox_id in ids:
            process_event.delay(inbox_id)
        return len(ids)

    app.conf.beat_schedule = {
        **(app.conf.beat_schedule or {}),
        "sweep-inbox": {"task": sweep_inbox.name, "schedule": INBOX_SWEEP_S},
    }
    return process_event, sweep_inbox

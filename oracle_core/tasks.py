"""Celery wiring for the outbox: deliver each event as soon as it commits, retry with
exponential backoff, and sweep periodically so nothing waits on a lost task."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from oracle_core.chain import Chain
from oracle_core.config import OracleSettings
from oracle_core.events import Backoff, EventTables, deliver, due
from oracle_core.registration import webhook_url

log = logging.getLogger(__name__)


def make_celery(name: str, broker_url: str) -> Celery:
    app = Celery(name, broker=broker_url)
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

    def resolve_url(self, address: str) -> str:
        return webhook_url(self.chain, address, self.settings.webhook_url_overrides)

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

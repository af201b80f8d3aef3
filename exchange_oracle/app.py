"""The exchange oracle's HTTP app: webhooks from peers, the worker API, health."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import events
from exchange_oracle.worker_api import worker_router
from oracle_core.api import webhook_router

ACCEPTED = {
    "escrow_created": "launcher",
    "escrow_canceled": "launcher",
    "submission_rejected": "recording_oracle",
    "job_completed": "recording_oracle",
    "escrow_completed": "reputation_oracle",
}


def create_app(
    context: ExchangeContext | None = None, on_event: Callable[[str], None] | None = None
) -> FastAPI:
    """`on_event` receives each newly accepted inbox id; by default the Celery task."""
    ctx = context or ExchangeContext()
    if on_event is None:
        from exchange_oracle import tasks

        tasks.use(ctx)
        on_event = tasks.process_event.delay
    app = FastAPI(
        title="audio-oracles exchange oracle",
        description="HUMAN Protocol exchange oracle for audio annotation",
    )
    settings = ctx.settings
    app.include_router(
        webhook_router(
            accepted=ACCEPTED,
            chain=lambda: ctx.chain,
            sessions=lambda: ctx.sessions,
            tables=events,
            on_new=on_event,
            admin_token=lambda: (
                settings.admin_token.get_secret_value() if settings.admin_token else None
            ),
        )
    )
    app.include_router(worker_router(lambda: ctx))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app

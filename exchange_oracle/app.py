"""The exchange oracle's HTTP app: webhooks from peers, the worker API, health."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from exchange_oracle.annotate_page import mount_assets, page_router
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import events
from exchange_oracle.lifecycle import (
    SIGNATURE_HEADER,
    CvatWebhookRejected,
    completes,
    job_completed_in_cvat,
    verify_cvat_webhook,
)
from exchange_oracle.worker_api import worker_router
from oracle_core.api import guard_bodies, install_error_handlers, webhook_router
from oracle_core.webhooks import EVENT_SENDERS

log = logging.getLogger(__name__)
ACCEPTED = {
    event: EVENT_SENDERS[event]
    for event in (
        "escrow_created",
        "cancellation_requested",
        "escrow_canceled",
        "abuse_detected",
        "abuse_dismissed",
        "submission_rejected",
        "job_completed",
        "escrow_completed",
    )
}


def create_app(
    context: ExchangeContext | None = None,
    on_event: Callable[[str], None] | None = None,
    on_export: Callable[[int], object] | None = None,
) -> FastAPI:
    """`on_event` receives each newly accepted inbox id, `on_export` each escrow whose last
    job was just completed; by default both go to Celery tasks."""
    ctx = context or ExchangeContext()
    if on_event is None or on_export is None:
        from exchange_oracle import tasks

        tasks.use(ctx)
        on_event = on_event or tasks.process_event.delay
        on_export = on_export or tasks.export_annotations.delay
    export_later = on_export
    app = FastAPI(
        title="audio-oracles exchange oracle",
        description="HUMAN Protocol exchange oracle for audio annotation",
    )
    settings = ctx.settings
    install_error_handlers(app)
    guard_bodies(app, settings)
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
    app.include_router(page_router(lambda: ctx))
    mount_assets(app)

    @app.post("/cvat-webhook", summary="Job events from CVAT, signed with the escrow's secret")
    async def cvat_webhook(request: Request) -> dict[str, str]:
        raw = await request.body()
        signature = request.headers.get(SIGNATURE_HEADER)

        def run() -> str:
            doc = verify_cvat_webhook(ctx.sessions, raw, signature)
            if not completes(doc):
                return "ignored"  # a save, an assignment, a stage: not a completion
            result, finished_escrow = job_completed_in_cvat(
                ctx.sessions, int(doc["job"]["id"]), int(doc["job"]["project_id"])
            )
            if finished_escrow is not None:
                try:
                    export_later(finished_escrow)
                except Exception as exc:  # the reconciliation task picks the escrow up
                    log.warning("could not queue the export of escrow %s: %s", finished_escrow, exc)
            return result

        try:
            return {"result": await run_in_threadpool(run)}
        except CvatWebhookRejected as exc:
            raise HTTPException(exc.status, exc.detail) from None

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:  # browsers ask for one on every page (the API docs too)
        return Response(status_code=204)

    return app

"""The recording oracle's HTTP app: webhooks from the exchange oracle, results for
operators, health."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import select

from oracle_core.api import admin_guard, guard_bodies, install_error_handlers, webhook_router
from oracle_core.webhooks import EVENT_SENDERS
from recording_oracle.context import RecordingContext
from recording_oracle.db import escrows, events, results

ACCEPTED = {
    event: EVENT_SENDERS[event]
    for event in ("job_finished", "escrow_recorded", "escrow_cleaned", "cancellation_requested")
}


def _attribute_accuracy(scored: Any) -> dict[str, dict[str, float]]:
    """Per worker and attribute: accuracy over every honeypot segment scored for it."""
    right: dict[tuple[str, str], float] = {}
    total: dict[tuple[str, str], int] = {}
    for r in scored:
        for a in r.attributes or []:
            key = (r.wallet_address, a["name"])
            right[key] = right.get(key, 0.0) + a["accuracy"] * a["honeypots"]
            total[key] = total.get(key, 0) + a["honeypots"]
    out: dict[str, dict[str, float]] = {}
    for (wallet, name), n in sorted(total.items()):
        out.setdefault(wallet, {})[name] = round(right[(wallet, name)] / n, 4)
    return out


def create_app(
    context: RecordingContext | None = None, on_event: Callable[[str], None] | None = None
) -> FastAPI:
    """`on_event` receives each newly accepted inbox id; by default the Celery task."""
    ctx = context or RecordingContext()
    if on_event is None:
        from recording_oracle import tasks

        tasks.use(ctx)
        on_event = tasks.process_event.delay
    app = FastAPI(
        title="audio-oracles recording oracle",
        description="HUMAN Protocol recording oracle: scores audio annotations, stores results",
    )
    settings = ctx.settings
    install_error_handlers(app)
    guard_bodies(app, settings)

    def admin_token() -> str | None:
        return settings.admin_token.get_secret_value() if settings.admin_token else None

    app.include_router(
        webhook_router(
            accepted=ACCEPTED,
            chain=lambda: ctx.chain,
            sessions=lambda: ctx.sessions,
            tables=events,
            on_new=on_event,
            admin_token=admin_token,
        )
    )

    @app.get(
        "/escrows/{escrow_address}",
        summary="An escrow's validation: status, iteration, results, scores (operators)",
        dependencies=[Depends(admin_guard(admin_token))],
    )
    def escrow_report(escrow_address: str, chain_id: int | None = None) -> dict[str, Any]:
        with ctx.sessions() as session:
            query = select(escrows).where(escrows.c.escrow_address == escrow_address)
            if chain_id is not None:
                query = query.where(escrows.c.chain_id == chain_id)
            row = session.execute(query).first()
            if row is None:
                raise HTTPException(404, f"no escrow {escrow_address} here")
            scored = session.execute(
                select(results)
                .where(results.c.escrow_id == row.id)
                .order_by(results.c.iteration, results.c.job_id)
            ).all()
        return {
            "escrow_address": row.escrow_address,
            "chain_id": row.chain_id,
            "status": row.status,
            "iteration": row.iteration,
            "note": row.note,
            "results_url": row.results_url,
            "results_hash": row.results_hash,
            "funds_reserved": row.funds_reserved,
            "assignments": [
                {
                    "assignment_id": r.assignment_id,
                    "job_id": r.job_id,
                    "wallet_address": r.wallet_address,
                    "iteration": r.iteration,
                    "metric": r.metric,
                    "value": r.value,
                    "quality": r.quality,
                    "passed": r.passed,
                    "reasons": r.reasons,
                    "attributes": r.attributes or [],
                    # how the final segments came about: a suggestion (`file`) or VAD
                    # pre-segment (`auto`) accepted as it was, either edited, or drawn anew
                    "sources": dict(
                        Counter(str(seg.get("source", "manual")) for seg in r.segments)
                    ),
                }
                for r in scored
            ],
            "attribute_accuracy_by_worker": _attribute_accuracy(scored),
        }

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app

"""HTTP pieces both oracles mount: webhook intake and the operator's outbox listing."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from oracle_core.chain import Chain
from oracle_core.db import transaction
from oracle_core.events import DEAD, DELIVERED, PENDING, EventTables, outbox_rows, receive
from oracle_core.webhooks import SIGNATURE_HEADER, WebhookRejected, verify

log = logging.getLogger(__name__)


class WebhookAccepted(BaseModel):
    id: str
    duplicate: bool


class OutboxEntry(BaseModel):
    id: str
    escrow_address: str
    event_type: str
    target_address: str
    status: str
    attempts: int
    last_error: str | None
    created_at: Any
    next_attempt_at: Any
    delivered_at: Any


def webhook_router(
    *,
    accepted: Mapping[str, str],
    chain: Callable[[], Chain],
    sessions: Callable[[], sessionmaker[Session]],
    tables: EventTables,
    on_new: Callable[[str], None],
    admin_token: Callable[[], str | None],
) -> APIRouter:
    """`accepted` maps each event type this oracle takes to the role that must sign it."""
    router = APIRouter()

    def _accept(raw: bytes, signature: str | None) -> WebhookAccepted:
        event = verify(raw, signature, accepted, chain())
        with transaction(sessions()) as session:
            row_id, created = receive(session, tables, event)
        if created:
            try:
                on_new(row_id)
            except Exception:  # stored safely: the inbox sweep dispatches it again
                log.exception("could not dispatch inbox %s; the sweep will retry it", row_id)
        return WebhookAccepted(id=row_id, duplicate=not created)

    @router.post(
        "/webhook",
        response_model=WebhookAccepted,
        responses={400: {}, 401: {}, 422: {}},
        summary="Receive a signed event from another oracle or the job launcher",
    )
    async def webhook(
        request: Request,
        signature: str | None = Header(None, alias=SIGNATURE_HEADER),
    ) -> WebhookAccepted:
        raw = await request.body()
        try:
            return await run_in_threadpool(_accept, raw, signature)
        except WebhookRejected as exc:
            raise HTTPException(exc.status, exc.detail) from None

    @router.get(
        "/outbox",
        response_model=list[OutboxEntry],
        summary="Outgoing events, e.g. ?status=dead for the dead letters (operator token)",
    )
    def outbox(
        status: str | None = Query(None, pattern=f"^({PENDING}|{DELIVERED}|{DEAD})$"),
        _: None = Depends(admin_guard(admin_token)),
    ) -> list[OutboxEntry]:
        with sessions()() as session:
            return [OutboxEntry(**row) for row in outbox_rows(session, tables, status)]

    return router


def admin_guard(admin_token: Callable[[], str | None]) -> Callable[..., None]:
    """A dependency that lets only the operator token through (and nothing if it is unset)."""

    def guard(authorization: str | None = Header(None)) -> None:
        token = admin_token()
        if not token:
            raise HTTPException(403, "operator endpoints are off: set ADMIN_TOKEN to enable them")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given, token):
            raise HTTPException(401, "operator token required (Authorization: Bearer ...)")

    return guard

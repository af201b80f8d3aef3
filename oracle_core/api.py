"""HTTP pieces both oracles mount: webhook intake and the operator's outbox listing."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from oracle_core.body_guard import BodyGuard
from oracle_core.chain import Chain
from oracle_core.config import OracleSettings
from oracle_core.db import transaction
from oracle_core.events import DEAD, DELIVERED, PENDING, EventTables, outbox_rows, receive
from oracle_core.webhooks import SIGNATURE_HEADER, WebhookRejected, verify

log = logging.getLogger(__name__)


def guard_bodies(app: FastAPI, settings: OracleSettings) -> None:
    """Every request body bounded in size, time and JSON depth (`oracle_core.body_guard`)."""
    app.add_middleware(
        BodyGuard, max_bytes=settings.max_body_bytes, deadline_s=settings.body_deadline_s
    )


def install_error_handlers(app: FastAPI) -> None:
    """Error bodies as HUMAN's peers read them: HUMAN App relays only `message` (and the
    status) to the worker, and HUMAN's oracles answer a malformed request with 400 and
    `errors: [{field, message}]`. `detail` stays for our own page, which reads it."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        message = detail.get("message") if isinstance(detail, dict) else None
        return JSONResponse(
            {"message": str(message or detail), "detail": detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return JSONResponse({"message": message, "errors": errors}, status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"message": "internal error; it has been logged"}, status_code=500)


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
    accepted: Mapping[str, tuple[str, ...]],
    chain: Callable[[], Chain],
    sessions: Callable[[], sessionmaker[Session]],
    tables: EventTables,
    on_new: Callable[[str], None],
    admin_token: Callable[[], str | None],
) -> APIRouter:
    """`accepted` maps each event type this oracle takes to the roles that may sign it."""
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

"""What HUMAN App calls on behalf of workers: list jobs, register, take and resign
assignments, statistics; shaped as HUMAN App reads them (pages from 0, `message` in
error bodies, UTC times ending in Z). Every route but `GET /stats` needs a HUMAN App
ES256 token.

No `from __future__ import annotations` here: FastAPI must see the dependency objects in
the annotations themselves, and they are closures of `worker_router`.
"""

import asyncio
import json
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from cvat_sdk.api_client.exceptions import ApiException as CvatApiError
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, EmailStr, field_serializer
from sqlalchemy import ColumnElement, func, insert, select, update
from urllib3.exceptions import HTTPError as Urllib3Error

from exchange_oracle.annotate_api import annotation_routes
from exchange_oracle.assignments import (
    AssignmentQuery,
    AssignmentRefused,
    for_the_worker,
    listing,
    oracle_stats,
    public_status,
    resign,
    take,
    worker_stats,
)
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import assignments, escrows, jobs, workers
from exchange_oracle.practice_api import practice_routes
from exchange_oracle.ttl_cache import STALE_S, TtlCache
from oracle_core.auth import AuthError, TokenClaims, bearer_token, verify_token

JOB_TYPE = "audio_transcription"
LISTED = {"active": ["ready"], "completed": ["completed"], "canceled": ["canceled", "failed"]}
STATUS_OF = {
    "ready": "active",
    "completed": "completed",
    "canceled": "canceled",
    "failed": "canceled",
}
# What `fields` may select (HUMAN App asks for the first four); the rest always come.
FIELDS = ("job_description", "reward_amount", "reward_token", "created_at")
ALWAYS = ("escrow_address", "chain_id", "job_type", "status", "updated_at", "qualifications")
JOB_SORT = Literal["created_at", "updated_at", "chain_id", "job_type", "reward_amount"]
ASSIGNMENT_SORT = Literal[
    "created_at", "updated_at", "expires_at", "chain_id", "job_type", "status", "reward_amount"
]
Sort = Annotated[str, Query(pattern="(?i)^(asc|desc)$")]
Page = Annotated[int, Query(ge=0)]
PageSize = Annotated[int, Query(ge=1, le=100)]


def iso_z(value: datetime | None) -> str | None:
    """UTC with milliseconds and a Z, as JavaScript's toISOString writes it: HUMAN App
    compares these as strings to find what changed."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class AssignmentRequest(BaseModel):
    escrow_address: str
    chain_id: int


class ResignRequest(BaseModel):
    assignment_id: str


class RegisterRequest(BaseModel):
    """HUMAN App sends `oracle_address` and `h_captcha_token`; the wallet and e-mail come
    from the token. `email` is our extra, for callers outside HUMAN App."""

    oracle_address: str | None = None
    h_captcha_token: str | None = None
    email: EmailStr | None = None


class AssignmentOut(BaseModel):
    """One item of `GET /assignment`, as HUMAN App reads it (`url` only while active)."""

    assignment_id: str
    escrow_address: str
    chain_id: int
    job_type: str = JOB_TYPE
    status: str
    reward_amount: str
    reward_token: str = "HMT"
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    url: str | None
    # Ours, beside HUMAN's fields: why the recording oracle rejected it (no honeypot answers).
    reject_reason: str | None = None

    @field_serializer("created_at", "updated_at", "expires_at")
    def _utc(self, value: datetime) -> str | None:
        return iso_z(value)


def paged(page: int, page_size: int, total: int, results: list[Any]) -> dict[str, Any]:
    """HUMAN's paging envelope; pages count from 0."""
    return {
        "page": page,
        "page_size": page_size,
        "total_pages": math.ceil(total / page_size),
        "total_results": total,
        "results": results,
    }


def hmt(base_units: str | None) -> str:
    return str(Decimal(base_units or 0) / Decimal(10**18))


def cvat_username(wallet: str) -> str:
    """The worker's CVAT username: the whole wallet, so no two workers share one (CVAT finds
    users by username, never by e-mail)."""
    return f"w{wallet.lower().removeprefix('0x')}"


def selected_fields(fields: list[str] | None) -> tuple[str, ...]:
    """`fields` repeated (`fields=a&fields=b`, what HUMAN App sends) or comma-separated;
    none means every field."""
    names = [n.strip() for f in fields or [] for n in f.split(",") if n.strip()]
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        raise HTTPException(400, f"unknown field(s) {unknown}; choose from {list(FIELDS)}")
    return tuple(dict.fromkeys(names)) if names else FIELDS


def worker_router(context: Callable[[], ExchangeContext]) -> APIRouter:
    router = APIRouter(tags=["worker"])

    verified: dict[str, TokenClaims] = {}  # token -> its claims, until the token expires

    async def claims(authorization: Annotated[str | None, Header()] = None) -> TokenClaims:
        if not context().settings.human_app_public_key.strip():
            raise HTTPException(503, "worker routes are off: HUMAN_APP_PUBLIC_KEY is not set")
        try:
            token = bearer_token(authorization)
            known = verified.get(token)
            if known is not None and float(known.raw.get("exp", 0)) > time.time():
                return known
            checked = verify_token(token, context().settings.human_app_public_key)
        except AuthError as exc:
            raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None
        if len(verified) >= 10_000:
            verified.clear()
        verified[token] = checked
        return checked

    async def wallet_of(token: Annotated[TokenClaims, Depends(claims)]) -> TokenClaims:
        if token.wallet_address is None:
            raise HTTPException(403, "this route needs a worker's token (with a wallet_address)")
        return token

    listing_cache = TtlCache(context().settings.job_list_cache_s)

    def url_for(assignment_id: str) -> str:
        return f"{context().settings.public_url.rstrip('/')}/annotate/{assignment_id}"

    @router.get("/job", summary="Jobs (one per escrow) workers can take", response_class=Response)
    async def list_jobs(
        token: Annotated[TokenClaims, Depends(claims)],
        escrow_address: str | None = None,
        chain_id: int | None = None,
        job_type: str | None = None,
        status: Literal["active", "completed", "canceled"] = "active",
        sort: Sort = "asc",
        sort_field: JOB_SORT = "created_at",
        page: Page = 0,
        page_size: PageSize = 10,
        fields: Annotated[list[str] | None, Query()] = None,
        created_after: datetime | None = None,
        updated_after: datetime | None = None,
    ) -> Response:
        chosen = selected_fields(fields)
        if job_type not in (None, JOB_TYPE):
            return Response(
                json.dumps(paged(page, page_size, 0, [])).encode(), media_type="application/json"
            )
        # HUMAN App polls this listing for every worker: identical queries within
        # JOB_LIST_CACHE_S share one database round trip (the answer may be that old).
        key = (escrow_address, chain_id, status, sort.lower(), sort_field, page, page_size,
               chosen, created_after, updated_after)  # fmt: skip
        body, fresh = listing_cache.peek(key, stale_s=STALE_S)
        if body is None:
            body = await refresh(key)
        elif not fresh and listing_cache.claim_refresh(key):
            task = asyncio.create_task(refresh(key))  # answer now; refresh behind it
            refreshes.add(task)
            task.add_done_callback(refreshes.discard)
        return Response(body, media_type="application/json")

    refreshes: set[asyncio.Task[bytes]] = set()

    async def refresh(key: tuple[Any, ...]) -> bytes:
        try:
            body: bytes = await run_in_threadpool(lambda: json.dumps(_list_jobs(*key)).encode())
            listing_cache.put(key, body)
            return body
        finally:
            listing_cache.done_refresh(key)

    def _list_jobs(
        escrow_address: str | None,
        chain_id: int | None,
        status: str,
        sort: str,
        sort_field: str,
        page: int,
        page_size: int,
        fields: tuple[str, ...],
        created_after: datetime | None,
        updated_after: datetime | None,
    ) -> dict[str, Any]:
        filters: list[ColumnElement[bool]] = [escrows.c.status.in_(LISTED[status])]
        if status == "active":
            filters.append(escrows.c.suspended == 0)
        if escrow_address:
            filters.append(func.lower(escrows.c.escrow_address) == escrow_address.lower())
        if chain_id is not None:
            filters.append(escrows.c.chain_id == chain_id)
        if created_after:
            filters.append(escrows.c.created_at > created_after)
        if updated_after:
            filters.append(escrows.c.updated_at > updated_after)
        # Rewards are whole numbers stored as text: by length, then by text, is by value.
        # Every escrow here is audio_transcription, so job_type orders like created_at.
        by_field: dict[str, list[Any]] = {
            "reward_amount": [func.length(escrows.c.reward_per_job), escrows.c.reward_per_job],
            "job_type": [],
        }
        columns = by_field[sort_field] if sort_field in by_field else [escrows.c[sort_field]]
        columns += [escrows.c.created_at] if sort_field != "created_at" else []
        order = [c.asc() if sort == "asc" else c.desc() for c in columns] + [escrows.c.id]
        with context().sessions() as session:
            # Counted over the filters alone: an index-only scan, not a fetch of every row.
            total = session.execute(
                select(func.count()).select_from(escrows).where(*filters)
            ).scalar_one()
            rows = session.execute(
                select(escrows)
                .where(*filters)
                .order_by(*order)
                .offset(page * page_size)
                .limit(page_size)
            ).all()
        results = []
        for row in rows:
            annotation = (row.manifest or {}).get("annotation", {})
            item: dict[str, Any] = {
                "escrow_address": row.escrow_address,
                "chain_id": row.chain_id,
                "job_type": JOB_TYPE,
                "status": STATUS_OF.get(row.status, row.status),
                "updated_at": iso_z(row.updated_at),
                "qualifications": annotation.get("qualifications") or [],
            }
            extra = {
                "job_description": annotation.get("description") or "",
                "reward_amount": hmt(row.reward_per_job),
                "reward_token": "HMT",
                "created_at": iso_z(row.created_at),
            }
            item.update({k: extra[k] for k in fields})
            results.append(item)
        return paged(page, page_size, total, results)

    @router.post("/register", summary="Bind the worker's wallet to an annotation account")
    def register(
        token: Annotated[TokenClaims, Depends(wallet_of)], body: RegisterRequest | None = None
    ) -> dict[str, Any]:
        ctx = context()
        wallet = token.wallet_address or ""
        email = (body and body.email) or token.email or f"{wallet.lower()}@workers.invalid"
        with ctx.sessions() as session:
            existing = session.execute(
                select(workers).where(workers.c.wallet_address == wallet)
            ).first()
        if existing is not None and existing.cvat_user_id is not None:
            return {"wallet_address": wallet, "email": existing.email, "registered": True}
        username = cvat_username(wallet)
        cvat = ctx.cvat()
        try:
            user_id = cvat.find_user(username)
            if user_id is None:
                # CVAT needs an e-mail, unique, and never writes to it here: the worker's own
                # stays with us; CVAT gets one made from the wallet.
                try:
                    user_id = cvat.register_user(
                        username, f"{username}@workers.invalid", secrets.token_urlsafe(18)
                    )
                except CvatApiError:  # registered concurrently by another request
                    user_id = cvat.find_user(username)
                    if user_id is None:
                        raise HTTPException(502, "CVAT refused the worker's account") from None
        finally:
            cvat.close()
        with ctx.sessions() as session, session.begin():
            if existing is None:
                session.execute(
                    insert(workers).values(
                        wallet_address=wallet,
                        email=email,
                        cvat_user_id=user_id,
                        cvat_username=username,
                        created_at=datetime.now().astimezone(),
                    )
                )
            else:
                session.execute(
                    update(workers)
                    .where(workers.c.wallet_address == wallet)
                    .values(cvat_user_id=user_id)
                )
        return {"wallet_address": wallet, "email": email, "registered": True}

    @router.post(
        "/assignment", response_model=AssignmentOut, summary="Take a free job of an escrow"
    )
    async def create_assignment(
        body: AssignmentRequest, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> AssignmentOut:
        ctx = context()

        def run() -> AssignmentOut:
            cvat = ctx.cvat()
            try:
                got = take(
                    ctx.sessions,
                    cvat,
                    wallet=token.wallet_address or "",
                    qualifications=token.qualifications,
                    escrow_address=body.escrow_address,
                    chain_id=body.chain_id,
                )
            finally:
                cvat.close()
            return AssignmentOut(
                assignment_id=got.id,
                escrow_address=got.escrow_address,
                chain_id=got.chain_id,
                status="active",
                reward_amount=hmt(got.reward),
                created_at=got.created_at,
                updated_at=got.created_at,
                expires_at=got.expires_at,
                url=url_for(got.id),
            )

        try:
            return await run_in_threadpool(run)
        except AssignmentRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        except (CvatApiError, Urllib3Error) as exc:  # nothing was assigned: it rolled back
            raise HTTPException(
                503, f"the annotation tool did not answer ({type(exc).__name__}); try again"
            ) from None

    @router.get("/assignment", summary="The worker's assignments")
    def list_assignments(
        token: Annotated[TokenClaims, Depends(wallet_of)],
        status: Literal["active", "validation", "completed", "expired", "canceled", "rejected"]
        | None = None,
        escrow_address: str | None = None,
        chain_id: int | None = None,
        job_type: str | None = None,
        assignment_id: str | None = None,
        created_after: datetime | None = None,
        updated_after: datetime | None = None,
        sort: Sort = "asc",
        sort_field: ASSIGNMENT_SORT = "created_at",
        page: Page = 0,
        page_size: PageSize = 10,
    ) -> dict[str, Any]:
        if job_type not in (None, JOB_TYPE):
            return paged(page, page_size, 0, [])
        query = AssignmentQuery(
            wallet=token.wallet_address or "",
            status=status,
            escrow_address=escrow_address,
            chain_id=chain_id,
            assignment_id=assignment_id,
            created_after=created_after,
            updated_after=updated_after,
            sort=sort.lower(),
            sort_field=sort_field,
        )
        with context().sessions() as session:
            total, rows = listing(session, query, page, page_size)
        results = []
        for r in rows:
            shown = public_status(r.status, r.escrow_status)
            results.append(
                AssignmentOut(
                    assignment_id=r.id,
                    escrow_address=r.escrow_address,
                    chain_id=r.chain_id,
                    status=shown,
                    reward_amount=hmt(r.reward_per_job),
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    expires_at=r.expires_at,
                    url=url_for(r.id) if shown == "active" else None,
                    reject_reason=for_the_worker(r.reject_reason) if shown == "rejected" else None,
                ).model_dump()
            )
        return paged(page, page_size, total, results)

    @router.post("/assignment/resign", summary="Give an active assignment back")
    async def resign_assignment(
        body: ResignRequest, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> dict[str, str]:
        ctx = context()

        def run() -> None:
            cvat = ctx.cvat()
            try:
                resign(
                    ctx.sessions,
                    cvat,
                    wallet=token.wallet_address or "",
                    assignment_id=body.assignment_id,
                )
            finally:
                cvat.close()

        try:
            await run_in_threadpool(run)
        except AssignmentRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        return {"assignment_id": body.assignment_id, "status": "canceled"}

    def owned(wallet: str, assignment_id: str) -> Any:
        """The caller's own assignment with its job and escrow; 404 for anyone else's."""
        with context().sessions() as session:
            row = session.execute(
                select(
                    assignments.c.wallet_address,
                    assignments.c.status,
                    assignments.c.reject_reason,
                    jobs.c.clip_index,
                    jobs.c.clip_key,
                    jobs.c.duration_ms,
                    jobs.c.cvat_job_id,
                    jobs.c.pre_segments,
                    assignments.c.expires_at,
                    escrows.c.escrow_address,
                    escrows.c.chain_id,
                    escrows.c.manifest,
                    escrows.c.cvat_project_id,
                    escrows.c.webhook_secret,
                    escrows.c.id.label("escrow_id"),
                    escrows.c.practice,
                )
                .join(jobs, jobs.c.id == assignments.c.job_id)
                .join(escrows, escrows.c.id == assignments.c.escrow_id)
                .where(assignments.c.id == assignment_id)
            ).first()
        if row is None or row.wallet_address != wallet:
            raise HTTPException(404, f"no assignment {assignment_id} of yours")
        return row

    annotation_routes(router, context, wallet_of, owned)
    practice_routes(router, context, wallet_of, owned)

    @router.get("/stats", summary="The oracle's counts (public, as HUMAN App reads them)")
    def get_oracle_stats() -> dict[str, int]:
        with context().sessions() as session:
            return oracle_stats(session)

    @router.get("/stats/assignment", summary="The worker's assignments by status")
    def get_worker_stats(token: Annotated[TokenClaims, Depends(wallet_of)]) -> dict[str, Any]:
        with context().sessions() as session:
            counts = worker_stats(session, token.wallet_address or "")
        return {
            "wallet_address": token.wallet_address,
            **counts,
            "last_updated": iso_z(datetime.now(UTC)),
        }

    return router

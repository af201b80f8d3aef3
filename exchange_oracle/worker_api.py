"""What HUMAN App calls on behalf of workers: list jobs, register, take and resign
assignments, statistics. Every route needs a HUMAN App ES256 token.

No `from __future__ import annotations` here: FastAPI must see the dependency objects in
the annotations themselves, and they are closures of `worker_router`.
"""

import asyncio
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, EmailStr
from sqlalchemy import ColumnElement, func, insert, select, update

from audio_pipeline.peaks import DEFAULT_ZOOMS
from audio_pipeline.validation import Interval
from exchange_oracle.annotate_api import annotation_routes, completeness
from exchange_oracle.annotate_page import clip_response
from exchange_oracle.assignments import AssignmentRefused, listing, resign, stats, take
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import assignments, escrows, jobs, workers
from oracle_core.auth import AuthError, TokenClaims, bearer_token, verify_token

JOB_TYPE = "audio_transcription"
LISTED = {"active": ["ready"], "completed": ["completed"], "canceled": ["canceled", "failed"]}
STATUS_OF = {
    "ready": "active",
    "completed": "completed",
    "canceled": "canceled",
    "failed": "canceled",
}
FIELDS = (
    "job_description",
    "reward_amount",
    "reward_token",
    "created_at",
    "updated_at",
    "qualifications",
)


STALE_S = 5.0  # while one request refreshes an expired listing, others get the old one


class TtlCache:
    """Answers kept for `ttl_s` seconds by key; 0 turns caching off."""

    def __init__(self, ttl_s: float, max_entries: int = 4096) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: dict[Any, tuple[float, Any]] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()

    def peek(self, key: Any, stale_s: float = 0.0) -> tuple[Any, bool]:
        """(value or None, whether it is fresh); an entry up to `stale_s` past its time is
        still returned, marked stale, so one caller can refresh it while others use it."""
        with self._lock:
            hit = self._items.get(key)
        if hit is None:
            return None, False
        now = time.monotonic()
        if hit[0] > now:
            return hit[1], True
        return (hit[1], False) if hit[0] + stale_s > now else (None, False)

    def claim_refresh(self, key: Any) -> bool:
        """True for the one caller that should refresh a stale entry."""
        with self._lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def done_refresh(self, key: Any) -> None:
        with self._lock:
            self._refreshing.discard(key)

    def put(self, key: Any, value: Any) -> None:
        if self.ttl_s <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._items) >= self.max_entries:
                self._items = {k: v for k, v in self._items.items() if v[0] > now}
            self._items[key] = (now + self.ttl_s, value)


class AssignmentRequest(BaseModel):
    escrow_address: str
    chain_id: int


class ResignRequest(BaseModel):
    assignment_id: str


class DraftSegment(BaseModel):
    start_ms: int
    end_ms: int
    label: str = ""
    transcription: str = ""
    attributes: dict[str, str] = {}


class CheckRequest(BaseModel):
    segments: list[DraftSegment]


class ProblemOut(BaseModel):
    kind: str
    segment: int | None
    message: str


class CheckOut(BaseModel):
    complete: bool
    segments: int
    summary: list[str]
    problems: list[ProblemOut]


class RegisterRequest(BaseModel):
    email: EmailStr | None = None


class AssignmentOut(BaseModel):
    assignment_id: str
    escrow_address: str
    chain_id: int
    job_type: str = JOB_TYPE
    status: str
    reward_amount: str
    reward_token: str = "HMT"
    created_at: datetime
    expires_at: datetime
    updated_at: datetime | None = None
    url: str


def paged(page: int, page_size: int, total: int, results: list[Any]) -> dict[str, Any]:
    """HUMAN App's paging envelope."""
    return {
        "page": page,
        "page_size": page_size,
        "total_pages": math.ceil(total / page_size),
        "total_results": total,
        "results": results,
    }


def hmt(base_units: str | None) -> str:
    return str(Decimal(base_units or 0) / Decimal(10**18))


def worker_router(context: Callable[[], ExchangeContext]) -> APIRouter:
    router = APIRouter(tags=["worker"])

    verified: dict[str, TokenClaims] = {}  # token -> its claims, until the token expires

    async def claims(authorization: Annotated[str | None, Header()] = None) -> TokenClaims:
        try:
            token = bearer_token(authorization)
            known = verified.get(token)
            if known is not None and float(known.raw.get("exp", 0)) > time.time():
                return known
            checked = verify_token(token, context().settings.human_app_public_key)
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None
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
        sort: Literal["asc", "desc"] = "desc",
        sort_field: Literal["created_at", "updated_at", "chain_id", "reward_amount"] = "created_at",
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 10,
        fields: Annotated[list[str] | None, Query()] = None,
        created_after: datetime | None = None,
        updated_after: datetime | None = None,
    ) -> Response:
        unknown = sorted(set(fields or []) - set(FIELDS))
        if unknown:
            raise HTTPException(422, f"unknown field(s) {unknown}; choose from {list(FIELDS)}")
        if job_type not in (None, JOB_TYPE):
            return Response(
                json.dumps(paged(page, page_size, 0, [])).encode(), media_type="application/json"
            )
        # HUMAN App polls this listing for every worker: identical queries within
        # JOB_LIST_CACHE_S share one database round trip (the answer may be that old).
        key = (escrow_address, chain_id, status, sort, sort_field, page, page_size,
               tuple(fields or ()), created_after, updated_after)  # fmt: skip
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
            body: bytes = await run_in_threadpool(
                lambda: json.dumps(jsonable_encoder(_list_jobs(*key))).encode()
            )
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
        if escrow_address:
            filters.append(escrows.c.escrow_address == escrow_address)
        if chain_id is not None:
            filters.append(escrows.c.chain_id == chain_id)
        if created_after:
            filters.append(escrows.c.created_at > created_after)
        if updated_after:
            filters.append(escrows.c.updated_at > updated_after)
        # Rewards are whole numbers stored as text: by length, then by text, is by value.
        columns = (
            [func.length(escrows.c.reward_per_job), escrows.c.reward_per_job]
            if sort_field == "reward_amount"
            else [getattr(escrows.c, sort_field)]
        )
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
                .offset((page - 1) * page_size)
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
            }
            extra = {
                "job_description": annotation.get("description", ""),
                "reward_amount": hmt(row.reward_per_job),
                "reward_token": "HMT",
                "created_at": row.created_at,
                "updated_at": row.updated_at,
                "qualifications": annotation.get("qualifications", []),
            }
            item.update({k: extra[k] for k in (fields or [])})
            results.append(item)
        return paged(page, page_size, total, results)

    @router.post("/register", summary="Bind the worker's wallet to an annotation account")
    def register(
        body: RegisterRequest, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> dict[str, Any]:
        ctx = context()
        wallet = token.wallet_address or ""
        email = body.email or token.email or f"{wallet.lower()}@workers.invalid"
        with ctx.sessions() as session:
            existing = session.execute(
                select(workers).where(workers.c.wallet_address == wallet)
            ).first()
        if existing is not None and existing.cvat_user_id is not None:
            return {"wallet_address": wallet, "email": existing.email, "registered": True}
        cvat = ctx.cvat()
        try:
            user_id = cvat.find_user(email) or cvat.register_user(
                f"w{wallet.lower()[2:14]}", email, secrets.token_urlsafe(18)
            )
        finally:
            cvat.close()
        with ctx.sessions() as session, session.begin():
            if existing is None:
                session.execute(
                    insert(workers).values(
                        wallet_address=wallet,
                        email=email,
                        cvat_user_id=user_id,
                        cvat_username=f"w{wallet.lower()[2:14]}",
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
                expires_at=got.expires_at,
                url=url_for(got.id),
            )

        try:
            return await run_in_threadpool(run)
        except AssignmentRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None

    @router.get("/assignment", summary="The worker's assignments")
    def list_assignments(
        token: Annotated[TokenClaims, Depends(wallet_of)],
        status: Literal["active", "completed", "expired", "canceled", "rejected", "validation"]
        | None = None,
        escrow_address: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        with context().sessions() as session:
            total, rows = listing(
                session, token.wallet_address or "", status, escrow_address, page, page_size
            )
        results = [
            AssignmentOut(
                assignment_id=r.id,
                escrow_address=r.escrow_address,
                chain_id=r.chain_id,
                status=r.status,
                reward_amount=hmt(r.reward_per_job),
                created_at=r.created_at,
                expires_at=r.expires_at,
                updated_at=r.finished_at,
                url=url_for(r.id),
            ).model_dump()
            for r in rows
        ]
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
                )
                .join(jobs, jobs.c.id == assignments.c.job_id)
                .join(escrows, escrows.c.id == assignments.c.escrow_id)
                .where(assignments.c.id == assignment_id)
            ).first()
        if row is None or row.wallet_address != wallet:
            raise HTTPException(404, f"no assignment {assignment_id} of yours")
        return row

    annotation_routes(router, context, wallet_of, owned)

    @router.get(
        "/assignment/{assignment_id}/audio",
        summary="The assignment's clip (MP3)",
        response_class=Response,
    )
    def assignment_audio(
        assignment_id: str,
        token: Annotated[TokenClaims, Depends(wallet_of)],
        range: Annotated[str | None, Header()] = None,
    ) -> Response:
        row = owned(token.wallet_address or "", assignment_id)
        ctx = context()
        return clip_response(ctx.storage, ctx.settings.storage_bucket, row.clip_key, range)

    @router.get(
        "/assignment/{assignment_id}/peaks",
        summary="Waveform peaks (audiowaveform v2)",
        response_class=Response,
    )
    def assignment_peaks(
        assignment_id: str,
        token: Annotated[TokenClaims, Depends(wallet_of)],
        zoom: int = 20,
    ) -> Response:
        if zoom not in DEFAULT_ZOOMS:
            raise HTTPException(422, f"zoom must be one of {list(DEFAULT_ZOOMS)} pixels per second")
        row = owned(token.wallet_address or "", assignment_id)
        ctx = context()
        key = f"{row.escrow_address}@{row.chain_id}/peaks/{row.clip_index:04d}-{zoom}.json"
        return Response(
            ctx.storage.get(ctx.settings.storage_bucket, key),
            media_type="application/json",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    @router.post(
        "/assignment/{assignment_id}/check",
        response_model=CheckOut,
        summary="Completeness of a draft annotation (labels, transcriptions, attributes, "
        "bounds, overlaps): live feedback, no ground truth involved",
    )
    def check_assignment(
        assignment_id: str,
        body: CheckRequest,
        token: Annotated[TokenClaims, Depends(wallet_of)],
    ) -> CheckOut:
        row = owned(token.wallet_address or "", assignment_id)
        drafts = [
            Interval(d.start_ms, d.end_ms, d.label, d.transcription, d.attributes)
            for d in body.segments
        ]
        return CheckOut.model_validate(completeness(row.manifest, row.duration_ms, drafts))

    @router.get("/stats", summary="The oracle's counts")
    def oracle_stats(token: Annotated[TokenClaims, Depends(claims)]) -> dict[str, int]:
        with context().sessions() as session:
            return stats(session)

    @router.get("/stats/assignment", summary="The worker's assignments by status")
    def worker_stats(token: Annotated[TokenClaims, Depends(wallet_of)]) -> dict[str, Any]:
        with context().sessions() as session:
            rows = session.execute(
                select(assignments.c.status, func.count())
                .where(assignments.c.wallet_address == token.wallet_address)
                .group_by(assignments.c.status)
            ).all()
        by_status = {status: int(n) for status, n in rows}
        return {
            "wallet_address": token.wallet_address,
            "assignments": by_status,
            "total": sum(by_status.values()),
        }

    return router

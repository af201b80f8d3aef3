"""Escrows stopped from outside: canceled by the job launcher or the reputation oracle, or
held while abuse is reviewed.

HUMAN's job launcher asks both oracles to stop with `cancellation_requested` once it has
asked the chain to cancel; its reputation oracle sends `escrow_canceled` when the escrow is
canceled and `abuse_detected` when a moderator upholds a worker's report about a job. An
abuse report names the escrow only (HUMAN's services never name a worker in it); when a
sender does name one (`event_data.wallet_address`), that worker gets no new work anywhere
here until `abuse_dismissed`.
"""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from exchange_oracle.assignments import reset_in_cvat
from exchange_oracle.build import BuildContext, BuildFailed
from exchange_oracle.completion import close_escrow, remove_files
from exchange_oracle.db import assignments, escrows, jobs, workers
from oracle_core.db import transaction

CANCELABLE = ("ToCancel", "Cancelled")
LIVE = ("Launched", "Pending", "Partial")


def now() -> datetime:
    return datetime.now(UTC)


def _escrow(ctx: BuildContext, chain_id: int, address: str) -> Any:
    with ctx.sessions() as session:
        return session.execute(
            select(escrows).where(
                escrows.c.chain_id == chain_id, escrows.c.escrow_address == address
            )
        ).first()


def cancel_escrow(ctx: BuildContext, chain_id: int, address: str) -> str:
    """Withdraw every job of an escrow the chain says is being canceled, remove its CVAT
    project and files, and tell the recording oracle (`escrow_cleaned`). Idempotent; for
    an escrow the chain still shows live, BuildFailed (the event is recorded as refused)."""
    state = ctx.chain.read_escrow(address)
    if state.status not in CANCELABLE:
        raise BuildFailed(f"escrow is {state.status}, not being canceled")
    row = _escrow(ctx, chain_id, address)
    if row is None:
        return "unknown escrow"
    if row.status == "canceled":
        return "already canceled"
    if row.cvat_project_id:
        with closing(ctx.cvat()) as cvat:
            cvat.delete_project(row.cvat_project_id)
    removed = remove_files(ctx, chain_id, address)
    with transaction(ctx.sessions) as session:
        session.execute(
            update(assignments)
            .where(assignments.c.escrow_id == row.id, assignments.c.status == "active")
            .values(status="canceled", finished_at=now())
        )
        session.execute(
            update(jobs)
            .where(jobs.c.escrow_id == row.id)
            .values(status="canceled", updated_at=now())
        )
        close_escrow(session, row, "canceled", state.recording_oracle, removed)
    return "canceled"


def report_abuse(ctx: BuildContext, chain_id: int, address: str, data: dict[str, Any]) -> str:
    """`abuse_detected`: the named worker gets no new work; with no worker named, the
    escrow is held: unlisted, its active assignments ended and their jobs freed."""
    wallet = data.get("wallet_address") or data.get("worker_address")
    if wallet:
        reason = str(data.get("reason") or f"abuse reported in escrow {address}")[:500]
        with transaction(ctx.sessions) as session:
            found = session.execute(
                update(workers)
                .where(workers.c.wallet_address.ilike(str(wallet)))
                .values(blocked_reason=reason)
            ).rowcount  # type: ignore[attr-defined]
        return f"worker {wallet} blocked" if found else f"worker {wallet} is not registered here"
    row = _escrow(ctx, chain_id, address)
    if row is None:
        return "unknown escrow"
    with transaction(ctx.sessions) as session:
        session.execute(
            update(escrows).where(escrows.c.id == row.id).values(suspended=1, updated_at=now())
        )
        active = session.execute(
            select(assignments.c.id, assignments.c.job_id).where(
                assignments.c.escrow_id == row.id, assignments.c.status == "active"
            )
        ).all()
        for assignment_id, job_id in active:
            session.execute(
                update(assignments)
                .where(assignments.c.id == assignment_id)
                .values(status="canceled", finished_at=now())
            )
            session.execute(update(jobs).where(jobs.c.id == job_id).values(status="free"))
        freed = session.execute(select(jobs).where(jobs.c.id.in_([j for _, j in active]))).all()
    if freed:
        with closing(ctx.cvat()) as cvat:
            for job in freed:
                reset_in_cvat(cvat, job, None)
    return f"escrow suspended, {len(active)} assignments ended"


def dismiss_abuse(ctx: BuildContext, chain_id: int, address: str, data: dict[str, Any]) -> str:
    """`abuse_dismissed`: undo `abuse_detected` (the worker unblocked, or the escrow listed
    again while the chain still shows it live)."""
    wallet = data.get("wallet_address") or data.get("worker_address")
    if wallet:
        with transaction(ctx.sessions) as session:
            session.execute(
                update(workers)
                .where(workers.c.wallet_address.ilike(str(wallet)))
                .values(blocked_reason=None)
            )
        return f"worker {wallet} unblocked"
    if ctx.chain.read_escrow(address).status not in LIVE:
        return "escrow is no longer live: left suspended"
    with transaction(ctx.sessions) as session:
        moved = session.execute(
            update(escrows)
            .where(
                escrows.c.chain_id == chain_id,
                escrows.c.escrow_address == address,
                escrows.c.suspended == 1,
            )
            .values(suspended=0, updated_at=now())
        ).rowcount  # type: ignore[attr-defined]
    return "escrow listed again" if moved else "escrow was not suspended"

"""Giving jobs to workers: one free job per request, never the same job twice, never two
unfinished assignments for one worker in one escrow.

The free job is locked with SELECT ... FOR UPDATE SKIP LOCKED, so concurrent requests take
different jobs instead of queueing on one; partial unique indexes back both rules up. CVAT
is updated inside the same transaction, so if CVAT refuses, nothing is assigned.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from exchange_oracle.cvat import Cvat
from exchange_oracle.db import assignments, escrows, jobs, workers
from oracle_core.errors import Refusal


class AssignmentRefused(Refusal):
    """Why a worker cannot have an assignment."""


@dataclass(frozen=True)
class Assigned:
    id: str
    escrow_address: str
    chain_id: int
    job_id: int
    cvat_job_id: int
    created_at: datetime
    expires_at: datetime
    reward: str


def now() -> datetime:
    return datetime.now(UTC)


class _AllLocked(Exception):
    """Free jobs exist, but other requests hold them; they may yet be released."""


LOCKED_RETRIES = 100
LOCKED_WAIT_S = 0.02


def take(
    sessions: sessionmaker[Session],
    cvat: Cvat,
    *,
    wallet: str,
    qualifications: tuple[str, ...],
    escrow_address: str,
    chain_id: int,
) -> Assigned:
    """Lock and assign a free job. SKIP LOCKED finding nothing while free jobs exist means
    other requests hold them and may roll back (a worker's duplicate request, a CVAT error):
    wait a moment and look again rather than answer "no jobs"."""
    for _ in range(LOCKED_RETRIES):
        try:
            return _take(
                sessions,
                cvat,
                wallet=wallet,
                qualifications=qualifications,
                escrow_address=escrow_address,
                chain_id=chain_id,
            )
        except _AllLocked:
            time.sleep(LOCKED_WAIT_S)
    raise AssignmentRefused(503, "every free job is being assigned right now; try again")


def _take(
    sessions: sessionmaker[Session],
    cvat: Cvat,
    *,
    wallet: str,
    qualifications: tuple[str, ...],
    escrow_address: str,
    chain_id: int,
) -> Assigned:
    with sessions() as session, session.begin():
        escrow = session.execute(
            select(escrows).where(
                escrows.c.chain_id == chain_id, escrows.c.escrow_address == escrow_address
            )
        ).first()
        if escrow is None:
            raise AssignmentRefused(404, f"no job for escrow {escrow_address} on chain {chain_id}")
        if escrow.status != "ready":
            raise AssignmentRefused(400, f"the escrow's jobs are not open ({escrow.status})")
        needed = set((escrow.manifest or {}).get("annotation", {}).get("qualifications") or [])
        if not needed <= set(qualifications):
            raise AssignmentRefused(
                403, f"missing qualification(s): {sorted(needed - set(qualifications))}"
            )
        worker = session.execute(select(workers).where(workers.c.wallet_address == wallet)).first()
        if worker is None or worker.cvat_user_id is None:
            raise AssignmentRefused(400, "register first (POST /register)")
        unfinished = session.execute(
            select(assignments.c.id).where(
                assignments.c.escrow_id == escrow.id,
                assignments.c.wallet_address == wallet,
                assignments.c.status == "active",
            )
        ).first()
        if unfinished is not None:
            raise AssignmentRefused(400, "you already have an unfinished assignment in this escrow")
        # A worker whose work on a job was rejected gets another job; someone else redoes it.
        rejected_before = select(assignments.c.job_id).where(
            assignments.c.escrow_id == escrow.id,
            assignments.c.wallet_address == wallet,
            assignments.c.status == "rejected",
        )
        job = session.execute(
            select(jobs)
            .where(
                jobs.c.escrow_id == escrow.id,
                jobs.c.status == "free",
                jobs.c.id.not_in(rejected_before),
            )
            .order_by(jobs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if job is None:
            free = session.execute(
                select(func.count())
                .select_from(jobs)
                .where(
                    jobs.c.escrow_id == escrow.id,
                    jobs.c.status == "free",
                    jobs.c.id.not_in(rejected_before),
                )
            ).scalar_one()
            if free:
                raise _AllLocked
            raise AssignmentRefused(400, "no free jobs left in this escrow")
        max_time = int(
            (escrow.manifest or {}).get("annotation", {}).get("details", {}).get("max_time", 3600)
        )
        iteration = 1 + int(
            session.execute(
                select(func.count()).select_from(assignments).where(assignments.c.job_id == job.id)
            ).scalar_one()
        )
        created = now()
        assigned = Assigned(
            str(uuid.uuid4()),
            escrow_address,
            chain_id,
            job.id,
            job.cvat_job_id,
            created,
            created + timedelta(seconds=max_time),
            escrow.reward_per_job or "0",
        )
        try:
            with session.begin_nested():
                session.execute(
                    insert(assignments).values(
                        id=assigned.id,
                        job_id=job.id,
                        escrow_id=escrow.id,
                        wallet_address=wallet,
                        status="active",
                        iteration=iteration,
                        created_at=created,
                        expires_at=assigned.expires_at,
                    )
                )
        except IntegrityError:
            raise AssignmentRefused(
                400, "you already have an unfinished assignment in this escrow"
            ) from None
        session.execute(
            update(jobs).where(jobs.c.id == job.id).values(status="assigned", updated_at=created)
        )
        reset_in_cvat(cvat, job, worker.cvat_user_id)
    return assigned


def reset_in_cvat(cvat: Cvat, job: Any, assignee: int | None) -> None:
    """A job starts from its pre-segments, in state new, with its assignee set (or cleared)."""
    labels = None
    intervals = []
    if job.pre_segments:
        labels = labels or _first_label(cvat, job.cvat_job_id)
        intervals = [
            {"label_id": labels, "start": a, "stop": b, "source": "auto"}
            for a, b in job.pre_segments
        ]
    cvat.put_intervals(job.cvat_job_id, intervals)
    cvat.assign(job.cvat_job_id, assignee)
    cvat.set_state(job.cvat_job_id, "new")


def _first_label(cvat: Cvat, job_id: int) -> int:
    page, _ = cvat.client.api_client.labels_api.list(job_id=job_id)
    return int(page.results[0].id)


def resign(sessions: sessionmaker[Session], cvat: Cvat, *, wallet: str, assignment_id: str) -> None:
    with sessions() as session, session.begin():
        row = session.execute(
            select(assignments).where(assignments.c.id == assignment_id).with_for_update()
        ).first()
        if row is None or row.wallet_address != wallet:
            raise AssignmentRefused(404, f"no assignment {assignment_id} of yours")
        if row.status != "active":
            raise AssignmentRefused(400, f"the assignment is {row.status}, not active")
        session.execute(
            update(assignments)
            .where(assignments.c.id == assignment_id)
            .values(status="canceled", finished_at=now())
        )
        job = session.execute(select(jobs).where(jobs.c.id == row.job_id)).one()
        session.execute(
            update(jobs).where(jobs.c.id == row.job_id).values(status="free", updated_at=now())
        )
        reset_in_cvat(cvat, job, None)


def listing(
    session: Session,
    wallet: str,
    status: str | None,
    escrow_address: str | None,
    page: int,
    page_size: int,
) -> tuple[int, list[Any]]:
    query = (
        select(assignments, escrows.c.escrow_address, escrows.c.chain_id, escrows.c.reward_per_job)
        .join(escrows, escrows.c.id == assignments.c.escrow_id)
        .where(assignments.c.wallet_address == wallet)
    )
    if status:
        query = query.where(assignments.c.status == status)
    if escrow_address:
        query = query.where(escrows.c.escrow_address == escrow_address)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(
        query.order_by(assignments.c.created_at.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return int(total), list(rows)


def stats(session: Session) -> dict[str, int]:
    def count(table: Any, *where: Any) -> int:
        return int(
            session.execute(
                select(func.count()).select_from(table).where(and_(true(), *where))
            ).scalar_one()
        )

    return {
        "escrows_ready": count(escrows, escrows.c.status == "ready"),
        "jobs_total": count(jobs),
        "jobs_free": count(jobs, jobs.c.status == "free"),
        "assignments_active": count(assignments, assignments.c.status == "active"),
        "assignments_completed": count(assignments, assignments.c.status == "completed"),
        "workers": count(workers),
    }

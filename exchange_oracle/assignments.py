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

from audio_pipeline.validation import names_a_honeypot
from exchange_oracle import practice
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
        if escrow.suspended:
            raise AssignmentRefused(400, "the escrow is suspended while abuse is reviewed")
        needed = set((escrow.manifest or {}).get("annotation", {}).get("qualifications") or [])
        if not needed <= set(qualifications):
            raise AssignmentRefused(
                403, f"missing qualification(s): {sorted(needed - set(qualifications))}"
            )
        if escrow.practice:
            tries = practice.standing(
                session, escrow.id, wallet, practice.settings_of(escrow.manifest)
            )
            if tries["turned_away"]:
                raise AssignmentRefused(
                    403,
                    f"this escrow's jobs need its practice clip passed; {tries['attempts']} "
                    "tries did not pass it",
                )
        worker = session.execute(select(workers).where(workers.c.wallet_address == wallet)).first()
        if worker is None or worker.cvat_user_id is None:
            raise AssignmentRefused(400, "register first (POST /register)")
        if worker.blocked_reason:
            raise AssignmentRefused(403, f"no new work for this wallet: {worker.blocked_reason}")
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
    """A job starts from what it was packed with (its pre-segments, and the suggestions or
    drafts it got), in state new, with its assignee set (or cleared)."""
    labels = None
    intervals = list(job.start_intervals or [])
    if not intervals and job.pre_segments:
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


FINISHED = ("recorded", "completed")  # the escrow's results are on chain


def public_status(status: str, escrow_status: str) -> str:
    """HUMAN App's assignment status: completed work is `validation` until the recording
    oracle has accepted the escrow's results."""
    if status == "completed" and escrow_status not in FINISHED:
        return "validation"
    return status


@dataclass(frozen=True)
class AssignmentQuery:
    """The filters and order HUMAN App may send to `GET /assignment`."""

    wallet: str
    status: str | None = None
    escrow_address: str | None = None
    chain_id: int | None = None
    assignment_id: str | None = None
    created_after: datetime | None = None
    updated_after: datetime | None = None
    sort: str = "asc"
    sort_field: str = "created_at"


def for_the_worker(reason: str | None) -> str | None:
    """The recording oracle's reasons as the rejected worker may read them: the score
    against the target and what was wrong with their own segments; never where a honeypot
    lies (audio_pipeline.validation says which parts do)."""
    if not reason:
        return None
    parts = [p.strip() for p in reason.split(";")]
    kept = [p for p in parts if p and not names_a_honeypot(p)]
    hidden = len(parts) - len(kept)
    if hidden:
        kept.append(f"{hidden} more about the hidden test segments (not shown)")
    return "; ".join(kept)


def listing(
    session: Session, q: AssignmentQuery, page: int, page_size: int
) -> tuple[int, list[Any]]:
    """One page (from 0) of a worker's assignments, with the escrow fields shown beside."""
    query = (
        select(
            assignments,
            escrows.c.escrow_address,
            escrows.c.chain_id,
            escrows.c.reward_per_job,
            escrows.c.status.label("escrow_status"),
        )
        .join(escrows, escrows.c.id == assignments.c.escrow_id)
        .where(assignments.c.wallet_address == q.wallet)
    )
    if q.status == "validation":
        query = query.where(assignments.c.status == "completed", escrows.c.status.not_in(FINISHED))
    elif q.status == "completed":
        query = query.where(assignments.c.status == "completed", escrows.c.status.in_(FINISHED))
    elif q.status:
        query = query.where(assignments.c.status == q.status)
    if q.escrow_address:
        query = query.where(func.lower(escrows.c.escrow_address) == q.escrow_address.lower())
    if q.chain_id is not None:
        query = query.where(escrows.c.chain_id == q.chain_id)
    if q.assignment_id:
        query = query.where(assignments.c.id == q.assignment_id)
    if q.created_after:
        query = query.where(assignments.c.created_at > q.created_after)
    if q.updated_after:
        # Times go out to the millisecond (as HUMAN App writes them), so "after" means
        # after that millisecond: what HUMAN App last saw is not sent again.
        last_seen = q.updated_after.replace(microsecond=q.updated_after.microsecond // 1000 * 1000)
        query = query.where(assignments.c.updated_at > last_seen + timedelta(microseconds=999))
    by_field: dict[str, list[Any]] = {
        "reward_amount": [func.length(escrows.c.reward_per_job), escrows.c.reward_per_job],
        "chain_id": [escrows.c.chain_id],
        "job_type": [],  # one job type here
        "status": [assignments.c.status],
    }
    columns = by_field[q.sort_field] if q.sort_field in by_field else [assignments.c[q.sort_field]]
    if q.sort_field != "created_at":
        columns.append(assignments.c.created_at)
    order = [c.asc() if q.sort == "asc" else c.desc() for c in columns] + [assignments.c.id]
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(*order).offset(page * page_size).limit(page_size)).all()
    return int(total), list(rows)


def _count(session: Session, table: Any, *where: Any) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(table).where(and_(true(), *where))
        ).scalar_one()
    )


def oracle_stats(session: Session) -> dict[str, int]:
    """HUMAN App's oracle statistics (its field names), then our own extras."""
    a, e = assignments.c, escrows.c
    return {
        "escrows_processed": _count(session, escrows),
        "escrows_active": _count(
            session, escrows, e.status.in_(("ready", "exporting", "validation"))
        ),
        "escrows_cancelled": _count(session, escrows, e.status == "canceled"),
        "workers_total": _count(session, workers),
        "assignments_completed": _count(session, assignments, a.status == "completed"),
        "assignments_rejected": _count(session, assignments, a.status == "rejected"),
        "assignments_expired": _count(session, assignments, a.status == "expired"),
        "assignments_active": _count(session, assignments, a.status == "active"),
        "jobs_total": _count(session, jobs),
        "jobs_free": _count(session, jobs, jobs.c.status == "free"),
    }


def worker_stats(session: Session, wallet: str) -> dict[str, int]:
    """One worker's counts under HUMAN App's names (it reads `assignments_amount`, HUMAN's
    oracles write `assignments_total`: both are given)."""
    rows = session.execute(
        select(assignments.c.status, func.count())
        .where(assignments.c.wallet_address == wallet)
        .group_by(assignments.c.status)
    ).all()
    by = {status: int(n) for status, n in rows}
    total = sum(by.values())
    return {
        "assignments_total": total,
        "assignments_amount": total,
        "submissions_sent": by.get("completed", 0) + by.get("rejected", 0),
        "assignments_completed": by.get("completed", 0),
        "assignments_rejected": by.get("rejected", 0),
        "assignments_expired": by.get("expired", 0),
        "assignments_active": by.get("active", 0),
        "assignments_canceled": by.get("canceled", 0),
    }

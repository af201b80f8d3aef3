"""What happens to assignments after they are taken: completion reported by CVAT (webhook or
reconciliation), and expiry, which asks CVAT first so finished work is never thrown away."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from exchange_oracle.assignments import reset_in_cvat
from exchange_oracle.completion import complete_assignment
from exchange_oracle.cvat import Cvat
from exchange_oracle.db import assignments, escrows, jobs
from oracle_core.body_guard import BodyRefused, loads
from oracle_core.errors import Refusal

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "x-signature-256"


class CvatWebhookRejected(Refusal):
    """A CVAT delivery we do not accept."""


def now() -> datetime:
    return datetime.now(UTC)


def verify_cvat_webhook(
    sessions: sessionmaker[Session], raw: bytes, signature: str | None
) -> dict[str, Any]:
    """HMAC-SHA256 of the raw body with the secret of the escrow whose project sent it."""
    try:
        doc = loads(raw)
        project_id = int(doc["job"]["project_id"]) if "job" in doc else None
    except BodyRefused as exc:
        raise CvatWebhookRejected(exc.status, exc.message) from None
    except (ValueError, KeyError, TypeError):
        raise CvatWebhookRejected(422, "not a CVAT webhook body") from None
    if project_id is None:
        raise CvatWebhookRejected(422, "no job in the webhook body")
    with sessions() as session:
        secret = session.execute(
            select(escrows.c.webhook_secret).where(escrows.c.cvat_project_id == project_id)
        ).scalar()
    # An unknown project is answered like a bad signature: which ids exist stays unsaid.
    key = (secret or secrets.token_hex(24)).encode()
    expected = "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest()
    if secret is None or not signature or not hmac.compare_digest(signature, expected):
        raise CvatWebhookRejected(401, "bad or missing X-Signature-256")
    return dict(doc)


def completes(doc: dict[str, Any]) -> bool:
    """Whether an `update:job` delivery is the job's move to completed. CVAT (2.7x) also
    sends `update:job` on every annotation save, and says what changed in `changes`; an
    older CVAT without `changes` says what the state was in `before_update`."""
    if doc.get("event") != "update:job" or doc.get("job", {}).get("state") != "completed":
        return False
    changes = doc.get("changes")
    if isinstance(changes, dict):
        return (changes.get("state") or {}).get("to") == "completed"
    before = doc.get("before_update") or {}
    return "state" in before and before["state"] != "completed"


def job_completed_in_cvat(
    sessions: sessionmaker[Session], cvat_job_id: int, project_id: int | None = None
) -> tuple[str, int | None]:
    """The active assignment of this CVAT job is done, if it has not expired. Returns what
    happened and, when this finished the escrow's last job, the escrow's id to export. With
    `project_id` (a webhook's), the job must belong to that project's escrow."""
    with sessions() as session, session.begin():
        job = session.execute(
            select(jobs).where(jobs.c.cvat_job_id == cvat_job_id).with_for_update()
        ).first()
        if job is None:
            return "unknown job", None
        if project_id is not None:
            owner = session.execute(
                select(escrows.c.cvat_project_id).where(escrows.c.id == job.escrow_id)
            ).scalar()
            if owner != project_id:
                return "job of another project", None
        active = session.execute(
            select(assignments).where(
                assignments.c.job_id == job.id, assignments.c.status == "active"
            )
        ).first()
        if active is None:
            return "no active assignment", None
        if active.expires_at < now():
            return "expired", None  # the expiry task frees the job
        return "completed", complete_assignment(session, active.id, job.id)


def reconcile(sessions: sessionmaker[Session], cvat: Cvat) -> tuple[int, list[int]]:
    """Ask CVAT about every active assignment, so a lost webhook delays a completion but
    never loses it. Returns how many were completed and the escrows now ready to export."""
    with sessions() as session:
        active = (
            session.execute(
                select(jobs.c.cvat_job_id)
                .join(assignments, assignments.c.job_id == jobs.c.id)
                .where(assignments.c.status == "active", assignments.c.expires_at >= now())
            )
            .scalars()
            .all()
        )
    completed, finished = 0, []
    for cvat_job_id in active:
        if cvat.job_state(cvat_job_id) != "completed":
            continue
        result, escrow_id = job_completed_in_cvat(sessions, cvat_job_id)
        completed += result == "completed"
        if escrow_id is not None:
            finished.append(escrow_id)
    return completed, finished


def expire(sessions: sessionmaker[Session], cvat: Cvat) -> dict[str, Any]:
    """Active assignments past their time: completed if CVAT says so, else back to the pool.
    `finished` lists escrows whose last job this completed."""
    counts: dict[str, Any] = {"completed": 0, "expired": 0, "finished": []}
    with sessions() as session:
        due = session.execute(
            select(assignments.c.id, jobs.c.cvat_job_id)
            .join(jobs, jobs.c.id == assignments.c.job_id)
            .where(assignments.c.status == "active", assignments.c.expires_at < now())
        ).all()
    for assignment_id, cvat_job_id in due:
        state = cvat.job_state(cvat_job_id)
        with sessions() as session, session.begin():
            row = session.execute(
                select(assignments).where(assignments.c.id == assignment_id).with_for_update()
            ).first()
            if row is None or row.status != "active":
                continue
            job = session.execute(select(jobs).where(jobs.c.id == row.job_id)).one()
            if state == "completed":
                # Finished in time as far as CVAT knows, but its webhook never reached us.
                escrow_id = complete_assignment(session, row.id, job.id)
                if escrow_id is not None:
                    counts["finished"].append(escrow_id)
                counts["completed"] += 1
                continue
            session.execute(
                update(assignments)
                .where(assignments.c.id == row.id)
                .values(status="expired", finished_at=now())
            )
            session.execute(update(jobs).where(jobs.c.id == job.id).values(status="free"))
            reset_in_cvat(cvat, job, None)
            counts["expired"] += 1
    return counts

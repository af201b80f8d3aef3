"""After the annotating: the escrow's last job done -> every job's annotations exported to the
bucket with `annotation_meta.json` -> `job_finished` to the recording oracle. Rejected work
goes back to the pool; an accepted escrow is closed, and a paid one cleaned up.

Each step is guarded by the escrow's status in the same transaction that enqueues its
event, so a retried or duplicated step never sends an event twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from audio_pipeline.clips import TimeMap
from audio_pipeline.segments import TRANSCRIPTION, Segment, write_generic_tsv
from exchange_oracle.build import BuildContext, prefix
from exchange_oracle.cvat import Cvat
from exchange_oracle.db import assignments, escrows, events, jobs
from oracle_core import human_layout
from oracle_core.db import transaction
from oracle_core.events import enqueue

log = logging.getLogger(__name__)
OPEN_JOB = ("pending", "free", "assigned")


def now() -> datetime:
    return datetime.now(UTC)


def complete_assignment(session: Session, assignment_id: str, job_id: int) -> int | None:
    """The assignment and its job are done. If that was the escrow's last open job, the
    escrow moves to `exporting` and its id is returned (the caller schedules the export)."""
    session.execute(
        update(assignments)
        .where(assignments.c.id == assignment_id)
        .values(status="completed", finished_at=now())
    )
    escrow_id = session.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(status="completed", updated_at=now())
        .returning(jobs.c.escrow_id)
    ).scalar_one()
    still_open = session.execute(
        select(func.count())
        .select_from(jobs)
        .where(jobs.c.escrow_id == escrow_id, jobs.c.status.in_(OPEN_JOB))
    ).scalar_one()
    if still_open:
        return None
    moved = session.execute(
        update(escrows)
        .where(escrows.c.id == escrow_id, escrows.c.status == "ready")
        .values(status="exporting", updated_at=now())
    ).rowcount  # type: ignore[attr-defined]
    return int(escrow_id) if moved else None


def clip_name(clip_index: int) -> str:
    return f"clip-{clip_index:04d}.mp3"


def annotations_of(cvat: Cvat, project_id: int, job: Any) -> list[Segment]:
    """A CVAT job's intervals as segments in clip time (seconds), names instead of ids."""
    labels = cvat.labels(project_id)
    by_id = {spec.id: spec for spec in labels.values()}
    out = []
    for n, item in enumerate(sorted(cvat.intervals(job.cvat_job_id), key=lambda i: i["start"])):
        spec = by_id.get(item["label_id"])
        names = {v: k for k, v in spec.attributes.items()} if spec else {}
        values = {
            names.get(a["spec_id"], str(a["spec_id"])): a["value"] for a in item["attributes"]
        }
        stop = item["stop"] if item["stop"] is not None else job.duration_ms
        out.append(
            Segment(
                start=item["start"] / 1000,
                end=stop / 1000,
                label=spec.name if spec else str(item["label_id"]),
                transcription=values.pop(TRANSCRIPTION, ""),
                attributes=values,
                filename=clip_name(job.clip_index),
                id=n + 1,
                source=item["source"],
                score=item["score"],
            )
        )
    return out


def export_escrow(ctx: BuildContext, escrow_id: int) -> str:
    """Upload each job's final annotations (Generic TSV, clip time) and the escrow's
    `annotation_meta.json` (jobs, time maps, honeypot regions, assignments, wallets,
    bounties); then send `job_finished` to the recording oracle, once per iteration."""
    with ctx.sessions() as session:
        escrow = session.execute(select(escrows).where(escrows.c.id == escrow_id)).first()
        if escrow is None or escrow.status != "exporting":
            return f"skipped ({escrow.status if escrow else 'unknown escrow'})"
        rows = session.execute(
            select(
                jobs,
                assignments.c.id.label("assignment_id"),
                assignments.c.wallet_address,
                assignments.c.iteration.label("attempt"),
            )
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .where(jobs.c.escrow_id == escrow_id, assignments.c.status == "completed")
            .order_by(jobs.c.clip_index)
        ).all()
    iteration = escrow.iteration + 1
    base = prefix(escrow.chain_id, escrow.escrow_address)
    folder = f"{base}/annotations/{iteration:02d}"
    bucket = ctx.settings.storage_bucket
    entries = []
    cvat = ctx.cvat()
    try:
        for row in rows:
            tsv = write_generic_tsv(annotations_of(cvat, escrow.cvat_project_id, row))
            key = f"{folder}/{row.assignment_id}.tsv"
            ctx.storage.put(bucket, key, tsv.encode(), "text/tab-separated-values")
            human_key = human_layout.annotation_key(
                escrow.chain_id, escrow.escrow_address, row.cvat_job_id, row.assignment_id
            )
            ctx.storage.put(bucket, human_key, tsv.encode(), "text/tab-separated-values")
            entries.append(
                {
                    "job_id": row.id,
                    "clip_index": row.clip_index,
                    "clip": clip_name(row.clip_index),
                    "clip_url": ctx.storage.presigned_url(bucket, row.clip_key),
                    "duration_ms": row.duration_ms,
                    "time_map": row.time_map,
                    "honeypots": row.honeypots,
                    "assignment_id": row.assignment_id,
                    "annotator_wallet_address": row.wallet_address,
                    "attempt": row.attempt,
                    "annotation_url": ctx.storage.presigned_url(bucket, key),
                    "bounty": escrow.reward_per_job,
                }
            )
    finally:
        cvat.close()
    write_human_layout(ctx, escrow, rows, {e["assignment_id"]: e for e in entries})
    meta = {
        "escrow_address": escrow.escrow_address,
        "chain_id": escrow.chain_id,
        "iteration": iteration,
        "annotation_format": "Generic TSV 1.0, clip time; time_map maps clip ms to source ms",
        "jobs": entries,
    }
    meta_key = f"{folder}/annotation_meta.json"
    ctx.storage.put(bucket, meta_key, json.dumps(meta, indent=1).encode(), "application/json")
    meta_url = ctx.storage.presigned_url(bucket, meta_key)
    recording = ctx.chain.read_escrow(escrow.escrow_address).recording_oracle
    with transaction(ctx.sessions) as session:
        moved = session.execute(
            update(escrows)
            .where(
                escrows.c.id == escrow_id,
                escrows.c.status == "exporting",
                escrows.c.iteration == escrow.iteration,
            )
            .values(status="validation", iteration=iteration, updated_at=now())
        ).rowcount  # type: ignore[attr-defined]
        if not moved:
            return "skipped (exported by another worker)"
        enqueue(
            session,
            events,
            chain_id=escrow.chain_id,
            escrow_address=escrow.escrow_address,
            event_type="job_finished",
            target_address=recording,
            target_role="recording_oracle",
            event_data={
                "iteration": iteration,
                "annotation_meta_url": meta_url,
                "assignments": len(entries),
            },
        )
    return f"iteration {iteration}: {len(entries)} assignments"


def write_human_layout(
    ctx: BuildContext, escrow: Any, rows: Sequence[Any], entries: dict[str, Any]
) -> None:
    """The files HUMAN's recording oracle reads (`oracle_core.human_layout`), beside ours,
    so an escrow may name HUMAN's recording oracle with this exchange oracle."""
    bucket = ctx.settings.storage_bucket
    data = human_layout.data_dir(escrow.chain_id, escrow.escrow_address)
    results = human_layout.results_dir(escrow.chain_id, escrow.escrow_address)
    gt_text = escrow.gt_text or ""
    gt_rows = human_layout.gt_row_ids(gt_text)
    with ctx.sessions() as session:
        every_job = session.execute(
            select(jobs).where(jobs.c.escrow_id == escrow.id).order_by(jobs.c.clip_index)
        ).all()
    clips = [
        human_layout.clip_entry(
            f"clip{j.clip_index:04d}", TimeMap.from_dict(j.time_map), j.honeypots, gt_rows
        )
        for j in every_job
    ]
    task_clips = {str(j.cvat_task_id): f"clip{j.clip_index:04d}" for j in every_job}
    bounty = str(Decimal(escrow.reward_per_job or 0) / Decimal(10**18))
    meta = {
        "jobs": [
            {
                "job_id": row.cvat_job_id,
                "task_id": row.cvat_task_id,
                "annotator_wallet_address": row.wallet_address,
                "assignment_id": row.assignment_id,
                "start_frame": 0,
                "stop_frame": row.duration_ms - 1,
                "assignment_bounty": bounty,
            }
            for row in rows
            if row.assignment_id in entries
        ]
    }
    for key, body, kind in (
        (f"{data}/gt.tsv", gt_text.encode(), "text/tab-separated-values"),
        (f"{data}/assignments.json", json.dumps(clips).encode(), "application/json"),
        (f"{data}/task_clips.json", json.dumps(task_clips).encode(), "application/json"),
        (f"{results}/annotation_meta.json", json.dumps(meta).encode(), "application/json"),
    ):
        ctx.storage.put(bucket, key, body, kind)


def reject_assignments(
    ctx: BuildContext, chain_id: int, address: str, rejected: Sequence[dict[str, Any]]
) -> str:
    """`submission_rejected`: the named assignments become rejected with their reasons and
    their jobs return to the pool (the next taker starts again from the pre-segments)."""
    reasons = {str(item.get("assignment_id")): str(item.get("reason") or "") for item in rejected}
    freed = []
    with transaction(ctx.sessions) as session:
        escrow = session.execute(
            select(escrows).where(
                escrows.c.chain_id == chain_id, escrows.c.escrow_address == address
            )
        ).first()
        if escrow is None:
            return "unknown escrow"
        if escrow.status != "validation":
            # Work is sent back only while it is being validated: never once results are
            # recorded or paid (a paid assignment is not undone), nor before the export.
            return f"ignored: the escrow is {escrow.status}, not in validation"
        rows = session.execute(
            select(assignments)
            .where(
                assignments.c.escrow_id == escrow.id,
                assignments.c.id.in_(list(reasons)),
                assignments.c.status == "completed",
            )
            .with_for_update()
        ).all()
        for row in rows:
            session.execute(
                update(assignments)
                .where(assignments.c.id == row.id)
                .values(status="rejected", reject_reason=reasons[row.id][:2000])
            )
            freed.append(row.job_id)
        # The jobs are reset in CVAT while their rows are locked and before they are free:
        # a worker taking one the instant it is listed again starts from the pre-segments,
        # and nothing resets it under them afterwards.
        _reset_jobs(ctx, session, freed)
        if freed:
            session.execute(
                update(jobs).where(jobs.c.id.in_(freed)).values(status="free", updated_at=now())
            )
            session.execute(
                update(escrows)
                .where(escrows.c.id == escrow.id, escrows.c.status == "validation")
                .values(status="ready", updated_at=now())
            )
    return f"{len(freed)} rejected"


def _reset_jobs(ctx: BuildContext, session: Session, job_ids: Sequence[int]) -> None:
    """Best effort: clear the rejected work in CVAT (taking a job resets it anyway)."""
    if not job_ids:
        return
    from exchange_oracle.assignments import reset_in_cvat

    rows = session.execute(select(jobs).where(jobs.c.id.in_(job_ids)).with_for_update()).all()
    cvat = ctx.cvat()
    try:
        for row in rows:
            try:
                reset_in_cvat(cvat, row, None)
            except Exception as exc:  # CVAT down: the next take resets the job
                log.warning("could not reset CVAT job %s: %s", row.cvat_job_id, exc)
    finally:
        cvat.close()


def escrow_recorded(ctx: BuildContext, chain_id: int, address: str) -> str:
    """`job_completed` from the recording oracle: the results are on the escrow."""
    with transaction(ctx.sessions) as session:
        moved = (
            session.execute(
                update(escrows)
                .where(
                    escrows.c.chain_id == chain_id,
                    escrows.c.escrow_address == address,
                    escrows.c.status.in_(("validation", "exporting", "ready")),
                )
                .values(status="recorded", updated_at=now())
                .returning(escrows.c.id)
            )
            .scalars()
            .all()
        )
        # Their completed work moves from `validation` to `completed` in HUMAN App's eyes.
        session.execute(
            update(assignments)
            .where(assignments.c.escrow_id.in_(moved), assignments.c.status == "completed")
            .values(updated_at=now())
        )
    return "recorded" if moved else "already recorded or unknown"


PAID = ("Paid", "Complete")


def remove_files(ctx: BuildContext, chain_id: int, address: str) -> int:
    """Everything of the escrow in our bucket: ours and HUMAN's layout beside it."""
    bucket = ctx.settings.storage_bucket
    return sum(
        ctx.storage.delete_prefix(bucket, f"{folder}/")
        for folder in (prefix(chain_id, address), human_layout.results_dir(chain_id, address))
    )


class NotPaid(Exception):
    """`escrow_completed` arrived while the chain says otherwise."""


def clean_up(ctx: BuildContext, chain_id: int, address: str) -> str:
    """`escrow_completed` from the reputation oracle: remove the CVAT project and the
    escrow's files from our bucket, then tell the recording oracle (`escrow_cleaned`)."""
    state = ctx.chain.read_escrow(address)
    if state.status not in PAID:
        raise NotPaid(f"escrow is {state.status}, not paid")
    with ctx.sessions() as session:
        escrow = session.execute(
            select(escrows).where(
                escrows.c.chain_id == chain_id, escrows.c.escrow_address == address
            )
        ).first()
    if escrow is None:
        return "unknown escrow"
    if escrow.status == "completed":
        return "already cleaned up"
    if escrow.cvat_project_id:
        cvat = ctx.cvat()
        try:
            cvat.delete_project(escrow.cvat_project_id)
        finally:
            cvat.close()
    removed = remove_files(ctx, chain_id, address)
    with transaction(ctx.sessions) as session:
        close_escrow(session, escrow, "completed", state.recording_oracle, removed)
    return f"cleaned up ({removed} files)"


def close_escrow(
    session: Session, escrow: Any, status: str, recording_oracle: str, removed: int
) -> bool:
    """The escrow's last state (its CVAT project gone), and `escrow_cleaned` to the recording
    oracle, once: False if another worker closed it first."""
    moved = session.execute(
        update(escrows)
        .where(escrows.c.id == escrow.id, escrows.c.status != status)
        .values(status=status, cvat_project_id=None, updated_at=now())
    ).rowcount  # type: ignore[attr-defined]
    if moved:
        enqueue(
            session,
            events,
            chain_id=escrow.chain_id,
            escrow_address=escrow.escrow_address,
            event_type="escrow_cleaned",
            target_address=recording_oracle,
            target_role="recording_oracle",
            event_data={"files_removed": removed},
        )
    return bool(moved)

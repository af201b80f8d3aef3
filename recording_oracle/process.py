"""The recording oracle's work on an escrow.

`job_finished` (iteration n) -> score each assignment not scored before -> reject the
failures back to the exchange oracle, or, when all are accepted (or the iteration limit
is reached), finalise: archive -> upload -> `storeResults` -> `job_completed`.

Every step is keyed by the escrow's status and guarded in the transaction that moves it,
so a duplicated event or a crash between steps resumes without doing anything twice: an
assignment is scored once, the archive's bytes are the same when rebuilt, `storeResults`
is skipped when the chain already holds our hash, and each event is enqueued once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from audio_pipeline.clips import TimeMap
from oracle_core.chain import EscrowState
from oracle_core.db import transaction
from oracle_core.events import enqueue
from oracle_core.ground_truth import GroundTruthError, GtSpan, honeypot_spans, load_gt
from oracle_core.manifest import Manifest, ManifestError, load_manifest
from oracle_core.storage import UnsafeUrlError, fetch_url
from oracle_core.tasks import Refused
from recording_oracle import intake, publish
from recording_oracle import results as final
from recording_oracle.context import RecordingContext
from recording_oracle.db import escrows, events, results
from recording_oracle.scoring import from_json, honeypots, score_export, to_json

log = logging.getLogger(__name__)
OPEN = ("Pending", "Partial")


def now() -> datetime:
    return datetime.now(UTC)


def _escrow(session: Session, chain_id: int, address: str) -> Any:
    row = session.execute(
        select(escrows).where(escrows.c.chain_id == chain_id, escrows.c.escrow_address == address)
    ).first()
    if row is not None:
        return row
    session.execute(
        insert(escrows).values(
            chain_id=chain_id,
            escrow_address=address,
            status="validating",
            iteration=0,
            created_at=now(),
            updated_at=now(),
        )
    )
    return session.execute(
        select(escrows).where(escrows.c.chain_id == chain_id, escrows.c.escrow_address == address)
    ).one()


def _inputs(ctx: RecordingContext, state: EscrowState) -> tuple[Manifest, list[GtSpan]]:
    """The manifest and ground truth, read from the requester's side, never from the
    exchange oracle: it is the party being checked."""
    try:
        manifest = load_manifest(
            state.manifest_url,
            state.manifest_hash,
            ctx.policy,
            ctx.settings.manifest_decryptor(),
        )
        names = [a.name for a in manifest.annotation.shared_attributes]
        # The practice clip's spans were shown to workers with their answers: never scored.
        gt = honeypot_spans(load_gt(manifest.data.bucket("gt_url"), ctx.policy, names))
    except (ManifestError, GroundTruthError, UnsafeUrlError, ValueError) as exc:
        raise Refused(f"cannot validate: {exc}") from None
    return manifest, gt


CANCELABLE = ("ToCancel", "Cancelled")


def on_cancellation(ctx: RecordingContext, chain_id: int, address: str) -> str:
    """`cancellation_requested` from the launcher: once the chain shows the escrow being
    canceled, nothing more is scored or stored for it (a `job_finished` after this is
    answered "already canceled")."""
    state = ctx.chain.read_escrow(address)
    if state.status not in CANCELABLE:
        raise Refused(f"escrow is {state.status}, not being canceled")
    with transaction(ctx.sessions) as session:
        escrow = _escrow(session, chain_id, address)
        if escrow.status in ("recorded", "cleaned"):
            return f"already {escrow.status}: results stay on the escrow"
        session.execute(
            update(escrows)
            .where(escrows.c.id == escrow.id)
            .values(status="canceled", note="canceled by the job launcher", updated_at=now())
        )
    return "canceled"


def on_job_finished(
    ctx: RecordingContext, chain_id: int, address: str, data: dict[str, Any]
) -> str:
    state = ctx.chain.read_escrow(address)
    if state.recording_oracle.lower() != ctx.chain.address.lower():
        raise Refused(f"this oracle ({ctx.chain.address}) is not the escrow's recording oracle")
    with transaction(ctx.sessions) as session:
        escrow = _escrow(session, chain_id, address)
    if escrow.status in ("assembling", "uploaded"):
        return finalize(ctx, escrow.id)
    if escrow.status != "validating":
        return f"already {escrow.status}"
    if state.status not in OPEN:
        raise Refused(f"escrow is {state.status}, not Pending")
    if "annotation_meta_url" in data:  # our exchange oracle
        try:
            iteration = int(data["iteration"])
        except (KeyError, TypeError, ValueError):
            raise Refused("job_finished needs event_data.iteration") from None
        if escrow.iteration >= iteration:
            return f"iteration {iteration} already handled"
        jobs = intake.our_jobs(ctx, chain_id, address, iteration, str(data["annotation_meta_url"]))
    else:  # HUMAN's exchange oracle: no event data, its layout in its bucket
        jobs = intake.peer_jobs(ctx, chain_id, address)
        if not intake.has_new(ctx, escrow.id, jobs):
            return "nothing new to score"
        iteration = escrow.iteration + 1
    manifest, gt = _inputs(ctx, state)
    scored = _score_new(ctx, escrow.id, iteration, jobs, manifest, gt)

    with transaction(ctx.sessions) as session:
        latest = _latest_by_job(session, escrow.id, [str(j["assignment_id"]) for j in jobs])
        failed = [r for r in latest if not r.passed]
        final_round = not failed or iteration >= ctx.settings.max_iterations
        moved = session.execute(
            update(escrows)
            .where(escrows.c.id == escrow.id, escrows.c.iteration < iteration)
            .values(
                iteration=iteration,
                jobs_total=max(escrow.jobs_total or 0, len(jobs)),
                status="assembling" if final_round else "validating",
                note=(
                    f"{len(failed)} job(s) still failed after {iteration} iteration(s) and "
                    "are not paid"
                    if final_round and failed
                    else None
                ),
                updated_at=now(),
            )
        ).rowcount  # type: ignore[attr-defined]
        if not moved:
            return f"iteration {iteration} already handled"
        if not final_round:
            enqueue(
                session,
                events,
                chain_id=chain_id,
                escrow_address=address,
                event_type="submission_rejected",
                target_address=state.exchange_oracle,
                target_role="exchange_oracle",
                event_data={
                    "assignments": [
                        {"assignment_id": r.assignment_id, "reason": "; ".join(r.reasons[:5])}
                        for r in failed
                    ]
                },
            )
    if not final_round:
        return f"iteration {iteration}: {scored} scored, {len(failed)} rejected"
    return finalize(ctx, escrow.id)


def _score_new(
    ctx: RecordingContext,
    escrow_id: int,
    iteration: int,
    jobs: Sequence[dict[str, Any]],
    manifest: Manifest,
    gt: Sequence[GtSpan],
) -> int:
    """Score each assignment of this iteration that has no result yet."""
    with ctx.sessions() as session:
        known = set(
            session.execute(
                select(results.c.assignment_id).where(results.c.escrow_id == escrow_id)
            ).scalars()
        )
    count = 0
    for job in jobs:
        assignment_id = str(job["assignment_id"])
        if assignment_id in known:
            continue
        tmap = TimeMap.from_dict(job["time_map"])
        tsv = job.get("annotation_tsv")
        if tsv is None:
            try:
                tsv = fetch_url(str(job["annotation_url"]), ctx.policy).decode("utf-8", "replace")
            except UnsafeUrlError as exc:
                raise Refused(f"annotation of {assignment_id}: {exc}") from None
        score, intervals = score_export(
            tsv, tmap, gt, manifest.validation_spec(clip_ms=tmap.duration_ms)
        )
        with transaction(ctx.sessions) as session:
            exists = session.execute(
                select(results.c.assignment_id).where(results.c.assignment_id == assignment_id)
            ).first()
            if exists:
                continue
            session.execute(
                insert(results).values(
                    assignment_id=assignment_id,
                    escrow_id=escrow_id,
                    job_id=int(job["job_id"]),
                    clip=str(job.get("clip", "")),
                    wallet_address=str(job["annotator_wallet_address"]),
                    iteration=iteration,
                    metric=score.metric,
                    value=score.value,
                    quality=score.quality,
                    passed=score.passed,
                    reasons=list(score.reasons),
                    honeypots=score.honeypots,
                    attributes=[
                        {
                            "name": a.name,
                            "accuracy": round(a.accuracy, 6),
                            "macro_f1": round(a.macro_f1, 6),
                            "honeypots": a.honeypots,
                            "target": a.target,
                        }
                        for a in score.attributes
                    ],
                    segments=to_json(intervals),
                    time_map=tmap.to_dict(),
                    created_at=now(),
                )
            )
        count += 1
    return count


def _latest_by_job(session: Session, escrow_id: int, assignment_ids: Sequence[str]) -> list[Any]:
    return list(
        session.execute(
            select(results).where(
                results.c.escrow_id == escrow_id, results.c.assignment_id.in_(assignment_ids)
            )
        ).all()
    )


def finalize(ctx: RecordingContext, escrow_id: int) -> str:
    """assembling -> uploaded -> recorded; each step skips what an earlier run finished."""
    with ctx.sessions() as session:
        escrow = session.execute(select(escrows).where(escrows.c.id == escrow_id)).one()
    state = ctx.chain.read_escrow(escrow.escrow_address)
    if escrow.status == "assembling":
        _assemble(ctx, escrow, state)
        with ctx.sessions() as session:
            escrow = session.execute(select(escrows).where(escrows.c.id == escrow_id)).one()
    if escrow.status != "uploaded":
        return f"already {escrow.status}"
    sent = escrow.results_tx  # by a run since killed, perhaps still pending: wait for it
    if state.intermediate_results_hash != escrow.results_hash and not (
        sent and ctx.chain.landed(sent)
    ):
        ctx.chain.store_results(
            escrow.escrow_address,
            escrow.results_url,
            escrow.results_hash,
            int(escrow.funds_reserved),
            on_signed=lambda tx: _note_results_tx(ctx, escrow_id, tx),
        )
    with transaction(ctx.sessions) as session:
        moved = session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id, escrows.c.status == "uploaded")
            .values(status="recorded", updated_at=now())
        ).rowcount  # type: ignore[attr-defined]
        if moved:
            body = {"results_url": escrow.results_url, "results_hash": escrow.results_hash}
            for role in ("reputation_oracle", "exchange_oracle"):
                enqueue(
                    session,
                    events,
                    chain_id=escrow.chain_id,
                    escrow_address=escrow.escrow_address,
                    event_type="job_completed",
                    target_address=state.role_address(role),
                    target_role=role,
                    event_data=body,
                )
    return f"recorded {escrow.results_url}"


def _note_results_tx(ctx: RecordingContext, escrow_id: int, tx_hash: str) -> None:
    """Kept before storeResults is sent: whoever finalizes next waits for this one."""
    with transaction(ctx.sessions) as session:
        session.execute(update(escrows).where(escrows.c.id == escrow_id).values(results_tx=tx_hash))


def _assemble(ctx: RecordingContext, escrow: Any, state: EscrowState) -> None:
    manifest, gt = _inputs(ctx, state)
    with ctx.sessions() as session:
        rows = session.execute(
            select(results)
            .where(results.c.escrow_id == escrow.id)
            .order_by(results.c.job_id, results.c.iteration)
        ).all()
    accepted: dict[int, Any] = {}
    for row in rows:
        if row.passed:
            accepted[row.job_id] = row  # the last accepted assignment of each job
    jobs = []
    for r in accepted.values():
        tmap = TimeMap.from_dict(r.time_map)
        _, zones = honeypots(tmap, gt)
        segments = from_json(r.segments)
        jobs.append(
            final.FinalJob(
                r.job_id, r.clip, r.assignment_id, r.wallet_address, segments, tmap, zones
            )
        )
    total_jobs = max(escrow.jobs_total or 0, len({r.job_id for r in rows}))
    share, payouts = final.payouts(jobs, state.remaining_funds, total_jobs)
    reserved = share * len(jobs)
    rows_out = final.source_rows(jobs)
    validation_meta = {
        **final.validation_meta(rows, accepted),
        "escrow_address": escrow.escrow_address,
        "chain_id": escrow.chain_id,
        "iterations": escrow.iteration,
        "max_iterations": ctx.settings.max_iterations,
        "target": {
            "metric": manifest.annotation.validation.target_metric,
            "score": manifest.annotation.validation.target_score,
        },
        "note": escrow.note,
        "not_accepted": sorted({r.job_id for r in rows} - set(accepted)),
    }
    payouts_doc = {
        "escrow_address": escrow.escrow_address,
        "chain_id": escrow.chain_id,
        "token": state.token,
        "remaining_funds": str(state.remaining_funds),
        "reward_per_job": str(share),
        "total": str(reserved),
        "payouts": payouts,
    }
    files = {
        "annotations.tsv": final.generic_tsv(rows_out).encode(),
        "annotations.json": final.dump(rows_out),
        "validation_meta.json": final.dump(validation_meta),
        "payouts.json": final.dump(payouts_doc),
    }
    files.update(publish.dataset_exports(ctx, manifest, rows_out))
    url, digest = publish.publish_results(ctx, escrow, state, files)
    with transaction(ctx.sessions) as session:
        session.execute(
            update(escrows)
            .where(escrows.c.id == escrow.id, escrows.c.status == "assembling")
            .values(
                status="uploaded",
                results_url=url,
                results_hash=digest,
                funds_reserved=str(reserved),
                updated_at=now(),
            )
        )
    log.info(
        "escrow %s: results %s (%s), %s reserved", escrow.escrow_address, url, digest, reserved
    )

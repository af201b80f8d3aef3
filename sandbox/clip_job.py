"""One listed job made straight from PCM, without a chain or a manifest download: for the
annotator page's browser tests and its benchmark (a two-hour clip would take the full build
minutes of packing). The clip goes through the build's own `publish_clip`, so its MP3,
peaks, CVAT task and VAD pre-segments are exactly what a real escrow gets."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import httpx
import numpy as np
from sqlalchemy import insert

from audio_pipeline import encode_mp3
from exchange_oracle.build import prefix, publish_clip, vad_params
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, jobs
from oracle_core.manifest import Annotation

CHAIN_ID = 1338


def seed_clip_job(
    ctx: ExchangeContext,
    escrow_address: str,
    pcm: np.ndarray,
    rate: int,
    annotation: Annotation,
    *,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> int:
    """A ready escrow with one free job holding `pcm` (mono int16); returns the job's id.
    With `webhook_url`, CVAT reports job changes to the oracle as in a real build."""
    # Its own secret, as a built escrow has: it signs CVAT's webhooks and the audio link.
    webhook_secret = webhook_secret or secrets.token_hex(24)
    bucket = ctx.settings.storage_bucket
    ctx.storage.ensure_bucket(bucket)
    base = prefix(CHAIN_ID, escrow_address)
    cvat = ctx.cvat()
    try:
        project_id = cvat.ensure_project(f"escrow {base}", annotation)
        if webhook_url:
            cvat.ensure_webhook(project_id, webhook_url, webhook_secret)
        label_id = cvat.labels(project_id)[annotation.labels[0].name].id
        duration_ms = len(pcm) * 1000 // rate
        published = publish_clip(
            ctx.storage, bucket, cvat, base, 0, (encode_mp3(pcm, rate), pcm, rate), duration_ms,
            project_id, label_id, vad_params(annotation.details, ctx.settings.vad_engine),
        )  # fmt: skip
    finally:
        cvat.close()
    now = datetime.now(UTC)
    with ctx.sessions() as session, session.begin():
        escrow_id = session.execute(
            insert(escrows)
            .values(
                chain_id=CHAIN_ID,
                escrow_address=escrow_address,
                status="ready",
                created_at=now,
                updated_at=now,
                reward_per_job=str(10**18),
                cvat_project_id=project_id,
                webhook_secret=webhook_secret,
                manifest={"annotation": annotation.model_dump(mode="json")},
            )
            .returning(escrows.c.id)
        ).scalar_one()
        job_pk: int = session.execute(
            insert(jobs)
            .values(
                escrow_id=escrow_id,
                clip_index=0,
                status="free",
                duration_ms=published.frames,
                clip_key=published.key,
                time_map={},
                pre_segments=[[a, b] for a, b in published.segments],
                honeypots=[],
                cvat_task_id=published.task_id,
                cvat_job_id=published.job_id,
                created_at=now,
                updated_at=now,
            )
            .returning(jobs.c.id)
        ).scalar_one()
    return job_pk


def take_job(oracle_url: str, token: str, escrow_address: str) -> str:
    """A worker registers and takes a job of the escrow through the worker API, as HUMAN
    App would; returns the assignment id."""
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{oracle_url}/register", json={}, headers=headers).raise_for_status()
    taken = httpx.post(
        f"{oracle_url}/assignment",
        json={"escrow_address": escrow_address, "chain_id": CHAIN_ID},
        headers=headers,
        timeout=120,
    )
    taken.raise_for_status()
    assignment_id: str = taken.json()["assignment_id"]
    return assignment_id

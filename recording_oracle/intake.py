"""How finished work reaches the recording oracle: our exchange oracle names an
`annotation_meta.json` in `job_finished`; HUMAN's sends `job_finished` bare and leaves its
layout (`oracle_core.human_layout`) in its bucket. Both become the same list of jobs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from oracle_core import human_layout
from oracle_core.storage import BucketUrl, ObjectStorage, UnsafeUrlError, fetch_url
from oracle_core.tasks import Refused
from recording_oracle.context import RecordingContext
from recording_oracle.db import results


def our_jobs(
    ctx: RecordingContext, chain_id: int, address: str, iteration: int, meta_url: str
) -> list[dict[str, Any]]:
    try:
        meta = json.loads(fetch_url(meta_url, ctx.policy))
    except (UnsafeUrlError, ValueError) as exc:
        raise Refused(f"annotation_meta.json at {meta_url}: {exc}") from None
    if (
        str(meta.get("escrow_address", "")).lower() != address.lower()
        or int(meta.get("chain_id", -1)) != chain_id
        or int(meta.get("iteration", -1)) != iteration
    ):
        raise Refused("annotation_meta.json is for another escrow or iteration")
    return list(meta.get("jobs") or [])


def peer_jobs(ctx: RecordingContext, chain_id: int, address: str) -> list[dict[str, Any]]:
    """The jobs HUMAN's exchange oracle finished, from the layout it writes
    (`oracle_core.human_layout`), shaped as our own exchange oracle reports them."""
    where = ctx.settings.exchange_oracle_storage_url
    if not where:
        raise Refused(
            "job_finished without annotation_meta_url comes from HUMAN's exchange oracle: "
            "set EXCHANGE_ORACLE_STORAGE_URL to its bucket to read its layout"
        )
    bucket = BucketUrl.parse(where)
    store = ObjectStorage.for_bucket(bucket, ctx.policy)
    data = human_layout.data_dir(chain_id, address)
    results_dir = human_layout.results_dir(chain_id, address)

    def get(key: str) -> bytes:
        return store.get(bucket.bucket_name, bucket.key(key))

    try:
        peer = human_layout.read_jobs(
            chain_id,
            address,
            get(f"{data}/assignments.json"),
            get(f"{data}/task_clips.json"),
            get(f"{results_dir}/annotation_meta.json"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused(f"HUMAN's exchange oracle layout for {address}: {exc!r}") from None
    return [
        {
            "job_id": job.job_id,
            "assignment_id": job.assignment_id,
            "annotator_wallet_address": job.wallet,
            "time_map": job.time_map.to_dict(),
            "clip": job.clip,
            "annotation_tsv": get(job.annotation_key).decode("utf-8", "replace"),
        }
        for job in peer
    ]


def has_new(ctx: RecordingContext, escrow_id: int, jobs: Sequence[dict[str, Any]]) -> bool:
    with ctx.sessions() as session:
        known = set(
            session.execute(
                select(results.c.assignment_id).where(results.c.escrow_id == escrow_id)
            ).scalars()
        )
    return any(str(j["assignment_id"]) not in known for j in jobs)

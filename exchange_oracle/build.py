"""Escrow -> listed jobs. Each step can be run again after a crash: finished clips are
skipped, CVAT objects are found by name before being made, and job rows are inserted the
moment their CVAT task is ready (so jobs become listable one by one)."""

from __future__ import annotations

import io
import json
import logging
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from audio_pipeline import AudioError, VadParams, analyze, build_clip, compute_peaks, detect_speech
from audio_pipeline.clips import require_source
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.cvat import Cvat
from exchange_oracle.db import assignments, escrows, events, jobs
from exchange_oracle.packing import PackingParams, SourceFile, pack, seed_for
from oracle_core.chain import Chain, ChainError
from oracle_core.db import transaction
from oracle_core.events import enqueue
from oracle_core.ground_truth import GroundTruthError, GtSpan
from oracle_core.ground_truth import read_gt as read_ground_truth
from oracle_core.manifest import Manifest, ManifestError, load_manifest
from oracle_core.storage import (
    ObjectStorage,
    StorageError,
    UnsafeUrlError,
    UrlPolicy,
)

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".webm"}
MAX_FILE_BYTES = 2 * 1024**3


class BuildFailed(Exception):
    """The escrow cannot be built as it stands; the reason is for the requester."""


@dataclass
class BuildContext:
    settings: ExchangeSettings
    sessions: sessionmaker[Session]
    chain: Chain
    storage: ObjectStorage  # the oracle's own bucket
    cvat: Callable[[], Cvat]

    @property
    def policy(self) -> UrlPolicy:
        return self.settings.url_policy()


def now() -> datetime:
    return datetime.now(UTC)


def prefix(chain_id: int, address: str) -> str:
    return f"{address}@{chain_id}"


def register_escrow(session: Session, chain_id: int, address: str) -> int:
    """The escrow's row, made once (status building); returns its id."""
    row = session.execute(
        select(escrows.c.id).where(
            escrows.c.chain_id == chain_id, escrows.c.escrow_address == address
        )
    ).scalar()
    if row is not None:
        return int(row)
    return int(
        session.execute(
            insert(escrows)
            .values(
                chain_id=chain_id,
                escrow_address=address,
                status="building",
                webhook_secret=secrets.token_hex(24),
                created_at=now(),
                updated_at=now(),
            )
            .returning(escrows.c.id)
        ).scalar_one()
    )


def read_gt(text: str) -> list[GtSpan]:
    try:
        return read_ground_truth(text)
    except GroundTruthError as exc:
        raise BuildFailed(str(exc)) from None


def fetch_manifest(ctx: BuildContext, url: str, manifest_hash: str) -> Manifest:
    try:
        return load_manifest(url, manifest_hash, ctx.policy, ctx.settings.manifest_decryptor())
    except ManifestError as exc:
        raise BuildFailed(str(exc)) from None


def download_media(
    ctx: BuildContext, manifest: Manifest, folder: Path
) -> tuple[dict[str, Path], str]:
    """Every audio file under media_url, into `folder`; and the ground truth text."""
    try:
        media = manifest.data.bucket("media_url")
        gt = manifest.data.bucket("gt_url")
        source = ObjectStorage.for_bucket(media, ctx.policy)
        files: dict[str, Path] = {}
        for key, size in source.list(media.bucket_name, media.path):
            name = (
                PurePosixPath(key).relative_to(media.path or ".").as_posix() if media.path else key
            )
            if PurePosixPath(key).suffix.lower() not in AUDIO_SUFFIXES:
                continue
            if size > MAX_FILE_BYTES:
                raise BuildFailed(f"media file {name} is {size} bytes, over the limit")
            path = folder / name.replace("/", "__")
            path.write_bytes(source.get(media.bucket_name, key))
            files[name] = path
        gt_store = ObjectStorage.for_bucket(gt, ctx.policy)
        gt_text = gt_store.get(gt.bucket_name, gt.path).decode("utf-8")
    except (StorageError, UnsafeUrlError, ValueError) as exc:
        raise BuildFailed(f"data: {exc}") from None
    if not files:
        raise BuildFailed(f"no audio files under {media.url}")
    return files, gt_text


def build_escrow(ctx: BuildContext, chain_id: int, address: str) -> int:
    """Build (or finish building) one escrow; returns how many jobs it has. On a reason the
    requester can fix, the escrow is marked failed and `escrow_failed` goes to the launcher."""
    with transaction(ctx.sessions) as session:
        escrow_id = register_escrow(session, chain_id, address)
        row = session.execute(select(escrows).where(escrows.c.id == escrow_id)).one()
    if row.status in ("ready", "failed", "canceled", "completed"):
        return _job_count(ctx, escrow_id)
    try:
        return _build(ctx, escrow_id, chain_id, address, row.webhook_secret)
    except BuildFailed as exc:
        _fail(ctx, escrow_id, chain_id, address, str(exc))
        raise


def _job_count(ctx: BuildContext, escrow_id: int) -> int:
    with ctx.sessions() as session:
        return len(session.execute(select(jobs.c.id).where(jobs.c.escrow_id == escrow_id)).all())


def _fail(ctx: BuildContext, escrow_id: int, chain_id: int, address: str, reason: str) -> None:
    log.warning("escrow %s failed: %s", address, reason)
    try:
        launcher = ctx.chain.read_escrow(address).launcher
    except ChainError:
        launcher = None
    with transaction(ctx.sessions) as session:
        session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id)
            .values(status="failed", failure_reason=reason, updated_at=now())
        )
        if launcher:
            enqueue(
                session,
                events,
                chain_id=chain_id,
                escrow_address=address,
                event_type="escrow_failed",
                target_address=launcher,
                event_data={"reason": reason},
            )


def _build(ctx: BuildContext, escrow_id: int, chain_id: int, address: str, secret: str) -> int:
    try:
        state = ctx.chain.read_escrow(address)
    except ChainError as exc:
        raise BuildFailed(str(exc)) from None
    if state.exchange_oracle.lower() != ctx.chain.address.lower():
        raise BuildFailed(f"this oracle ({ctx.chain.address}) is not the escrow's exchange oracle")
    if state.status not in ("Pending", "Partial"):
        raise BuildFailed(f"escrow is {state.status}, not Pending")
    manifest = fetch_manifest(ctx, state.manifest_url, state.manifest_hash)
    details = manifest.annotation.details
    with transaction(ctx.sessions) as session:
        session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id)
            .values(manifest=manifest.model_dump(mode="json"), updated_at=now())
        )

    with tempfile.TemporaryDirectory() as tmp:
        files, gt_text = download_media(ctx, manifest, Path(tmp))
        gt_spans = read_gt(gt_text)
        gt_names = {s.filename for s in gt_spans}
        missing = sorted(gt_names - set(files))
        if missing:
            raise BuildFailed(f"ground truth names files that are not in the media: {missing}")
        data, gt_durations = [], {}
        for name, path in sorted(files.items()):
            try:
                result = analyze(path, vad=VadParams(max_segment_s=details.max_segment_duration))
            except AudioError as exc:
                raise BuildFailed(f"media file {name}: {exc.reason}") from None
            duration_ms = int(result.duration_s * 1000)
            if name in gt_names:
                gt_durations[name] = duration_ms
            else:
                speech = tuple(
                    (round(s.start * 1000), round(s.end * 1000)) for s in result.segments
                )
                data.append(SourceFile(name, duration_ms, speech))
        if not data:
            raise BuildFailed("every media file is ground truth: nothing is left to annotate")
        params = PackingParams(
            clip_ms=int(details.clip_duration * 1000),
            validation_overhead=details.validation_overhead,
            min_gt=details.min_composition.gt,
            min_data=details.min_composition.ds,
        )
        try:
            clips = pack(data, gt_spans, gt_durations, params, seed_for(address, chain_id))
        except ValueError as exc:
            raise BuildFailed(str(exc)) from None
        return _make_jobs(
            ctx, escrow_id, chain_id, address, secret, manifest, clips, files, state.remaining_funds
        )


def _make_jobs(
    ctx: BuildContext,
    escrow_id: int,
    chain_id: int,
    address: str,
    secret: str,
    manifest: Manifest,
    clips: list[Any],
    files: dict[str, Path],
    funds: int,
) -> int:
    details = manifest.annotation.details
    base = prefix(chain_id, address)
    bucket = ctx.settings.storage_bucket
    rate = ctx.settings.clip_rate
    ctx.storage.ensure_bucket(bucket)
    cvat = ctx.cvat()
    try:
        project_id = cvat.ensure_project(f"escrow {base}", manifest.annotation)
        webhook_id = cvat.ensure_webhook(project_id, ctx.settings.webhook_target(), secret)
        labels = cvat.labels(project_id)
        first = labels[manifest.annotation.labels[0].name]
        with transaction(ctx.sessions) as session:
            session.execute(
                update(escrows)
                .where(escrows.c.id == escrow_id)
                .values(cvat_project_id=project_id, cvat_webhook_id=webhook_id, updated_at=now())
            )
            done = set(
                session.execute(
                    select(jobs.c.clip_index).where(jobs.c.escrow_id == escrow_id)
                ).scalars()
            )
        for index, clip in enumerate(clips):
            if index in done:
                continue
            mp3, tmap, pcm = build_clip(
                clip.regions, require_source(files), pause_ms=details.pause_ms, rate=rate
            )
            key = f"{base}/clips/{index:04d}.mp3"
            ctx.storage.put(bucket, key, mp3, "audio/mpeg")
            for zoom, peaks in compute_peaks(pcm, rate).items():
                buf = io.StringIO()
                peaks.write_json(buf)
                ctx.storage.put(
                    bucket,
                    f"{base}/peaks/{index:04d}-{zoom}.json",
                    buf.getvalue().encode(),
                    "application/json",
                )
            ctx.storage.put(
                bucket,
                f"{base}/maps/{index:04d}.json",
                json.dumps(tmap.to_dict()).encode(),
                "application/json",
            )
            task_id, job_id = cvat.ensure_task(project_id, f"clip-{index:04d}", mp3)
            last = tmap.duration_ms - 1
            segments = [
                (round(s.start * 1000), min(round(s.end * 1000), last))
                for s in detect_speech(
                    pcm, rate, VadParams(max_segment_s=details.max_segment_duration)
                )
            ]
            intervals = [
                {"label_id": first.id, "start": a, "stop": b, "source": "auto"}
                for a, b in segments
                if b > a
            ]
            cvat.put_intervals(job_id, intervals)
            honeypots = [
                {
                    "span_id": p.span_id,
                    "source": p.region.source,
                    "start_ms": p.region.start_ms,
                    "end_ms": p.region.end_ms,
                }
                for p in clip.pieces
                if p.kind == "gt"
            ]
            with transaction(ctx.sessions) as session:
                session.execute(
                    insert(jobs).values(
                        escrow_id=escrow_id,
                        clip_index=index,
                        status="free",
                        duration_ms=tmap.duration_ms,
                        clip_key=key,
                        time_map=tmap.to_dict(),
                        pre_segments=[[a, b] for a, b in segments],
                        honeypots=honeypots,
                        cvat_task_id=task_id,
                        cvat_job_id=job_id,
                        created_at=now(),
                        updated_at=now(),
                    )
                )
    finally:
        cvat.close()
    with transaction(ctx.sessions) as session:
        session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id)
            .values(
                status="ready", reward_per_job=str(funds // max(1, len(clips))), updated_at=now()
            )
        )
    return len(clips)


CANCELABLE = ("ToCancel", "Cancelled")


def cancel_escrow(ctx: BuildContext, chain_id: int, address: str) -> str:
    """Withdraw every job of an escrow the chain says is being canceled; remove its CVAT
    project. Idempotent; a cancel event for a live escrow is refused (kept pending)."""
    state = ctx.chain.read_escrow(address)
    if state.status not in CANCELABLE:
        raise BuildFailed(f"escrow is {state.status}, not being canceled")
    with ctx.sessions() as session:
        row = session.execute(
            select(escrows).where(
                escrows.c.chain_id == chain_id, escrows.c.escrow_address == address
            )
        ).first()
    if row is None:
        return "unknown escrow"
    if row.cvat_project_id:
        cvat = ctx.cvat()
        try:
            cvat.delete_project(row.cvat_project_id)
        finally:
            cvat.close()
    with transaction(ctx.sessions) as session:
        session.execute(
            update(assignments)
            .where(
                assignments.c.escrow_id == row.id,
                assignments.c.status == "active",
            )
            .values(status="canceled", finished_at=now())
        )
        session.execute(
            update(jobs)
            .where(jobs.c.escrow_id == row.id)
            .values(status="canceled", updated_at=now())
        )
        session.execute(
            update(escrows)
            .where(escrows.c.id == row.id)
            .values(status="canceled", cvat_project_id=None, updated_at=now())
        )
    return "canceled"

"""Escrow -> listed jobs. Each step can be run again after a crash: finished clips are
skipped, CVAT objects are found by name before being made, and job rows are inserted the
moment their CVAT task is ready (so jobs become listable one by one)."""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from audio_pipeline import AudioError, VadParams, analyze, build_clip, detect_speech
from audio_pipeline.clips import require_source
from exchange_oracle import asr, imports, practice
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.cvat import TRANSCRIPTION, Cvat
from exchange_oracle.db import escrows, events, jobs, source_files
from exchange_oracle.packing import (
    PackingParams,
    pack,
    seed_for,
)
from exchange_oracle.sources import (
    BuildFailed,
    data_sources,
    download,
    fetch_manifest,
    list_media,
    read_gt,
    read_text,
    regions_of,
)
from exchange_oracle.views import clip_views, publish_views
from oracle_core.chain import Chain, ChainError
from oracle_core.db import transaction
from oracle_core.events import enqueue
from oracle_core.ground_truth import (
    GroundTruthError,
    GtSpan,
    honeypot_spans,
    usable_spans,
)
from oracle_core.heartbeat import heartbeat
from oracle_core.manifest import Details, Manifest
from oracle_core.storage import (
    ObjectStorage,
    UrlPolicy,
)

log = logging.getLogger(__name__)


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


def vad_params(details: Details, engine: str = "webrtc") -> VadParams:
    """Pre-segments by the operator's VAD_ENGINE, no longer than an annotated segment may
    be (15 s when unlimited)."""
    limit = details.max_annotated_segment_duration
    return VadParams(max_segment_s=max(1.0, min(limit, 15.0)) if limit else 15.0, engine=engine)


FINAL = ("ready", "failed", "canceled", "completed", "exporting", "validation", "recorded")


@dataclass(frozen=True)
class Prepared:
    escrow_id: int
    status: str
    pending: list[str]  # files still to analyse


def build_escrow(ctx: BuildContext, chain_id: int, address: str) -> int:
    """Build (or finish building) one escrow in this process; returns how many jobs it
    has. The Celery path runs the same three steps with the analyses spread over workers."""
    prepared = prepare_escrow(ctx, chain_id, address)
    if prepared.status in FINAL:
        return _job_count(ctx, prepared.escrow_id)
    for name in prepared.pending:
        analyze_source(ctx, prepared.escrow_id, name)
    return finish_escrow(ctx, prepared.escrow_id)


def prepare_escrow(ctx: BuildContext, chain_id: int, address: str) -> Prepared:
    """Check the escrow and its manifest, list the media, note each file for analysis.
    On a reason the requester can fix, the escrow is marked failed and `escrow_failed`
    goes to the launcher (BuildFailed is raised)."""
    with transaction(ctx.sessions) as session:
        escrow_id = register_escrow(session, chain_id, address)
        row = session.execute(select(escrows).where(escrows.c.id == escrow_id)).one()
    if row.status == "building":
        try:
            _prepare(ctx, escrow_id, chain_id, address)
        except BuildFailed as exc:
            fail_escrow(ctx, escrow_id, chain_id, address, str(exc))
            raise
    with transaction(ctx.sessions) as session:
        pending = list(
            session.execute(
                select(source_files.c.name)
                .where(source_files.c.escrow_id == escrow_id, source_files.c.status == "pending")
                .order_by(source_files.c.id)
            ).scalars()
        )
        if not pending:  # every file analysed, but the hand-on to packing was lost
            session.execute(
                update(escrows)
                .where(escrows.c.id == escrow_id, escrows.c.status == "analysing")
                .values(status="packing", updated_at=now())
            )
        status = session.execute(
            select(escrows.c.status).where(escrows.c.id == escrow_id)
        ).scalar_one()
    return Prepared(escrow_id, str(status), pending)


def _prepare(ctx: BuildContext, escrow_id: int, chain_id: int, address: str) -> None:
    try:
        state = ctx.chain.read_escrow(address)
    except ChainError as exc:
        raise BuildFailed(str(exc)) from None
    if state.exchange_oracle.lower() != ctx.chain.address.lower():
        raise BuildFailed(f"this oracle ({ctx.chain.address}) is not the escrow's exchange oracle")
    if state.status not in ("Pending", "Partial"):
        raise BuildFailed(f"escrow is {state.status}, not Pending")
    manifest = fetch_manifest(ctx, state.manifest_url, state.manifest_hash)
    files, gt_text = list_media(ctx, manifest)
    attribute_names = [a.name for a in manifest.annotation.shared_attributes]
    gt_names = {s.filename for s in read_gt(gt_text, attribute_names)}
    missing = sorted(gt_names - {f.name for f in files})
    if missing:
        raise BuildFailed(f"ground truth names files that are not in the media: {missing}")
    regions_text = read_text(ctx, manifest, "regions_url") if manifest.data.regions_url else None
    regions = regions_of(regions_text)
    if regions is not None:
        # Only the listed regions are annotated; ground truth may share their recordings.
        region_names = {r.filename for r in regions}
        unknown = sorted(region_names - {f.name for f in files})
        if unknown:
            raise BuildFailed(f"regions name files that are not in the media: {unknown}")
        if not regions:
            raise BuildFailed("the regions file lists no region: nothing to annotate")
        files = [f for f in files if f.name in region_names | gt_names]
        honeypot_only = gt_names - region_names
    else:
        honeypot_only = gt_names
        if not [f for f in files if f.name not in gt_names]:
            raise BuildFailed("every media file is ground truth: nothing is left to annotate")
    pre = None
    if manifest.data.pre_annotations_url:
        pre = imports.read_folder(
            ctx, manifest, [f for f in files if f.name not in honeypot_only],
            read_gt(gt_text, attribute_names),
        )  # fmt: skip
    with transaction(ctx.sessions) as session:
        known = set(
            session.execute(
                select(source_files.c.name).where(source_files.c.escrow_id == escrow_id)
            ).scalars()
        )
        for f in files:
            if f.name not in known:
                session.execute(
                    insert(source_files).values(
                        escrow_id=escrow_id,
                        name=f.name,
                        object_key=f.key,
                        ground_truth=int(f.name in honeypot_only),
                        status="pending",
                        updated_at=now(),
                    )
                )
        session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id, escrows.c.status == "building")
            .values(
                status="analysing",
                manifest=manifest.model_dump(mode="json"),
                gt_text=gt_text,
                regions_text=regions_text,
                pre_annotations=pre,
                updated_at=now(),
            )
        )


def analyze_source(ctx: BuildContext, escrow_id: int, name: str) -> bool:
    """Analyse one media file (any worker may run this). Returns True when this was the
    escrow's last file and the escrow moved on to packing."""
    with ctx.sessions() as session:
        row = session.execute(
            select(source_files, escrows.c.manifest)
            .join(escrows, escrows.c.id == source_files.c.escrow_id)
            .where(source_files.c.escrow_id == escrow_id, source_files.c.name == name)
        ).first()
    if row is None:
        return False
    if row.status == "pending":
        manifest = Manifest.model_validate(row.manifest)
        details = manifest.annotation.details
        values: dict[str, Any]
        alive = heartbeat(  # a fresh timestamp each beat
            ctx.sessions,
            lambda: (
                update(source_files).where(source_files.c.id == row.id).values(updated_at=now())
            ),
        )
        with alive, tempfile.TemporaryDirectory() as tmp:
            path = download(ctx, manifest, row.object_key, Path(tmp) / "media")
            try:
                result = analyze(
                    path,
                    vad=vad_params(details, ctx.settings.vad_engine),
                    max_duration_s=ctx.settings.max_file_hours * 3600,
                )
            except AudioError as exc:
                values = {"status": "failed", "error": exc.reason}
            else:
                speech = [[round(s.start * 1000), round(s.end * 1000)] for s in result.segments]
                duration = int(result.duration_s * 1000)
                values = {"status": "done", "duration_ms": duration, "speech": speech}
        with transaction(ctx.sessions) as session:
            session.execute(
                update(source_files)
                .where(source_files.c.id == row.id, source_files.c.status == "pending")
                .values(**values, updated_at=now())
            )
    with transaction(ctx.sessions) as session:
        left = session.execute(
            select(func.count())
            .select_from(source_files)
            .where(source_files.c.escrow_id == escrow_id, source_files.c.status == "pending")
        ).scalar_one()
        if left:
            return False
        moved = session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id, escrows.c.status == "analysing")
            .values(status="packing", updated_at=now())
        ).rowcount  # type: ignore[attr-defined]
    return bool(moved)


def finish_escrow(ctx: BuildContext, escrow_id: int) -> int:
    """Pack clips from the analysed files, upload them, make the CVAT tasks, list the jobs.
    Resumable: clips already listed are skipped, CVAT objects found by name."""
    with ctx.sessions() as session:
        row = session.execute(select(escrows).where(escrows.c.id == escrow_id)).one()
        files = session.execute(
            select(source_files)
            .where(source_files.c.escrow_id == escrow_id)
            .order_by(source_files.c.name)
        ).all()
    if row.status != "packing":
        return _job_count(ctx, escrow_id)
    try:
        with heartbeat(
            ctx.sessions,
            lambda: update(escrows).where(escrows.c.id == escrow_id).values(updated_at=now()),
        ):
            return _finish(ctx, row, files)
    except BuildFailed as exc:
        fail_escrow(ctx, escrow_id, row.chain_id, row.escrow_address, str(exc))
        raise


def _finish(ctx: BuildContext, row: Any, files: Sequence[Any]) -> int:
    broken = [f for f in files if f.status == "failed"]
    if broken:
        raise BuildFailed(
            "media file(s) cannot be used: " + "; ".join(f"{f.name}: {f.error}" for f in broken)
        )
    hours = sum(f.duration_ms for f in files) / 3_600_000
    if hours > ctx.settings.max_escrow_hours:
        raise BuildFailed(
            f"{hours:.1f} h of audio: this oracle takes at most "
            f"{ctx.settings.max_escrow_hours:g} h per escrow (MAX_ESCROW_HOURS)"
        )
    manifest = Manifest.model_validate(row.manifest)
    details = manifest.annotation.details
    every_span = read_gt(row.gt_text or "")
    gt_names = {s.filename for s in every_span}
    durations = {f.name: f.duration_ms for f in files}
    try:
        gt_spans = usable_spans(
            honeypot_spans(every_span),
            durations,
            min_span_ms=round(details.min_gt_span_duration * 1000),
            max_cue_ms=round(details.max_segment_duration * 1000),
        )
    except GroundTruthError as exc:
        raise BuildFailed(str(exc)) from None
    data = data_sources(files, regions_of(row.regions_text), every_span)
    gt_durations = {name: durations[name] for name in gt_names if name in durations}
    params = PackingParams(
        clip_ms=int(details.clip_duration * 1000),
        validation_overhead=details.overhead,
        min_gt=details.min_composition.gt,
        min_data=details.min_composition.ds,
        max_piece_ms=round(details.max_segment_duration * 1000),
    )
    try:
        clips = pack(
            data, gt_spans, gt_durations, params, seed_for(row.escrow_address, row.chain_id)
        )
    except ValueError as exc:
        raise BuildFailed(str(exc)) from None
    funds = ctx.chain.read_escrow(row.escrow_address).remaining_funds
    keys = {f.name: f.object_key for f in files}
    drill = practice.plan(every_span, durations, round(details.practice.max_duration * 1000))
    with tempfile.TemporaryDirectory() as tmp:
        needed = sorted({r.source for clip in clips for r in [*clip.regions, *drill]})
        local = {
            name: download(ctx, manifest, keys[name], Path(tmp) / f"{i:05d}")
            for i, name in enumerate(needed)
        }
        if drill and row.practice is None:
            ctx.storage.ensure_bucket(ctx.settings.storage_bucket)
            made = practice.publish(
                ctx.storage, ctx.settings.storage_bucket, prefix(row.chain_id, row.escrow_address),
                drill, require_source(local), pause_ms=details.pause_ms,
                rate=ctx.settings.clip_rate, vad=vad_params(details, ctx.settings.vad_engine),
            )  # fmt: skip
            with transaction(ctx.sessions) as session:
                session.execute(update(escrows).where(escrows.c.id == row.id).values(practice=made))
        return _make_jobs(
            ctx,
            row.id,
            row.chain_id,
            row.escrow_address,
            row.webhook_secret,
            manifest,
            clips,
            local,
            funds,
            row.pre_annotations,
            gt_spans,
        )


def _job_count(ctx: BuildContext, escrow_id: int) -> int:
    with ctx.sessions() as session:
        return int(
            session.execute(
                select(func.count()).select_from(jobs).where(jobs.c.escrow_id == escrow_id)
            ).scalar_one()
        )


def fail_escrow(
    ctx: BuildContext, escrow_id: int, chain_id: int, address: str, reason: str
) -> None:
    log.warning("escrow %s failed: %s", address, reason)
    try:
        launcher = ctx.chain.read_escrow(address).launcher
    except ChainError:
        launcher = None
    with transaction(ctx.sessions) as session:
        moved = session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id, escrows.c.status != "failed")
            .values(status="failed", failure_reason=reason, updated_at=now())
        ).rowcount  # type: ignore[attr-defined]
        if launcher and moved:
            enqueue(
                session,
                events,
                chain_id=chain_id,
                escrow_address=address,
                event_type="escrow_failed",
                target_address=launcher,
                target_role="launcher",
                event_data={"reason": reason},
            )


@dataclass(frozen=True)
class Published:
    """One clip as the oracle and CVAT hold it."""

    key: str  # the clip's MP3 in the oracle's bucket
    task_id: int
    job_id: int
    frames: int  # the job's length in ms: CVAT's count, never past our audio
    segments: list[tuple[int, int]]  # VAD pre-segments, clip ms
    # What the job starts from in CVAT (VAD pre-segments, suggestions, drafts), as put
    intervals: list[dict[str, Any]] = field(default_factory=list)


def publish_clip(
    storage: ObjectStorage,
    bucket: str,
    cvat: Cvat,
    base: str,
    index: int,
    audio: tuple[bytes, Any, int],
    duration_ms: int,
    project_id: int,
    label_id: int,
    vad: VadParams,
    imported: Sequence[dict[str, Any]] = (),
    covered: Sequence[tuple[int, int]] = (),
    drafting: Callable[[list[tuple[int, int]]], list[str]] | None = None,
    transcription_spec: int | None = None,
) -> Published:
    """Upload one clip (`audio` is its MP3, PCM and rate) with its multi-zoom peaks and
    spectrogram tiles, and make its CVAT task holding the VAD pre-segments as `auto`
    intervals (and the requester's `imported` ones, source `file`, in place of those in
    the `covered` clip spans). CVAT counts the clip's frames itself (its audio stream's
    duration less the encoder's start time, some 50 ms short of a decode), and an interval
    may end at that count."""
    mp3, pcm, rate = audio
    key = f"{base}/clips/{index:04d}.mp3"
    storage.put(bucket, key, mp3, "audio/mpeg")
    publish_views(storage, bucket, clip_views(base, index), pcm, rate)
    task_id, job_id, size = cvat.ensure_task(project_id, f"clip-{index:04d}", mp3)
    frames = min(duration_ms, size)
    segments = [
        (a, b)
        for a, b in (
            (round(s.start * 1000), min(round(s.end * 1000), frames))
            for s in detect_speech(pcm, rate, vad)
        )
        if b > a
    ]
    # Where a requester's file pre-annotates the audio, its segments replace the VAD's.
    autos = [(a, b) for a, b in segments if not any(a < hi and lo < b for lo, hi in covered)]
    texts = drafting(autos) if drafting and transcription_spec is not None else [""] * len(autos)
    starting = [
        {
            "label_id": label_id,
            "start": a,
            "stop": b,
            "source": "auto",
            "attributes": [{"spec_id": transcription_spec, "value": t}] if t else [],
        }
        for (a, b), t in zip(autos, texts, strict=True)
    ] + [{**i, "stop": min(int(i["stop"]), frames)} for i in imported if i["start"] < frames]
    cvat.put_intervals(job_id, starting)  # fmt: skip
    return Published(key, task_id, job_id, frames, segments, starting)


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
    pre: imports.Stored | None = None,
    gt_spans: Sequence[GtSpan] = (),
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
        engine = asr.engine_for(ctx.settings)  # machine drafts, when the operator asks
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
            ctx.storage.put(
                bucket,
                f"{base}/maps/{index:04d}.json",
                json.dumps(tmap.to_dict()).encode(),
                "application/json",
            )
            placed, covered = (
                imports.place(
                    clip, tmap, pre or {}, details.allow_overlap, gt_spans,
                    seed_for(address, chain_id) + index, "file" if pre else "auto",
                )
                if pre or engine
                else ([], [])
            )  # fmt: skip
            drafting = (
                (lambda spans, pcm=pcm: asr.drafts(engine, pcm, rate, details.language, spans))
                if engine
                else None
            )
            clip_job = publish_clip(
                ctx.storage, bucket, cvat, base, index, (mp3, pcm, rate), tmap.duration_ms,
                project_id, first.id, vad_params(details, ctx.settings.vad_engine),
                imported=imports.as_intervals(placed, labels, first.name), covered=covered,
                drafting=drafting, transcription_spec=first.attributes.get(TRANSCRIPTION),
            )  # fmt: skip
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
                # Progress is the packer's heartbeat: the sweeper leaves a moving build alone.
                session.execute(
                    update(escrows)
                    .where(escrows.c.id == escrow_id)
                    .values(updated_at=now(), outage_since=None)
                )
                session.execute(
                    insert(jobs).values(
                        escrow_id=escrow_id,
                        clip_index=index,
                        status="free",
                        duration_ms=clip_job.frames,
                        clip_key=clip_job.key,
                        time_map=tmap.to_dict(),
                        pre_segments=[[a, b] for a, b in clip_job.segments],
                        start_intervals=clip_job.intervals,
                        honeypots=honeypots,
                        cvat_task_id=clip_job.task_id,
                        cvat_job_id=clip_job.job_id,
                        created_at=now(),
                        updated_at=now(),
                    )
                )
    finally:
        cvat.close()
    with transaction(ctx.sessions) as session:
        session.execute(
            update(escrows)
            .where(escrows.c.id == escrow_id, escrows.c.status == "packing")
            .values(
                status="ready", reward_per_job=str(funds // max(1, len(clips))), updated_at=now()
            )
        )
    return len(clips)

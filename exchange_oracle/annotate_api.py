"""What the annotator's page calls: the assignment's labels, rules and current segments,
saving segments to CVAT on the worker's behalf, and submitting (which completes the CVAT
job only when the work is complete). The worker never logs into CVAT.
Plain `def` routes: FastAPI runs them in its thread pool, off the event loop, since each
one queries the database and calls CVAT.

No `from __future__ import annotations`: FastAPI must see the dependency objects.
"""

from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Response
from pydantic import BaseModel, Field

from audio_pipeline.clips import DEFAULT_CLIP_RATE
from audio_pipeline.peaks import DEFAULT_ZOOMS
from audio_pipeline.segments import Segment
from audio_pipeline.spectrogram import COLUMNS_PER_S, LEVELS, SpectrogramLayout, layout
from audio_pipeline.validation import Interval, check_annotations, summarize
from exchange_oracle.annotate_page import clip_response, signed_audio_path
from exchange_oracle.assignments import for_the_worker
from exchange_oracle.completion import annotations_of
from exchange_oracle.practice import settings_of, standing
from exchange_oracle.views import clip_views, peaks_key, tile_key
from oracle_core.auth import TokenClaims
from oracle_core.manifest import Annotation
from oracle_core.storage import StorageError

SOURCES = Literal["auto", "file", "semi-auto", "manual"]


class SegmentIn(BaseModel):
    start_ms: int = Field(ge=0)
    end_ms: int
    label: str
    transcription: str = ""
    attributes: dict[str, str] = {}
    # as CVAT keeps it: the page sends auto/file for a suggestion kept as it came,
    # semi-auto once the worker changed it, manual for the worker's own
    source: SOURCES = "manual"


class SegmentsIn(BaseModel):
    segments: list[SegmentIn] = Field(max_length=5000)


class DraftSegment(BaseModel):
    start_ms: int
    end_ms: int
    label: str = ""
    transcription: str = ""
    attributes: dict[str, str] = {}


class CheckRequest(BaseModel):
    segments: list[DraftSegment] = Field(max_length=5000)


class ProblemOut(BaseModel):
    kind: str
    segment: int | None
    message: str


class CheckOut(BaseModel):
    complete: bool
    segments: int
    summary: list[str]
    problems: list[ProblemOut]


def spectrogram_layout(duration_ms: int, level: int = COLUMNS_PER_S) -> SpectrogramLayout:
    return layout(duration_ms * DEFAULT_CLIP_RATE // 1000, DEFAULT_CLIP_RATE, columns_per_s=level)


def spectrogram_info(duration_ms: int) -> dict[str, Any]:
    """The close-up level's layout, and the tile count of every level."""
    levels = [spectrogram_layout(duration_ms, level) for level in LEVELS]
    return {
        **spectrogram_layout(duration_ms).to_dict(),
        "levels": [{"columns_per_s": x.columns_per_s, "tiles": x.tiles} for x in levels],
    }


def peaks_response(ctx: Any, prefix: str, zoom: int) -> Response:
    """A clip's peaks at one zoom level (`prefix` is where its peaks are)."""
    if zoom not in DEFAULT_ZOOMS:
        raise HTTPException(400, f"zoom must be one of {list(DEFAULT_ZOOMS)} pixels per second")
    return Response(
        ctx.storage.get(ctx.settings.storage_bucket, peaks_key(prefix, zoom)),
        media_type="application/json",
        headers={"Cache-Control": "private, max-age=3600"},
    )


def spectrogram_tile(ctx: Any, folder: str, duration_ms: int, tile: int, level: int) -> Response:
    """One tile of a clip's spectrogram (`folder` is where its tiles are)."""
    if level not in LEVELS:
        raise HTTPException(400, f"level must be one of {list(LEVELS)} columns per second")
    if not 0 <= tile < spectrogram_layout(duration_ms, level).tiles:
        raise HTTPException(404, f"the clip has no spectrogram tile {tile} at level {level}")
    try:
        png = ctx.storage.get(ctx.settings.storage_bucket, tile_key(folder, tile, level))
    except StorageError:  # a clip packed before spectrograms (or this level) were made
        raise HTTPException(404, "this clip has no spectrogram") from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


def job_info(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the page needs of the manifest: the task, its labels and attributes, rules."""
    annotation = Annotation.model_validate(manifest["annotation"])
    shared = {a.name: a for a in annotation.shared_attributes}
    return {
        "description": annotation.description,
        "user_guide_url": annotation.user_guide_url,
        "language": annotation.details.language,
        "allow_overlap": annotation.details.allow_overlap,
        "max_segment_ms": annotation.rules().max_segment_ms,
        "labels": [
            {
                "name": lb.name,
                "transcription": lb.transcription,
                "attributes": [
                    {
                        "name": name,
                        "type": shared[name].type,
                        "values": list(shared[name].values),
                        "required": shared[name].required,
                    }
                    for name in annotation.attributes_of(lb)
                ],
            }
            for lb in annotation.labels
        ],
    }


def annotation_routes(
    router: APIRouter, context: Callable[[], Any], wallet_of: Any, owned: Callable[..., Any]
) -> None:
    def practice_standing(row: Any) -> dict[str, Any] | None:
        if not row.practice:
            return None
        with context().sessions() as session:
            return standing(session, row.escrow_id, row.wallet_address, settings_of(row.manifest))

    def editable(token: TokenClaims, assignment_id: str) -> Any:
        row = owned(token.wallet_address or "", assignment_id)
        if row.status != "active":
            raise HTTPException(409, f"the assignment is {row.status}: it can no longer change")
        if row.expires_at < datetime.now(UTC):
            raise HTTPException(409, "the assignment has expired")
        stands = practice_standing(row)
        if stands and not stands["cleared"]:
            raise HTTPException(409, "this escrow's practice clip must be passed first")
        return row

    def saved_segments(row: Any) -> list[Segment]:
        with closing(context().cvat()) as cvat:
            return annotations_of(cvat, row.cvat_project_id, row)

    def saved(row: Any) -> list[Interval]:
        return [Interval.from_segment(s, row.duration_ms) for s in saved_segments(row)]

    @router.get(
        "/assignment/{assignment_id}/audio",
        summary="The assignment's clip (MP3)",
        response_class=Response,
    )
    def assignment_audio(
        assignment_id: str,
        token: Annotated[TokenClaims, Depends(wallet_of)],
        range: Annotated[str | None, Header()] = None,
    ) -> Response:
        row = owned(token.wallet_address or "", assignment_id)
        ctx = context()
        return clip_response(ctx.storage, ctx.settings.storage_bucket, row.clip_key, range)

    @router.get(
        "/assignment/{assignment_id}/peaks",
        summary="Waveform peaks (audiowaveform v2)",
        response_class=Response,
    )
    def assignment_peaks(
        assignment_id: str, token: Annotated[TokenClaims, Depends(wallet_of)], zoom: int = 20
    ) -> Response:
        row = owned(token.wallet_address or "", assignment_id)
        prefix, _ = clip_views(f"{row.escrow_address}@{row.chain_id}", row.clip_index)
        return peaks_response(context(), prefix, zoom)

    @router.get(
        "/assignment/{assignment_id}/spectrogram/{tile}",
        summary="One spectrogram tile of the clip (PNG; `spectrogram` in the annotations "
        "says how many there are and where they go)",
        response_class=Response,
    )
    def assignment_spectrogram(
        assignment_id: str,
        tile: int,
        token: Annotated[TokenClaims, Depends(wallet_of)],
        level: int = COLUMNS_PER_S,
    ) -> Response:
        row = owned(token.wallet_address or "", assignment_id)
        _, tiles = clip_views(f"{row.escrow_address}@{row.chain_id}", row.clip_index)
        return spectrogram_tile(context(), tiles, row.duration_ms, tile, level)

    @router.post(
        "/assignment/{assignment_id}/check",
        response_model=CheckOut,
        summary="Completeness of a draft annotation (labels, transcriptions, attributes, "
        "bounds, overlaps): live feedback, no ground truth involved",
    )
    def check_assignment(
        assignment_id: str, body: CheckRequest, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> CheckOut:
        row = owned(token.wallet_address or "", assignment_id)
        drafts = [
            Interval(d.start_ms, d.end_ms, d.label, d.transcription, d.attributes)
            for d in body.segments
        ]
        return CheckOut.model_validate(completeness(row.manifest, row.duration_ms, drafts))

    @router.get(
        "/assignment/{assignment_id}/annotations",
        summary="The clip's labels, rules, pre-segments and current segments",
    )
    def get_annotations(
        assignment_id: str, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> dict[str, Any]:
        row = owned(token.wallet_address or "", assignment_id)
        stored = saved_segments(row)
        intervals = [Interval.from_segment(s, row.duration_ms) for s in stored]
        return {
            **job_info(row.manifest),
            "assignment_id": assignment_id,
            "status": row.status,
            "reject_reason": for_the_worker(row.reject_reason)
            if row.status == "rejected"
            else None,
            "expires_at": row.expires_at,
            "audio_url": signed_audio_path(row.webhook_secret or "", assignment_id, row.expires_at),
            "peaks_zooms": list(DEFAULT_ZOOMS),
            "spectrogram": spectrogram_info(row.duration_ms),
            "clip_ms": row.duration_ms,
            # null: no practice clip in this escrow; else where the worker stands with it
            "practice": practice_standing(row),
            "pre_segments": row.pre_segments,
            # source: auto (VAD), file (the requester's), semi-auto (either, edited), manual
            "segments": [
                {**_out(iv), "source": seg.source}
                for iv, seg in zip(intervals, stored, strict=True)
            ],
            "feedback": completeness(row.manifest, row.duration_ms, intervals),
        }

    @router.put(
        "/assignment/{assignment_id}/annotations",
        summary="Save the segments to CVAT (as intervals) and get completeness feedback",
    )
    def put_annotations(
        assignment_id: str,
        body: SegmentsIn,
        token: Annotated[TokenClaims, Depends(wallet_of)],
    ) -> dict[str, Any]:
        row = editable(token, assignment_id)
        annotation = Annotation.model_validate(row.manifest["annotation"])
        asks = {lb.name: set(annotation.attributes_of(lb)) for lb in annotation.labels}
        last = row.duration_ms  # CVAT takes stop up to its size (the job's frames)
        for n, seg in enumerate(sorted(body.segments, key=lambda s: s.start_ms), start=1):
            if seg.label not in asks:
                raise HTTPException(422, f"segment {n}: label '{seg.label}' is not in this job")
            unknown = sorted(set(seg.attributes) - asks[seg.label])
            if unknown:
                raise HTTPException(
                    422, f"segment {n}: label '{seg.label}' has no attribute(s) {unknown}"
                )
            if not seg.start_ms < seg.end_ms <= row.duration_ms:
                raise HTTPException(
                    422, f"segment {n}: {seg.start_ms}-{seg.end_ms} ms is not inside the clip"
                )
        payload = [
            {
                "start": s.start_ms,
                "stop": min(s.end_ms, last),
                "label": s.label,
                "transcription": s.transcription,
                "attributes": {k: v for k, v in s.attributes.items() if v != ""},
                "source": s.source,
            }
            for s in body.segments
        ]

        with closing(context().cvat()) as cvat:
            cvat.put_segments(row.cvat_job_id, row.cvat_project_id, payload)
            cvat.set_state(row.cvat_job_id, "in progress")
        intervals = [
            Interval(s.start_ms, s.end_ms, s.label, s.transcription, s.attributes)
            for s in body.segments
        ]
        return {
            "saved": len(payload),
            "feedback": completeness(row.manifest, row.duration_ms, intervals),
        }

    @router.post(
        "/assignment/{assignment_id}/submit",
        summary="Complete the CVAT job if what is saved is complete; 409 says what is missing",
    )
    def submit(
        assignment_id: str, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> dict[str, Any]:
        row = editable(token, assignment_id)
        intervals = saved(row)
        result = completeness(row.manifest, row.duration_ms, intervals)
        if not intervals or not result["complete"]:
            reasons = result["summary"] or ["no segments saved yet"]
            raise HTTPException(409, {"message": "not complete yet", "missing": reasons,
                                      "problems": result["problems"]})  # fmt: skip

        with closing(context().cvat()) as cvat:
            cvat.set_state(row.cvat_job_id, "completed")  # CVAT's webhook completes it here
        return {"assignment_id": assignment_id, "status": "submitted", "feedback": result}


def completeness(
    manifest: dict[str, Any], clip_ms: int, intervals: list[Interval]
) -> dict[str, Any]:
    """The validation module's completeness checks of a clip's segments, for live feedback
    (no ground truth involved, so nothing about honeypots leaks)."""
    rules = Annotation.model_validate(manifest["annotation"]).rules(clip_ms)
    problems = check_annotations(intervals, rules)
    return {
        "complete": not problems,
        "segments": len(intervals),
        "summary": summarize(problems, len(intervals)),
        "problems": [
            {"kind": p.kind, "segment": p.segment, "message": p.message} for p in problems
        ],
    }


def _out(iv: Interval) -> dict[str, Any]:
    return {
        "start_ms": iv.start_ms,
        "end_ms": iv.end_ms,
        "label": iv.label,
        "transcription": iv.transcription,
        "attributes": dict(iv.attributes),
    }

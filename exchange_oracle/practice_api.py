"""The worker's practice clip through the worker API: what the page loads it from, the
check that scores a try the moment it is sent (and shows the answers), and the standing
that decides whether the worker may go on to the escrow's jobs.

No `from __future__ import annotations`: FastAPI must see the dependency objects.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from audio_pipeline.peaks import DEFAULT_ZOOMS
from audio_pipeline.spectrogram import COLUMNS_PER_S
from audio_pipeline.validation import Interval
from exchange_oracle import practice
from exchange_oracle.annotate_api import (
    SegmentIn,
    job_info,
    peaks_response,
    spectrogram_info,
    spectrogram_tile,
)
from exchange_oracle.annotate_page import signed_audio_path
from exchange_oracle.assignments import AssignmentRefused, resign
from exchange_oracle.db import escrows, practice_results
from exchange_oracle.practice import settings_of, standing
from exchange_oracle.views import practice_views
from oracle_core.auth import TokenClaims
from oracle_core.ground_truth import read_gt
from oracle_core.manifest import Manifest


class PracticeIn(BaseModel):
    segments: list[SegmentIn] = Field(max_length=5000)


def practice_routes(
    router: APIRouter, context: Callable[[], Any], wallet_of: Any, owned: Callable[..., Any]
) -> None:
    def drill(token: TokenClaims, assignment_id: str) -> tuple[Any, dict[str, Any]]:
        row = owned(token.wallet_address or "", assignment_id)
        if not row.practice:
            raise HTTPException(404, "this escrow has no practice clip")
        return row, row.practice

    @router.get(
        "/assignment/{assignment_id}/practice",
        summary="The escrow's practice clip, as the page loads a job, and the worker's standing",
    )
    def get_practice(
        assignment_id: str, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> dict[str, Any]:
        row, clip = drill(token, assignment_id)
        with context().sessions() as session:
            stands = standing(session, row.escrow_id, row.wallet_address, settings_of(row.manifest))
        labels = job_info(row.manifest)
        first = labels["labels"][0]["name"]
        return {
            **labels,
            "assignment_id": assignment_id,
            "status": row.status,
            "expires_at": row.expires_at,
            "audio_url": signed_audio_path(
                row.webhook_secret or "", assignment_id, row.expires_at, practice=True
            ),
            "peaks_zooms": list(DEFAULT_ZOOMS),
            "spectrogram": spectrogram_info(clip["duration_ms"]),
            "clip_ms": clip["duration_ms"],
            "pre_segments": clip["pre_segments"],
            "segments": [
                {
                    "start_ms": a,
                    "end_ms": b,
                    "label": first,
                    "transcription": "",
                    "attributes": {},
                    "source": "auto",
                }
                for a, b in clip["pre_segments"]
            ],
            "feedback": None,
            "practice": stands,
        }

    @router.get(
        "/assignment/{assignment_id}/practice/peaks",
        summary="Waveform peaks of the practice clip",
        response_class=Response,
    )
    def practice_peaks(
        assignment_id: str, token: Annotated[TokenClaims, Depends(wallet_of)], zoom: int = 20
    ) -> Response:
        row, _ = drill(token, assignment_id)
        prefix, _ = practice_views(f"{row.escrow_address}@{row.chain_id}")
        return peaks_response(context(), prefix, zoom)

    @router.get(
        "/assignment/{assignment_id}/practice/spectrogram/{tile}",
        summary="One spectrogram tile of the practice clip (PNG)",
        response_class=Response,
    )
    def practice_spectrogram(
        assignment_id: str,
        tile: int,
        token: Annotated[TokenClaims, Depends(wallet_of)],
        level: int = COLUMNS_PER_S,
    ) -> Response:
        row, clip = drill(token, assignment_id)
        _, tiles = practice_views(f"{row.escrow_address}@{row.chain_id}")
        return spectrogram_tile(context(), tiles, clip["duration_ms"], tile, level)

    @router.post(
        "/assignment/{assignment_id}/practice/submit",
        summary="Score a try at the practice clip at once: what was right and wrong, the "
        "answers, and whether the worker may go on",
    )
    def submit_practice(
        assignment_id: str, body: PracticeIn, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> dict[str, Any]:
        row, clip = drill(token, assignment_id)
        if row.status != "active":
            raise HTTPException(409, f"the assignment is {row.status}")
        ctx = context()
        manifest = Manifest.model_validate(row.manifest)
        rules = manifest.annotation.details.practice
        with ctx.sessions() as session:
            gt_text = session.execute(
                select(escrows.c.gt_text).where(escrows.c.id == row.escrow_id)
            ).scalar_one()
            before = standing(session, row.escrow_id, row.wallet_address, rules)
        if before["passed"]:
            raise HTTPException(409, "you passed the practice clip already: go on to the job")
        if before["attempts_left"] == 0:
            raise HTTPException(409, "no tries are left at the practice clip")
        work = [
            Interval(s.start_ms, s.end_ms, s.label, s.transcription, s.attributes)
            for s in body.segments
        ]
        checked = practice.check(manifest, clip, read_gt(gt_text or ""), work)
        score = checked.score
        result = {
            "passed": score.passed,
            "metric": score.metric,
            "value": score.value,
            "target": checked.target,
            "reasons": list(score.reasons),  # the answers are given away: all of them
            "answers": [
                {
                    "start_ms": r.start_ms,
                    "end_ms": r.end_ms,
                    "label": r.label,
                    "text": r.text,
                    "attributes": dict(r.attributes),
                }
                for r in checked.references
            ],
        }
        _record(ctx, row.escrow_id, row.wallet_address, score.passed, result, limit=rules.attempts)
        with ctx.sessions() as session:
            after = standing(session, row.escrow_id, row.wallet_address, rules)
        if after["turned_away"]:  # the job goes back to the others
            cvat = ctx.cvat()
            try:
                resign(ctx.sessions, cvat, wallet=row.wallet_address, assignment_id=assignment_id)
            except AssignmentRefused:
                pass  # it had ended meanwhile
            finally:
                cvat.close()
        return {**result, "practice": after}

    @router.post(
        "/assignment/{assignment_id}/practice/skip",
        summary="Go on without the practice clip (only when the escrow does not require it)",
    )
    def skip_practice(
        assignment_id: str, token: Annotated[TokenClaims, Depends(wallet_of)]
    ) -> dict[str, Any]:
        row, _ = drill(token, assignment_id)
        rules = settings_of(row.manifest)
        if rules.required:
            raise HTTPException(409, "this escrow requires its practice clip to be passed")
        ctx = context()
        _record(ctx, row.escrow_id, row.wallet_address, False, None, skipped=True)
        with ctx.sessions() as session:
            return {"practice": standing(session, row.escrow_id, row.wallet_address, rules)}


def _record(
    ctx: Any,
    escrow_id: int,
    wallet: str,
    passed: bool,
    result: Any,
    skipped: bool = False,
    limit: int | None = None,
) -> None:
    """Count a try (or a skip), under the row's lock: two tries sent at once are counted
    one after the other, and a try past `limit` or after a pass is refused (409)."""
    at = datetime.now(UTC)
    key = (practice_results.c.escrow_id == escrow_id) & (
        practice_results.c.wallet_address == wallet
    )
    with ctx.sessions() as session, session.begin():
        found = session.execute(select(practice_results).where(key).with_for_update()).first()
        if found is None:
            try:
                with session.begin_nested():
                    session.execute(
                        insert(practice_results).values(
                            escrow_id=escrow_id, wallet_address=wallet,
                            attempts=0 if skipped else 1, passed=int(passed),
                            skipped=int(skipped), result=result, updated_at=at,
                        )
                    )  # fmt: skip
            except IntegrityError:  # the other try of the pair is being counted
                raise HTTPException(409, "another try is being checked: try again") from None
        elif not skipped and (found.passed or (limit is not None and found.attempts >= limit)):
            raise HTTPException(409, "no tries are left at the practice clip")
        elif skipped:
            session.execute(update(practice_results).where(key).values(skipped=1, updated_at=at))
        else:
            session.execute(
                update(practice_results)
                .where(key)
                .values(
                    attempts=practice_results.c.attempts + 1,
                    passed=int(passed or bool(found.passed)),
                    result=result,
                    updated_at=at,
                )
            )

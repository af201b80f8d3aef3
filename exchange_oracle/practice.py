"""The practice clip: the ground-truth spans a requester marked `practice`, with the same
context a honeypot gets, joined into one short clip when the escrow is packed. A worker's
first job in the escrow starts with it; it is scored here the moment it is submitted and
the answers are shown, so these spans are never honeypots (the recording oracle leaves
them out too). Whether passing it is required, and how many tries a worker gets, is the
manifest's `details.practice`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from audio_pipeline import VadParams, build_clip, detect_speech
from audio_pipeline.clips import Region, TimeMap
from audio_pipeline.decode import AudioSource
from audio_pipeline.validation import AssignmentScore, Interval, Reference, score_assignment
from exchange_oracle.db import practice_results
from exchange_oracle.packing import HONEYPOT_CONTEXT_MS
from exchange_oracle.views import practice_views, publish_views
from oracle_core.ground_truth import GtSpan
from oracle_core.manifest import Details, Manifest, Practice
from oracle_core.storage import ObjectStorage


def plan(spans: Sequence[GtSpan], durations: dict[str, int], max_ms: int) -> list[Region]:
    """The practice spans (grouped by span id, with honeypot context either side) in file
    order, as many as fit in `max_ms` (at least one)."""
    extent: dict[tuple[str, str], tuple[int, int]] = {}
    for s in spans:
        if s.practice and s.filename in durations:
            a, b = extent.get((s.filename, s.span_id), (s.start_ms, s.end_ms))
            extent[(s.filename, s.span_id)] = (min(a, s.start_ms), max(b, s.end_ms))
    regions: list[Region] = []
    total = 0
    for (name, _), (a, b) in sorted(extent.items(), key=lambda kv: (kv[0][0], kv[1])):
        start = max(0, a - HONEYPOT_CONTEXT_MS)
        end = min(durations[name], b + HONEYPOT_CONTEXT_MS)
        if regions and total + end - start > max_ms:
            break
        regions.append(Region(name, start, end))
        total += end - start
    return regions


def publish(
    storage: ObjectStorage,
    bucket: str,
    base: str,
    regions: Sequence[Region],
    open_source: Callable[[str], AudioSource],
    *,
    pause_ms: int,
    rate: int,
    vad: VadParams,
) -> dict[str, Any]:
    """Render and upload the practice clip with its peaks and spectrogram; what the
    escrow keeps of it (`escrows.practice`)."""
    mp3, tmap, pcm = build_clip(regions, open_source, pause_ms=pause_ms, rate=rate)
    key = f"{base}/practice/clip.mp3"
    storage.put(bucket, key, mp3, "audio/mpeg")
    publish_views(storage, bucket, practice_views(base), pcm, rate)
    segments = [
        [round(s.start * 1000), min(round(s.end * 1000), tmap.duration_ms)]
        for s in detect_speech(pcm, rate, vad)
    ]
    return {
        "clip_key": key,
        "duration_ms": tmap.duration_ms,
        "time_map": tmap.to_dict(),
        "pre_segments": [s for s in segments if s[1] > s[0]],
    }


def references(
    practice: dict[str, Any], spans: Sequence[GtSpan]
) -> tuple[list[Reference], list[tuple[int, int]]]:
    """The practice spans in the clip's time, and the clip ranges that hold them."""
    tmap = TimeMap.from_dict(practice["time_map"])
    zones = [(p.clip_start_ms, p.clip_end_ms) for p in tmap.pieces]
    refs = []
    for s in spans:
        if not s.practice:
            continue
        start = tmap.to_clip(s.filename, s.start_ms)
        end = tmap.to_clip(s.filename, s.end_ms - 1)
        if start is not None and end is not None:
            refs.append(Reference(start, end + 1, s.label, s.text, s.span_id, s.attributes))
    refs.sort(key=lambda r: r.start_ms)
    return refs, zones


@dataclass(frozen=True)
class Checked:
    score: AssignmentScore
    target: float
    references: list[Reference]


def check(
    manifest: Manifest, practice: dict[str, Any], spans: Sequence[GtSpan], work: list[Interval]
) -> Checked:
    """Score a practice attempt as a honeypot is scored, against the practice target."""
    refs, zones = references(practice, spans)
    spec = manifest.validation_spec(clip_ms=int(practice["duration_ms"]))
    target = manifest.annotation.details.practice.target_score
    if target is not None:
        spec = replace(spec, target=target)
    score = score_assignment(work, refs, zones, spec)
    said = tuple(
        r.replace("honeypot segment", "practice segment") for r in score.reasons
    )  # the worker knows these are practice: say so
    return Checked(replace(score, reasons=said), spec.target, refs)


def settings_of(manifest: dict[str, Any]) -> Practice:
    """The escrow's practice rules, read from its stored manifest's details alone (this
    runs on every save of a job in an escrow with a practice clip)."""
    return Details.model_validate(manifest["annotation"].get("details") or {}).practice


def standing(session: Session, escrow_id: int, wallet: str, rules: Practice) -> dict[str, Any]:
    """Where the worker stands with the escrow's practice clip."""
    row = session.execute(
        select(practice_results).where(
            practice_results.c.escrow_id == escrow_id,
            practice_results.c.wallet_address == wallet,
        )
    ).first()
    attempts = row.attempts if row else 0
    passed = bool(row and row.passed)
    skipped = bool(row and row.skipped)
    left = 0 if passed else max(0, rules.attempts - attempts)
    return {
        "required": rules.required,
        "attempts": attempts,
        "attempts_left": left,
        "passed": passed,
        "skipped": skipped,
        # the jobs are open to this worker (a required clip must be passed first)
        "cleared": passed or skipped or not rules.required,
        "turned_away": rules.required and not passed and left == 0,
        "result": row.result if row else None,
    }

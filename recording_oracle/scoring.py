"""Scoring one exported assignment: its clip-time annotation against the ground truth the
clip's time map says it holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from audio_pipeline.clips import TimeMap
from audio_pipeline.segments import Segment, TsvFormatError, read_generic_tsv
from audio_pipeline.validation import (
    AssignmentScore,
    Interval,
    Problem,
    Reference,
    ValidationSpec,
    score_assignment,
)
from oracle_core.ground_truth import GtSpan


def honeypots(tmap: TimeMap, gt: Sequence[GtSpan]) -> tuple[list[Reference], list[tuple[int, int]]]:
    """The ground-truth spans that lie whole inside the clip, in clip time, and the clip
    ranges cut from ground-truth files (segments there that match nothing are insertions)."""
    gt_files = {span.filename for span in gt}
    zones = [(p.clip_start_ms, p.clip_end_ms) for p in tmap.pieces if p.source in gt_files]
    refs = []
    for span in gt:
        for p in tmap.pieces:
            end = p.source_start_ms + p.length_ms
            if (
                p.source == span.filename
                and p.source_start_ms <= span.start_ms < span.end_ms <= end
            ):
                shift = p.clip_start_ms - p.source_start_ms
                refs.append(
                    Reference(
                        span.start_ms + shift,
                        span.end_ms + shift,
                        span.label,
                        span.text,
                        span.span_id,
                    )
                )
    refs.sort(key=lambda r: r.start_ms)
    return refs, zones


def intervals_of(segments: Sequence[Segment], clip_ms: int) -> list[Interval]:
    return [Interval.from_segment(s, clip_ms) for s in segments]


def to_json(intervals: Sequence[Interval]) -> list[dict[str, Any]]:
    return [
        {
            "start_ms": i.start_ms,
            "end_ms": i.end_ms,
            "label": i.label,
            "transcription": i.transcription,
            "attributes": dict(i.attributes),
        }
        for i in intervals
    ]


def from_json(rows: Sequence[dict[str, Any]]) -> list[Interval]:
    return [
        Interval(r["start_ms"], r["end_ms"], r["label"], r["transcription"], r["attributes"])
        for r in rows
    ]


def score_export(
    tsv: str, tmap: TimeMap, gt: Sequence[GtSpan], spec: ValidationSpec
) -> tuple[AssignmentScore, list[Interval]]:
    """A result for one exported annotation file; an unreadable file is a failed result
    that says why, not an error (the worker's work is rejected, the escrow goes on)."""
    try:
        intervals = intervals_of(read_generic_tsv(tsv), tmap.duration_ms)
    except TsvFormatError as exc:
        problem = Problem("bounds", f"the annotation file cannot be read: {exc}")
        return (
            AssignmentScore(spec.metric, None, 0.0, False, (problem.message,), 0, (problem,)),
            [],
        )
    refs, zones = honeypots(tmap, gt)
    return score_assignment(intervals, refs, zones, spec), intervals

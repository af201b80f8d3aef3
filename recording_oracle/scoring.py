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

SLACK_MS = 2


def honeypots(tmap: TimeMap, gt: Sequence[GtSpan]) -> tuple[list[Reference], list[tuple[int, int]]]:
    """The ground-truth spans that lie whole inside the clip, in clip time, and the clip
    ranges of the pieces holding them, the honeypots (segments there that match nothing are
    insertions). A data region cut from the same recording holds no span, so honest work
    on it is never scored."""
    zones: list[tuple[int, int]] = []
    refs: list[Reference] = []
    for p in tmap.pieces:
        end = p.source_start_ms + p.length_ms
        inside = [
            span
            for span in gt
            # 2 ms of slack: HUMAN's layout gives piece times as floats of seconds
            if p.source == span.filename
            and p.source_start_ms - SLACK_MS <= span.start_ms < span.end_ms <= end + SLACK_MS
        ]
        if inside:
            zones.append((p.clip_start_ms, p.clip_end_ms))
        shift = p.clip_start_ms - p.source_start_ms
        refs.extend(
            Reference(
                s.start_ms + shift, s.end_ms + shift, s.label, s.text, s.span_id, s.attributes
            )
            for s in inside
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
            "source": i.source,
        }
        for i in intervals
    ]


def from_json(rows: Sequence[dict[str, Any]]) -> list[Interval]:
    return [
        Interval(
            r["start_ms"],
            r["end_ms"],
            r["label"],
            r["transcription"],
            r["attributes"],
            r.get("source", "manual"),  # results scored before sources were kept
        )
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

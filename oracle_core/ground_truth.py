"""The requester's ground truth TSV (`filename start stop label text span_id`, times
H:MM:SS(.ffffff)): read by the exchange oracle to place honeypots and by the recording
oracle to score them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from audio_pipeline.segments import parse_time
from oracle_core.storage import BucketUrl, ObjectStorage, UrlPolicy

COLUMNS = ("filename", "start", "stop", "label", "text")


@dataclass(frozen=True)
class GtSpan:
    """One ground-truth segment: where, and what a good annotator would write."""

    filename: str
    start_ms: int
    end_ms: int
    label: str
    text: str
    span_id: str


class GroundTruthError(ValueError):
    """Ground truth we cannot use; the message names the line."""


def read_gt(text: str) -> list[GtSpan]:
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    if not rows or not set(COLUMNS) <= set(rows[0]):
        raise GroundTruthError(f"ground truth needs the columns {', '.join(sorted(COLUMNS))}")
    spans = []
    for n, row in enumerate(rows, start=2):
        if None in row.values() or None in row:
            raise GroundTruthError(f"ground truth line {n}: not as many fields as the header")
        try:
            start, stop = parse_time(row["start"]), parse_time(row["stop"])
        except ValueError as exc:
            raise GroundTruthError(f"ground truth line {n}: {exc}") from None
        if stop <= start:
            raise GroundTruthError(f"ground truth line {n}: stop is not after start")
        spans.append(
            GtSpan(
                row["filename"],
                round(start * 1000),
                round(stop * 1000),
                row["label"],
                row["text"] or "",
                row.get("span_id") or f"gt{n}",
            )
        )
    return spans


def load_gt(gt_url: BucketUrl, policy: UrlPolicy) -> list[GtSpan]:
    """The ground truth named by the manifest, from the requester's bucket."""
    store = ObjectStorage.for_bucket(gt_url, policy)
    text = store.get(gt_url.bucket_name, gt_url.path).decode("utf-8", errors="replace")
    return read_gt(text)


@dataclass(frozen=True)
class DataRegion:
    """One row of the requester's regions TSV (`filename start stop [label]`): a part of a
    recording to annotate."""

    filename: str
    start_ms: int
    end_ms: int


def read_regions(text: str) -> list[DataRegion]:
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    if not rows or not {"filename", "start", "stop"} <= set(rows[0]):
        raise GroundTruthError("regions need the columns filename, start, stop")
    regions = []
    for n, row in enumerate(rows, start=2):
        if row.get("start") is None or row.get("stop") is None or row.get("filename") is None:
            raise GroundTruthError(f"regions line {n}: not as many fields as the header")
        try:
            start, stop = parse_time(row["start"]), parse_time(row["stop"])
        except ValueError as exc:
            raise GroundTruthError(f"regions line {n}: {exc}") from None
        if stop <= start:
            raise GroundTruthError(f"regions line {n}: stop is not after start")
        regions.append(DataRegion(row["filename"], round(start * 1000), round(stop * 1000)))
    return regions


def usable_spans(
    spans: list[GtSpan],
    durations: dict[str, int],
    *,
    min_span_ms: int,
    max_cue_ms: int,
) -> list[GtSpan]:
    """Ground truth as HUMAN's audio oracles use it: a cue outside its file or longer than
    `max_cue_ms` (the manifest's max_segment_duration) is left out, and a span (the cues of
    one `span_id` in one file) shorter than `min_span_ms` (min_gt_span_duration) is left
    out whole. More than half of the cues left out is an error the requester must fix."""
    fits = [
        s
        for s in spans
        if s.end_ms - s.start_ms <= max_cue_ms and s.end_ms <= durations.get(s.filename, 0)
    ]
    extent: dict[tuple[str, str], tuple[int, int]] = {}
    for s in fits:
        a, b = extent.get((s.filename, s.span_id), (s.start_ms, s.end_ms))
        extent[(s.filename, s.span_id)] = (min(a, s.start_ms), max(b, s.end_ms))
    kept = [
        s
        for s in fits
        if extent[(s.filename, s.span_id)][1] - extent[(s.filename, s.span_id)][0] >= min_span_ms
    ]
    if spans and len(kept) * 2 < len(spans):
        raise GroundTruthError(
            f"ground truth: only {len(kept)} of {len(spans)} cues are usable (cues must lie "
            f"inside their file and last at most {max_cue_ms / 1000:g} s, spans at least "
            f"{min_span_ms / 1000:g} s: see max_segment_duration and min_gt_span_duration)"
        )
    return kept

"""The requester's ground truth TSV (`filename start stop label text span_id`, times
H:MM:SS(.ffffff), and a column per attribute it gives values for, e.g. `emotion`): read by
the exchange oracle to place honeypots and by the recording oracle to score them."""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from audio_pipeline.segments import parse_time
from oracle_core.storage import BucketUrl, ObjectStorage, UrlPolicy

COLUMNS = ("filename", "start", "stop", "label", "text")
# `practice`: 1/yes/true marks a span for the practice clip (its answer is shown to the
# worker, so it is never a honeypot); empty, 0, no or false leaves it a honeypot.
OPTIONAL = ("span_id", "practice")
YES, NO = ("1", "yes", "true", "y"), ("", "0", "no", "false", "n")


@dataclass(frozen=True)
class GtSpan:
    """One ground-truth segment: where, and what a good annotator would write."""

    filename: str
    start_ms: int
    end_ms: int
    label: str
    text: str
    span_id: str
    attributes: dict[str, str] = field(default_factory=dict)  # values the span gives
    practice: bool = False  # on the practice clip, never a honeypot


class GroundTruthError(ValueError):
    """Ground truth we cannot use; the message names the line."""


def _timed_rows(
    text: str, what: str, columns: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, str], int, int]]:
    """(line number, row, start ms, stop ms) of each row of a requester's TSV; every
    problem a GroundTruthError naming `what` and the line."""
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    if not rows or not set(columns) <= set(rows[0]):
        raise GroundTruthError(f"{what} needs the columns {', '.join(sorted(columns))}")
    for n, row in enumerate(rows, start=2):
        if None in row or any(row.get(c) is None for c in columns):
            raise GroundTruthError(f"{what} line {n}: not as many fields as the header")
        try:
            start, stop = parse_time(row["start"]), parse_time(row["stop"])
        except ValueError as exc:
            raise GroundTruthError(f"{what} line {n}: {exc}") from None
        if stop <= start:
            raise GroundTruthError(f"{what} line {n}: stop is not after start")
        yield n, row, round(start * 1000), round(stop * 1000)


def read_gt(text: str, attributes: Collection[str] | None = None) -> list[GtSpan]:
    """Every span; a column beyond the fixed ones is an attribute's value per span. With
    `attributes` (the job's attribute names), a column naming none of them is refused."""
    spans = []
    for n, row, start, stop in _timed_rows(text, "ground truth", COLUMNS):
        extra = {k: (v or "").strip() for k, v in row.items() if k not in COLUMNS + OPTIONAL}
        if attributes is not None and not set(extra) <= set(attributes):
            unknown = sorted(set(extra) - set(attributes))
            raise GroundTruthError(
                f"ground truth columns {unknown} are not attributes of this job (its "
                f"attributes: {sorted(attributes) or 'none'})"
            )
        practice = (row.get("practice") or "").strip().lower()
        if practice not in YES + NO:
            raise GroundTruthError(
                f"ground truth line {n}: practice is '{practice}', not 1/yes/true or 0/no/false"
            )
        spans.append(
            GtSpan(row["filename"], start, stop, row["label"], row["text"] or "",
                   row.get("span_id") or f"gt{n}", {k: v for k, v in extra.items() if v},
                   practice in YES)
        )  # fmt: skip
    return spans


def honeypot_spans(spans: Collection[GtSpan]) -> list[GtSpan]:
    """The spans that may be honeypots: all but the practice clip's."""
    return [s for s in spans if not s.practice]


def load_gt(
    gt_url: BucketUrl, policy: UrlPolicy, attributes: Collection[str] | None = None
) -> list[GtSpan]:
    """The ground truth named by the manifest, from the requester's bucket."""
    store = ObjectStorage.for_bucket(gt_url, policy)
    text = store.get(gt_url.bucket_name, gt_url.path).decode("utf-8", errors="replace")
    return read_gt(text, attributes)


@dataclass(frozen=True)
class DataRegion:
    """One row of the requester's regions TSV (`filename start stop [label]`): a part of a
    recording to annotate."""

    filename: str
    start_ms: int
    end_ms: int


def read_regions(text: str) -> list[DataRegion]:
    return [
        DataRegion(row["filename"], start, stop)
        for _, row, start, stop in _timed_rows(text, "regions", ("filename", "start", "stop"))
    ]


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

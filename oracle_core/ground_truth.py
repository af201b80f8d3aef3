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

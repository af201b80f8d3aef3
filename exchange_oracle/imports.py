"""A requester's pre-annotations as a job's starting segments: read at prepare time
(one file per media file, in the folder `data.pre_annotations_url` names), kept on the
escrow, and placed on each clip's data pieces at packing. They go into CVAT with source
`file`; the page shows them as suggestions, and what the worker changes is saved as
`semi-auto`.

Honeypots stay blind: a suggestion that touches a ground-truth span of its recording is
dropped when the files are read, and ground-truth pieces of a clip only ever get VAD
pre-segments, so nothing imported can give a honeypot's words away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from audio_pipeline.clips import TimeMap
from audio_pipeline.preannotations import (
    PreAnnotationError,
    pre_annotation_name,
    read_pre_annotations,
)
from exchange_oracle.cvat import TRANSCRIPTION, LabelSpec
from exchange_oracle.packing import ClipPlan
from exchange_oracle.sources import BuildFailed, MediaFile
from oracle_core.ground_truth import GtSpan
from oracle_core.manifest import Manifest
from oracle_core.storage import ObjectStorage, StorageError, UnsafeUrlError

if TYPE_CHECKING:
    from exchange_oracle.build import BuildContext

MAX_FILE_BYTES = 16 * 1024**2
MIN_PIECE_MS = 100  # a suggestion cut by a clip's edge to less than this is left out
SPEAKER = "speaker"

# [start_ms, end_ms, text, label, speaker] in source time, per media file: JSON-friendly.
Stored = dict[str, list[list[Any]]]


def read_folder(
    ctx: BuildContext, manifest: Manifest, files: Sequence[MediaFile], gt: Sequence[GtSpan]
) -> Stored:
    """Every media file's suggestions (an empty list when its file holds none); media
    with no pre-annotation file are left out. BuildFailed names a bad file."""
    try:
        where = manifest.data.bucket("pre_annotations_url")
        store = ObjectStorage.for_bucket(where, ctx.policy)
        listed = {
            (PurePosixPath(key).relative_to(where.path).as_posix() if where.path else key): (
                key,
                size,
            )
            for key, size in store.list(where.bucket_name, where.path)
        }
        out: Stored = {}
        for media in files:
            name = pre_annotation_name(media.name, set(listed))
            if name is None:
                continue
            key, size = listed[name]
            if size > MAX_FILE_BYTES:
                raise BuildFailed(f"pre-annotation {name} is {size} bytes, over {MAX_FILE_BYTES}")
            found = read_pre_annotations(
                name, store.get(where.bucket_name, key, max_bytes=MAX_FILE_BYTES), media.name
            )
            honeypots = [(s.start_ms, s.end_ms) for s in gt if s.filename == media.name]
            out[media.name] = [
                [s.start_ms, s.end_ms, s.text, s.label, s.speaker]
                for s in found
                if not any(s.start_ms < b and a < s.end_ms for a, b in honeypots)
            ]
    except PreAnnotationError as exc:
        raise BuildFailed(str(exc)) from None
    except (StorageError, UnsafeUrlError, ValueError) as exc:
        raise BuildFailed(f"data.pre_annotations_url: {exc}") from None
    if not out:
        raise BuildFailed(
            "data.pre_annotations_url: no file there is named after a media file "
            "(talk.mp3 is pre-annotated by talk.srt, .vtt, .TextGrid, .rttm or .tsv)"
        )
    return out


@dataclass(frozen=True)
class Placed:
    start_ms: int
    end_ms: int
    text: str
    label: str
    speaker: str


def place(
    plan: ClipPlan, tmap: TimeMap, stored: Stored, allow_overlap: bool
) -> tuple[list[Placed], list[tuple[int, int]]]:
    """(the suggestions on the clip's data pieces in clip time, the clip spans that came
    from a pre-annotated file: VAD pre-segments there give way to the file's)."""
    placed: list[Placed] = []
    covered: list[tuple[int, int]] = []
    for piece, where in zip(plan.pieces, tmap.pieces, strict=True):
        if piece.kind != "data" or where.source not in stored:
            continue
        covered.append((where.clip_start_ms, where.clip_end_ms))
        first, last = where.source_start_ms, where.source_start_ms + where.length_ms
        shift = where.clip_start_ms - where.source_start_ms
        for start, end, text, label, speaker in stored[where.source]:
            lo, hi = max(start, first), min(end, last)
            if hi - lo >= MIN_PIECE_MS:
                placed.append(Placed(lo + shift, hi + shift, text, label, speaker))
    placed.sort(key=lambda p: (p.start_ms, p.end_ms))
    if not allow_overlap:  # the earlier of two overlapping suggestions is kept
        kept: list[Placed] = []
        for p in placed:
            if not kept or p.start_ms >= kept[-1].end_ms:
                kept.append(p)
        placed = kept
    return placed, covered


def as_intervals(
    placed: Sequence[Placed], labels: dict[str, LabelSpec], default: str
) -> list[dict[str, Any]]:
    """CVAT intervals (source `file`): the suggestion's label when the job has it, else
    `default`; its text as the transcription and its speaker as the `speaker` attribute
    where the label has them."""
    out = []
    for p in placed:
        spec = labels.get(p.label) or labels[default]
        values = {TRANSCRIPTION: p.text, SPEAKER: p.speaker}
        out.append(
            {
                "label_id": spec.id,
                "start": p.start_ms,
                "stop": p.end_ms,
                "source": "file",
                "attributes": [
                    {"spec_id": spec.attributes[name], "value": value}
                    for name, value in values.items()
                    if value and name in spec.attributes
                ],
            }
        )
    return out

"""A requester's pre-annotations as a job's starting segments: read at prepare time
(one file per media file, in the folder `data.pre_annotations_url` names), kept on the
escrow, and placed on each clip's data pieces at packing. They go into CVAT with source
`file`; the page shows them as suggestions, and what the worker changes is saved as
`semi-auto`.

Honeypots stay blind, and look like the data around them: a suggestion that touches a
ground-truth span of its recording is dropped when the files are read, and each honeypot
of a pre-annotated escrow gets a suggestion of its own made from its answer with words
changed or dropped (at least one) and its edges moved a little. A worker who accepts
every suggestion unchanged fails the honeypots; correcting them is the job, on the
honeypots as on the data.
"""

from __future__ import annotations

import random
from collections import defaultdict
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
    source: str = "file"  # as CVAT keeps it: file (a requester's), auto (a machine draft's)


def place(
    plan: ClipPlan,
    tmap: TimeMap,
    stored: Stored,
    allow_overlap: bool,
    honeypots: Sequence[GtSpan] = (),
    seed: int = 0,
    honeypot_source: str = "file",
) -> tuple[list[Placed], list[tuple[int, int]]]:
    """(the suggestions on the clip in clip time, the clip spans they cover: VAD
    pre-segments there give way to them). Data pieces get the requester's; honeypot
    pieces get their answers garbled (`seeded`), with the source the data's suggestions
    have (`auto` where they are machine drafts)."""
    placed: list[Placed] = seeded(plan, tmap, honeypots, seed, honeypot_source)
    covered: list[tuple[int, int]] = [
        (w.clip_start_ms, w.clip_end_ms)
        for p, w in zip(plan.pieces, tmap.pieces, strict=True)
        if p.kind == "gt"
    ]
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


EDGE_JITTER_MS = 150
DROP, SWAP = 0.15, 0.2  # chances per word of leaving it out, or changing it


def seeded(
    plan: ClipPlan, tmap: TimeMap, spans: Sequence[GtSpan], seed: int, source: str = "file"
) -> list[Placed]:
    """A suggestion for every ground-truth cue of the clip's honeypots, as a requester's
    would look: the answer with words dropped or changed (never none), edges moved up to
    EDGE_JITTER_MS. Seeded by the escrow and the clip, so a rebuild makes the same."""
    rng = random.Random(seed)
    vocabulary = sorted({w for s in spans for w in s.text.split()}) or ["the"]
    cues: dict[tuple[str, str], list[GtSpan]] = defaultdict(list)
    for s in spans:
        cues[(s.filename, s.span_id)].append(s)
    out = []
    for piece, where in zip(plan.pieces, tmap.pieces, strict=True):
        if piece.kind != "gt":
            continue
        for cue in cues.get((where.source, piece.span_id), ()):
            start = tmap.to_clip(cue.filename, cue.start_ms)
            end = tmap.to_clip(cue.filename, cue.end_ms - 1)
            if start is None or end is None:
                continue
            lo = max(where.clip_start_ms, start + rng.randint(-EDGE_JITTER_MS, EDGE_JITTER_MS))
            hi = min(where.clip_end_ms, end + 1 + rng.randint(-EDGE_JITTER_MS, EDGE_JITTER_MS))
            if hi - lo >= MIN_PIECE_MS:
                text = garble(cue.text, vocabulary, rng)
                speaker = cue.attributes.get(SPEAKER, "")
                out.append(Placed(lo, hi, text, cue.label, speaker, source))
    return out


def garble(text: str, vocabulary: Sequence[str], rng: random.Random) -> str:
    """`text` with some words left out or swapped for others of `vocabulary`; at least
    one word always changes."""
    words = text.split()
    if not words:
        return rng.choice(vocabulary)
    out: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < DROP:
            continue
        out.append(rng.choice(vocabulary) if roll < DROP + SWAP else word)
    if out == words:
        i = rng.randrange(len(words))
        out = words[:i] + words[i + 1 :] if len(words) > 1 else [words[0] + words[0][-1:]]
    return " ".join(out)


def as_intervals(
    placed: Sequence[Placed], labels: dict[str, LabelSpec], default: str
) -> list[dict[str, Any]]:
    """CVAT intervals (the suggestion's source): its label when the job has it, else
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
                "source": p.source,
                "attributes": [
                    {"spec_id": spec.attributes[name], "value": value}
                    for name, value in values.items()
                    if value and name in spec.attributes
                ],
            }
        )
    return out

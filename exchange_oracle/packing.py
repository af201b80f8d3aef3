"""Packing assignment clips: the requester's audio cut into pieces near pauses, mixed with
ground-truth honeypots, shuffled, all from one seed so a rebuild gives the same clips.

Pure planning over milliseconds: no audio is touched here (audio_pipeline.clips renders).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from audio_pipeline.clips import Region
from oracle_core.ground_truth import GtSpan

HONEYPOT_CONTEXT_MS = 500


@dataclass(frozen=True)
class SourceFile:
    name: str
    duration_ms: int
    speech: tuple[tuple[int, int], ...] = ()  # VAD segments, ms
    # The parts to annotate (ms); empty: the whole file. From the manifest's regions_url,
    # with ground-truth spans of the same recording taken out.
    regions: tuple[tuple[int, int], ...] = ()

    def parts(self) -> tuple[tuple[int, int], ...]:
        return self.regions or ((0, self.duration_ms),)


@dataclass(frozen=True)
class Piece:
    region: Region
    kind: str  # "data" or "gt"
    span_id: str = ""


@dataclass
class ClipPlan:
    pieces: list[Piece] = field(default_factory=list)

    @property
    def regions(self) -> list[Region]:
        return [p.region for p in self.pieces]

    def data_ms(self) -> int:
        return sum(p.region.end_ms - p.region.start_ms for p in self.pieces if p.kind == "data")

    def gt_ms(self) -> int:
        return sum(p.region.end_ms - p.region.start_ms for p in self.pieces if p.kind == "gt")


@dataclass(frozen=True)
class PackingParams:
    clip_ms: int = 60_000
    validation_overhead: float = 0.2
    min_gt: int = 1
    min_data: int = 1  # data pieces per clip, at least, while the data lasts
    max_piece_ms: int | None = None  # the manifest's max_segment_duration

    @property
    def data_budget_ms(self) -> int:
        return max(1_000, int(self.clip_ms * (1 - self.validation_overhead)))

    @property
    def piece_ms(self) -> int:
        """The longest piece of data: short enough for `min_data` pieces to fill a clip."""
        longest = self.data_budget_ms // max(1, self.min_data)
        if self.max_piece_ms:
            longest = min(longest, self.max_piece_ms)
        return max(1_000, longest)


def seed_for(escrow_address: str, chain_id: int) -> int:
    return int.from_bytes(
        hashlib.sha256(f"{chain_id}:{escrow_address.lower()}".encode()).digest()[:8], "big"
    )


def cut_points(source: SourceFile, budget_ms: int) -> list[tuple[int, int]]:
    """Pieces of each part of the file, at most `budget_ms` each, each cut in the middle of a
    pause where one is near."""
    gaps = [
        (a[1] + b[0]) // 2
        for a, b in zip(source.speech, source.speech[1:], strict=False)
        if b[0] > a[1]
    ]
    pieces = []
    for first, last in source.parts():
        start = first
        while last - start > budget_ms:
            target = start + budget_ms
            near = [g for g in gaps if start + budget_ms // 2 < g <= target]
            cut = max(near) if near else target
            pieces.append((start, cut))
            start = cut
        if last > start:
            pieces.append((start, last))
    return pieces


def subtract(
    parts: Sequence[tuple[int, int]], holes: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """`parts` with every `hole` taken out (all in ms, half-open)."""
    out = []
    for start, end in parts:
        pieces = [(start, end)]
        for h_start, h_end in sorted(holes):
            pieces = [
                p
                for a, b in pieces
                for p in ((a, min(b, h_start)), (max(a, h_end), b))
                if p[1] > p[0]
            ]
        out.extend(pieces)
    return out


def pack(
    data: Sequence[SourceFile],
    gt: Sequence[GtSpan],
    gt_durations: dict[str, int],
    params: PackingParams,
    seed: int,
) -> list[ClipPlan]:
    """Every millisecond of data lands in exactly one clip; each clip gets honeypots."""
    if not data:
        raise ValueError("no data files to annotate")
    if params.validation_overhead > 0 and not gt:
        raise ValueError("validation needs ground truth, but the ground truth has no spans")
    rng = random.Random(seed)
    budget = params.data_budget_ms
    clips: list[ClipPlan] = []
    current = ClipPlan()
    for source in sorted(data, key=lambda s: s.name):
        for start, end in cut_points(source, params.piece_ms):
            if current.pieces and current.data_ms() + (end - start) > budget:
                clips.append(current)
                current = ClipPlan()
            current.pieces.append(Piece(Region(source.name, start, end), "data"))
    if current.pieces:
        clips.append(current)

    pool = sorted(gt, key=lambda s: (s.filename, s.start_ms, s.span_id))
    rng.shuffle(pool)
    cursor = 0
    ratio = params.validation_overhead / (1 - params.validation_overhead)
    for clip in clips:
        wanted_ms = clip.data_ms() * ratio
        used: set[str] = set()
        while pool and (clip.gt_ms() < wanted_ms or len(used) < params.min_gt):
            span = pool[cursor % len(pool)]
            cursor += 1
            if span.span_id in used:
                if len(used) >= len(pool):
                    break
                continue
            used.add(span.span_id)
            limit = gt_durations.get(span.filename, span.end_ms + HONEYPOT_CONTEXT_MS)
            region = Region(
                span.filename,
                max(0, span.start_ms - HONEYPOT_CONTEXT_MS),
                min(limit, span.end_ms + HONEYPOT_CONTEXT_MS),
            )
            clip.pieces.append(Piece(region, "gt", span.span_id))
        rng.shuffle(clip.pieces)
    return clips

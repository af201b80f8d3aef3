"""Bot annotators for the sandbox (tests and the demo): they know what was said in each
source file and where the clip's pieces come from, so they can annotate perfectly, or
sloppily on purpose. A development tool, never used by the oracles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audio_pipeline.clips import TimeMap


@dataclass(frozen=True)
class Said:
    """One utterance of a source file: where (ms) and what."""

    start_ms: int
    end_ms: int
    text: str
    attributes: Mapping[str, str]


Truth = Mapping[str, Sequence[Said]]  # source file -> what was said in it


def perfect(tmap: TimeMap, truth: Truth, label: str = "speech") -> list[dict[str, Any]]:
    """Every utterance heard in the clip, with its exact text and attributes (clip ms)."""
    out = []
    for piece in tmap.pieces:
        for said in truth.get(piece.source, ()):
            lo = max(said.start_ms, piece.source_start_ms)
            hi = min(said.end_ms, piece.source_start_ms + piece.length_ms)
            if hi - lo < 200:
                continue
            shift = piece.clip_start_ms - piece.source_start_ms
            out.append(
                {
                    "start": lo + shift,
                    "stop": min(hi + shift, tmap.duration_ms - 1),
                    "label": label,
                    "transcription": said.text,
                    "attributes": dict(said.attributes),
                }
            )
    return sorted(out, key=lambda s: s["start"])


def sloppy(segments: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same segments with every other word wrong and the attributes left empty."""
    out = []
    for seg in segments:
        words = seg["transcription"].split()
        garbled = [w if i % 2 else "blah" for i, w in enumerate(words)]
        out.append({**seg, "transcription": " ".join(garbled), "attributes": {}})
    return out

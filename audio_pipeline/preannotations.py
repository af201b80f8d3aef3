"""Existing annotations a requester gives, read into suggestions for the job's starting
segments: CVAT's Generic TSV, SRT and WebVTT subtitles (pysubs2), Praat TextGrids (praatio)
and RTTM speaker turns. One file per media file, named after it (`talk.mp3` ->
`talk.srt`, `talk.TextGrid`, ...); the format is the file's extension.

Times are the media file's own, in milliseconds. A file that cannot be read, or holds a
time that is not a finite, non-negative, increasing pair, is refused with its line or
entry named; nothing is guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from audio_pipeline.segments import TsvFormatError, read_generic_tsv

MAX_SUGGESTIONS = 100_000  # per file
MAX_TEXT = 2_000  # characters per suggestion


class PreAnnotationError(ValueError):
    """A pre-annotation file that cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class Suggestion:
    start_ms: int
    end_ms: int
    text: str = ""
    label: str = ""  # a label name, when the file carries one (Generic TSV)
    speaker: str = ""  # RTTM speakers, TextGrid tiers, a TSV's `speaker` column


def _ms(seconds: float, where: str) -> int:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{where}: time {seconds} is not a finite, non-negative number")
    return round(seconds * 1000)


def _checked(start_ms: int, end_ms: int, where: str) -> tuple[int, int]:
    if end_ms <= start_ms:
        raise ValueError(f"{where}: end {end_ms} ms is not after start {start_ms} ms")
    return start_ms, end_ms


def _tsv(text: str, media: str) -> list[Suggestion]:
    out = []
    for n, seg in enumerate(read_generic_tsv(text), start=2):
        if seg.filename and seg.filename != media:
            continue
        if seg.end is None:
            raise ValueError(f"row {n}: a pre-annotation needs a stop")
        start, end = _checked(_ms(seg.start, f"row {n}"), _ms(seg.end, f"row {n}"), f"row {n}")
        out.append(
            Suggestion(start, end, seg.transcription, seg.label, seg.attributes.get("speaker", ""))
        )
    return out


def _subtitles(kind: str) -> Callable[[str, str], list[Suggestion]]:
    def read(text: str, media: str) -> list[Suggestion]:
        import pysubs2

        try:
            subs = pysubs2.SSAFile.from_string(text, format_=kind)
        except Exception as exc:  # pysubs2 raises several kinds for a broken file
            raise ValueError(f"not {kind.upper()}: {exc}") from None
        out = []
        for n, event in enumerate(subs, start=1):
            if event.is_comment:
                continue
            start, end = _checked(event.start, event.end, f"cue {n}")
            words = " ".join(event.plaintext.split())
            out.append(Suggestion(start, end, words))
        return out

    return read


def _textgrid(text: str, media: str) -> list[Suggestion]:
    """Every interval tier's non-empty intervals; with more than one tier, each tier is a
    speaker (as multi-speaker TextGrids are made), named after it."""
    from praatio.utilities import textgrid_io

    try:
        doc = textgrid_io.parseTextgridStr(text, includeEmptyIntervals=False)
    except Exception as exc:  # praatio raises several kinds for a broken file
        raise ValueError(f"not a TextGrid: {exc}") from None
    tiers = [t for t in doc["tiers"] if t["class"] == "IntervalTier"]
    out = []
    for tier in tiers:
        for n, (start_s, end_s, label) in enumerate(tier["entries"], start=1):
            where = f"tier '{tier['name']}' interval {n}"
            if not label.strip():
                continue
            try:  # praatio hands the times over as written
                first, last = float(start_s), float(end_s)
            except ValueError:
                raise ValueError(f"{where}: its times are not numbers") from None
            start, end = _checked(_ms(first, where), _ms(last, where), where)
            speaker = tier["name"] if len(tiers) > 1 else ""
            out.append(Suggestion(start, end, " ".join(label.split()), speaker=speaker))
    return out


def _rttm(text: str, media: str) -> list[Suggestion]:
    """`SPEAKER <file> <chan> <onset> <duration> <ortho> <stype> <name> <conf> <slat>`
    lines of the file whose id is the media's name without its extension."""
    stem = PurePosixPath(media).stem
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise ValueError(f"line {n}: an RTTM SPEAKER line has at least 8 fields")
        if fields[1] != stem:
            continue
        try:
            onset, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise ValueError(f"line {n}: onset and duration must be numbers") from None
        start = _ms(onset, f"line {n}")
        _, end = _checked(start, _ms(onset + duration, f"line {n}"), f"line {n}")
        ortho = fields[5] if fields[5] != "<NA>" else ""
        out.append(Suggestion(start, end, ortho, speaker=fields[7]))
    return out


READERS: dict[str, Callable[[str, str], list[Suggestion]]] = {
    ".tsv": _tsv,
    ".srt": _subtitles("srt"),
    ".vtt": _subtitles("vtt"),
    ".textgrid": _textgrid,
    ".rttm": _rttm,
}


def pre_annotation_name(media: str, candidates: set[str]) -> str | None:
    """The file among `candidates` (paths in the pre-annotation folder) that pre-annotates
    `media` (a path in the media folder): the same path but for the extension, which is
    one of READERS' (any case)."""
    bare = PurePosixPath(media).with_suffix("")
    found = sorted(
        c
        for c in candidates
        if PurePosixPath(c).with_suffix("") == bare and PurePosixPath(c).suffix.lower() in READERS
    )
    if len(found) > 1:
        raise PreAnnotationError(f"{media}: more than one pre-annotation file ({found})")
    return found[0] if found else None


def read_pre_annotations(name: str, data: bytes, media: str) -> list[Suggestion]:
    """Suggestions for `media` from the file `name` (its extension says the format), in
    time order; PreAnnotationError says what is wrong and where."""
    reader = READERS.get(PurePosixPath(name).suffix.lower())
    if reader is None:
        raise PreAnnotationError(f"{name}: pre-annotations must be one of {sorted(READERS)}")
    try:
        text = data.decode("utf-8-sig")
        found = reader(text, media)
    except UnicodeDecodeError:
        raise PreAnnotationError(f"{name}: not UTF-8 text") from None
    except (ValueError, TsvFormatError) as exc:
        raise PreAnnotationError(f"{name}: {exc}") from None
    if len(found) > MAX_SUGGESTIONS:
        raise PreAnnotationError(f"{name}: more than {MAX_SUGGESTIONS} segments")
    too_long = next((s for s in found if len(s.text) > MAX_TEXT), None)
    if too_long is not None:
        raise PreAnnotationError(
            f"{name}: the text at {too_long.start_ms} ms is longer than {MAX_TEXT} characters"
        )
    return sorted(found, key=lambda s: (s.start_ms, s.end_ms))

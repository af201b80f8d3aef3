"""The segment model (what an annotator produces) and CVAT's "Generic TSV 1.0" format.

Generic TSV: a header `id filename start stop label source score` followed by one column
per attribute name (sorted union over all rows); times written `H:MM:SS.ffffff`; an empty
stop means "open". Transcriptions are the `transcription` attribute. Fields that hold a
tab, newline or quote are quoted the way Python's csv module does it. Reading needs only
`start stop label` (HUMAN's oracles write `start stop label transcription`); CRLF line
ends, as real CVAT exports them, read the same.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

TRANSCRIPTION = "transcription"
BASE_COLUMNS = ("id", "filename", "start", "stop", "label", "source", "score")
# What a file must have to be read: HUMAN's oracles write `start stop label transcription`.
REQUIRED_COLUMNS = ("start", "stop", "label")
SOURCES = ("auto", "semi-auto", "manual", "file", "consensus")
_TIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)(?:\.(\d{1,6}))?$")


class Span(NamedTuple):
    """A time interval in seconds, end exclusive."""

    start: float
    end: float


class TsvFormatError(ValueError):
    """A Generic TSV document that cannot be read; the message names the line."""


@dataclass
class Segment:
    """One labelled interval of one audio file; times in seconds, `end` exclusive or None."""

    start: float
    end: float | None
    label: str
    transcription: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    filename: str = ""
    id: int | None = None
    source: str = "manual"
    score: float = 1.0

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


def format_time(seconds: float) -> str:
    """Seconds as `H:MM:SS.ffffff`, rounded to the microsecond."""
    if seconds < 0:
        raise ValueError(f"negative time {seconds}")
    micros = round(seconds * 1_000_000)
    whole, frac = divmod(micros, 1_000_000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}.{frac:06d}"


def parse_time(text: str) -> float:
    """`H:MM:SS` or `H:MM:SS.f` (up to six decimals) as seconds."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"time '{text}' is not H:MM:SS or H:MM:SS.ffffff")
    hours, minutes, secs, frac = match.groups()
    micros = int((frac or "0").ljust(6, "0"))
    return (int(hours) * 3600 + int(minutes) * 60 + int(secs)) * 1.0 + micros / 1_000_000


def write_generic_tsv(segments: Iterable[Segment]) -> str:
    rows = list(segments)
    names = sorted({TRANSCRIPTION} | {k for s in rows for k in s.attributes})
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow([*BASE_COLUMNS, *names])
    for number, seg in enumerate(rows, start=1):
        values = {**seg.attributes, TRANSCRIPTION: seg.transcription}
        writer.writerow(
            [
                seg.id if seg.id is not None else number,
                seg.filename,
                format_time(seg.start),
                "" if seg.end is None else format_time(seg.end),
                seg.label,
                seg.source,
                repr(float(seg.score)),
                *(values.get(name, "") for name in names),
            ]
        )
    return out.getvalue()


def read_generic_tsv(text: str) -> list[Segment]:
    reader = csv.reader(io.StringIO(text), delimiter="\t")
    try:
        header = next(reader)
    except StopIteration:
        raise TsvFormatError("empty document: no header line") from None
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise TsvFormatError(f"header lacks column(s) {', '.join(missing)}")
    col = {name: i for i, name in enumerate(header)}

    def cell(row: list[str], name: str) -> str:
        return row[col[name]] if name in col else ""

    attr_names = [h for h in header if h not in BASE_COLUMNS]
    segments = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = reader.line_num
        if len(row) != len(header):
            raise TsvFormatError(f"line {line}: {len(row)} fields, header has {len(header)}")
        try:
            start = parse_time(row[col["start"]])
            stop_text = row[col["stop"]].strip()
            end = parse_time(stop_text) if stop_text else None
            score_text = cell(row, "score").strip()
            score = float(score_text) if score_text else 1.0
            ident_text = cell(row, "id").strip()
            ident = int(ident_text) if ident_text else None
        except ValueError as exc:
            raise TsvFormatError(f"line {line}: {exc}") from None
        if end is not None and end <= start:
            raise TsvFormatError(f"line {line}: stop {stop_text} is not after start")
        values = {name: row[col[name]] for name in attr_names}
        transcription = values.pop(TRANSCRIPTION, "")
        segments.append(
            Segment(
                start=start,
                end=end,
                label=row[col["label"]],
                transcription=transcription,
                attributes={k: v for k, v in values.items() if v != ""},
                filename=cell(row, "filename"),
                id=ident,
                source=cell(row, "source") or "manual",
                score=score,
            )
        )
    return segments

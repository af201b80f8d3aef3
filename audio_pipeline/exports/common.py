"""What every corpus layout shares: the segment, the options, speaker-disjoint splits, text
rules, and audio cut from each source in one streaming decode pass (memory holds only the
segments being cut, never the export)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import unicodedata
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from audio_pipeline.clips import encode_audio
from audio_pipeline.decode import AudioSource, PcmReader
from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.normalize import spell_numbers

SPLITS = ("train", "dev", "test")
DEFAULT_RATIOS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def file_stem(name: str, limit: int = 80) -> str:
    """A source file's stem short enough for the names built from it (file systems stop
    at 255 bytes): a long one keeps its start and a hash of the whole."""
    stem = Path(name).stem
    if len(stem.encode()) <= limit:
        return stem
    digest = hashlib.sha256(stem.encode()).hexdigest()[:12]
    return f"{stem.encode()[: limit - 13].decode(errors='ignore')}-{digest}"


def token(text: str, missing: str = "unknown") -> str:
    """A field for whitespace-separated formats (STM, speaker tables): no spaces inside."""
    cleaned = re.sub(r"\s+", "_", text.strip())
    return cleaned or missing


@dataclass(frozen=True)
class ExportSegment:
    """One accepted segment of a source file, in source milliseconds."""

    file: str
    start_ms: int
    end_ms: int
    label: str
    transcription: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    annotator: str = ""

    @property
    def speaker(self) -> str:
        return self.attributes.get("speaker") or file_stem(self.file)

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000

    def attr(self, name: str, missing: str = "unknown") -> str:
        return (self.attributes.get(name) or "").strip() or missing

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ExportSegment:
        """A row of the results archive's annotations.json."""
        return cls(
            str(row["file"]),
            int(row["start_ms"]),
            int(row["end_ms"]),
            str(row.get("label", "")),
            str(row.get("transcription", "")),
            {str(k): str(v) for k, v in (row.get("attributes") or {}).items()},
            str(row.get("annotator_wallet_address", "")),
        )


@dataclass(frozen=True)
class ExportOptions:
    """`language`: the escrow's (a segment's `locale` attribute overrides it where a format
    keeps languages apart); `ratios`: the share of audio per split, by speaker."""

    language: str = "en"
    ratios: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATIOS))

    def __post_init__(self) -> None:
        unknown = set(self.ratios) - set(SPLITS)
        if unknown or any(v < 0 for v in self.ratios.values()):
            raise InvalidParameterError(
                f"split ratios are train/dev/test shares >= 0, not {dict(self.ratios)}"
            )
        if abs(sum(self.ratios.values()) - 1) > 1e-6 or self.ratios.get("train", 0) <= 0:
            raise InvalidParameterError(
                f"split ratios must sum to 1 with train > 0, not {dict(self.ratios)}"
            )


def language_of(code: str) -> str:
    """`en-US` -> `en`, `zh_CN` -> `zh`."""
    return re.split(r"[-_]", code.strip())[0].lower() or "en"


def segment_language(seg: ExportSegment, options: ExportOptions) -> str:
    return seg.attributes.get("locale") or options.language


OpenAudio = Callable[[str], AudioSource]


@dataclass
class Exported:
    format: str
    root: Path
    files: list[Path] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def write(self, relative: str, data: bytes | str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        self.files.append(path)
        return path

    def link(self, existing: str, relative: str) -> Path:
        """`existing` again at `relative`: a hard link (no more disk), or a copy where the
        file system has none."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.root / existing, path)
        except OSError:
            shutil.copyfile(self.root / existing, path)
        self.files.append(path)
        return path

    def open(self, relative: str) -> BinaryIO:
        """A file to stream into (big audio), registered like `write`'s."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(path)
        return path.open("wb")

    def readme(self, layout: str) -> None:
        lines = [f"{self.format} export by audio-oracles.", "", layout.strip(), ""]
        if self.notes:
            lines += ["Notes:", *[f"- {n}" for n in self.notes], ""]
        lines += ["Placeholders:", *([f"- {p}" for p in self.placeholders] or ["- none"])]
        self.write("README.txt", "\n".join(lines) + "\n")


# -- splits ----------------------------------------------------------------------------------
def split_by_speaker(
    segments: Sequence[ExportSegment], ratios: Mapping[str, float]
) -> dict[str, str]:
    """Each speaker's split: no speaker in two. Test, then dev, get a speaker (the smallest)
    while one is left for train;
    the rest go, largest first, to the split furthest below its share of the audio. The
    order is fixed by the speakers' names, so the same export splits the same way."""
    seconds: dict[str, float] = defaultdict(float)
    for seg in segments:
        seconds[seg.speaker] += seg.seconds
    total = sum(seconds.values()) or 1.0
    wanted = [s for s in ("test", "dev") if ratios.get(s, 0) > 0]
    by_size = sorted(seconds, key=lambda s: (seconds[s], hashlib.sha256(s.encode()).digest()))
    out: dict[str, str] = {}
    have = dict.fromkeys(SPLITS, 0.0)
    # Test, then dev, get a speaker each while one is left for train.
    for split, speaker in zip(wanted[: max(0, len(by_size) - 1)], by_size, strict=False):
        out[speaker] = split
        have[split] += seconds[speaker]
    for speaker in reversed(by_size):
        if speaker in out:
            continue
        split = max(SPLITS, key=lambda s: (ratios.get(s, 0) - have[s] / total, s == "train"))
        if ratios.get(split, 0) <= 0:
            split = "train"
        out[speaker] = split
        have[split] += seconds[speaker]
    return out


def split_within(
    segments: Sequence[ExportSegment],
    ratios: Mapping[str, float],
    group: Callable[[ExportSegment], str],
) -> Callable[[ExportSegment], str]:
    """Splits made separately inside each group (a language's folder is a corpus of its
    own): returns each segment's split."""
    groups: dict[str, list[ExportSegment]] = defaultdict(list)
    for seg in segments:
        groups[group(seg)].append(seg)
    splits = {g: split_by_speaker(members, ratios) for g, members in groups.items()}
    return lambda seg: splits[group(seg)][seg.speaker]


def empty_splits_note(
    out: Exported,
    segments: Sequence[ExportSegment],
    split_of: Callable[[ExportSegment], str],
    loaders: str,
    group: Callable[[ExportSegment], str] = lambda seg: "",
) -> None:
    """A README line for each split left empty (too few speakers to fill it)."""
    found: dict[str, set[str]] = defaultdict(set)
    speakers: dict[str, set[str]] = defaultdict(set)
    for seg in segments:
        found[group(seg)].add(split_of(seg))
        speakers[group(seg)].add(seg.speaker)
    for name in sorted(found):
        empty = [s for s in SPLITS if s not in found[name]]
        if empty:
            where = f" in {name}" if name else ""
            out.notes.append(
                f"split(s) {', '.join(empty)}{where} are empty: {len(speakers[name])} "
                f"speaker(s) cannot fill train/dev/test without one speaker in two splits; "
                f"{loaders}"
            )


# -- text ------------------------------------------------------------------------------------
def one_line(text: str) -> str:
    """Tabs and line breaks as spaces, for line- and tab-separated files."""
    return re.sub(r"\s+", " ", text).strip()


def unquoted_field(text: str) -> str:
    """Text for a TSV written without quoting (as Common Voice and VoxPopuli are): one line,
    and a leading straight quote made typographic so that no reader unquotes it."""
    line = one_line(text)
    return "\u201c" + line[1:] if line.startswith('"') else line


def ascii_words(text: str, lang: str = "en") -> str:
    """English corpus text (LibriSpeech, TED-LIUM): numbers spelt out (num2words), letters
    outside ASCII transliterated (anyascii: é -> e, ß -> ss, Cyrillic to Latin), never
    dropped; then only letters, apostrophes inside words, and single spaces."""
    from anyascii import anyascii

    spoken = spell_numbers(unicodedata.normalize("NFKC", text), language_of(lang))
    plain = anyascii(spoken.replace("\u2019", "'"))
    words = re.sub(r"[^A-Za-z' ]+", " ", plain)
    words = re.sub(r"(?<![A-Za-z])'|'(?![A-Za-z])", " ", words)
    return re.sub(r"\s+", " ", words).strip()


def spoken_words(text: str, lang: str) -> str:
    """Normalised text that keeps the language's letters (MLS, VoxPopuli): lower case,
    numbers spelt out in the language, punctuation gone, apostrophes inside words kept."""
    spoken = spell_numbers(unicodedata.normalize("NFKC", text), language_of(lang)).lower()
    kept = "".join(
        c if c == "'" or unicodedata.category(c)[0] in "LMN" else " "
        for c in spoken.replace("\u2019", "'")
    )
    kept = re.sub(r"(?<!\w)'|'(?!\w)", " ", kept)
    return re.sub(r"\s+", " ", kept).strip()


ENGLISH_ONLY_ALTERNATIVES = "mls (the librivox format), commonvoice, voxpopuli or native"


def english_only(
    fmt: str, segments: Sequence[ExportSegment], options: ExportOptions, out: Exported
) -> list[ExportSegment]:
    """An English corpus holds English: an escrow in another language is refused, and
    segments whose `locale` says another language are left out, with a note."""
    if language_of(options.language) != "en":
        raise InvalidParameterError(
            f"{fmt} holds English only, and this export is in '{options.language}': "
            f"use {ENGLISH_ONLY_ALTERNATIVES}"
        )
    kept = [s for s in segments if language_of(segment_language(s, options)) == "en"]
    if len(kept) < len(segments):
        others = sorted(
            {segment_language(s, options) for s in segments}
            - {segment_language(s, options) for s in kept}
        )
        out.notes.append(
            f"{len(segments) - len(kept)} segment(s) in {', '.join(others)} are left out "
            f"({fmt} is English); export them as {ENGLISH_ONLY_ALTERNATIVES}"
        )
    return kept


def with_text(
    segments: Sequence[ExportSegment], out: Exported, text: Callable[[ExportSegment], str]
) -> list[ExportSegment]:
    """Segments a speech-recognition corpus can hold: those with words (a line with an id
    and no text stops its loaders). The others are counted in a note."""
    kept = [s for s in segments if text(s)]
    if len(kept) < len(segments):
        out.notes.append(
            f"{len(segments) - len(kept)} segment(s) without a transcription are left out"
        )
    return kept


# -- audio -----------------------------------------------------------------------------------
def iter_cuts(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, rate: int
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, mono int16 samples) of every segment, one decode pass per source file,
    each yielded as soon as its end is decoded: memory holds the segments being cut."""
    by_file: dict[str, list[int]] = defaultdict(list)
    for i, seg in enumerate(segments):
        by_file[seg.file].append(i)
    per_ms = rate / 1000
    for name in sorted(by_file):
        pending = deque(sorted(by_file[name], key=lambda i: segments[i].start_ms))
        bounds = {
            i: (round(segments[i].start_ms * per_ms), round(segments[i].end_ms * per_ms))
            for i in pending
        }
        active: dict[int, list[np.ndarray]] = {}
        pos = 0
        with PcmReader(open_audio(name), rate=rate, channels=1) as reader:
            for block in reader:
                lo, hi = pos, pos + len(block)
                while pending and bounds[pending[0]][0] < hi:
                    active[pending.popleft()] = []
                for i in list(active):
                    a, b = bounds[i]
                    if max(lo, a) < min(hi, b):
                        active[i].append(block[max(lo, a) - lo : min(hi, b) - lo])
                    if b <= hi:
                        yield i, _joined(active.pop(i), b - a)
                pos = hi
                if not pending and not active:
                    break
        if pending or active:
            first = min([*pending, *active])
            raise InvalidParameterError(
                f"{name}: the segment at {segments[first].start_ms}-{segments[first].end_ms} "
                f"ms ends after the audio ({round(pos / per_ms)} ms)"
            )


ENCODERS = 2  # threads: the codecs (LAME, libsndfile) release the GIL while they work
AHEAD = 8  # segments decoded but not yet written, at most


def iter_encoded(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, rate: int, kind: str
) -> Iterator[tuple[int, bytes]]:
    """`iter_cuts`, each segment encoded as `kind` (wav, flac, mp3, ogg) on ENCODERS
    threads while the next ones decode; in the same order, with at most AHEAD in flight,
    so memory stays flat and the output is the same on every run."""
    with ThreadPoolExecutor(ENCODERS) as pool:
        flight: deque[tuple[int, Future[bytes]]] = deque()
        for i, pcm in iter_cuts(segments, open_audio, rate):
            flight.append((i, pool.submit(encode_audio, pcm, rate, kind)))
            if len(flight) >= AHEAD:
                j, done = flight.popleft()
                yield j, done.result()
        while flight:
            j, done = flight.popleft()
            yield j, done.result()


def _joined(parts: list[np.ndarray], length: int) -> np.ndarray:
    pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return pcm[:length]


def write_sphere(out: Exported, relative: str, source: AudioSource, rate: int) -> float:
    """A whole source as NIST SPHERE (16-bit mono), streamed; returns its seconds."""
    with out.open(relative) as f:
        f.write(nist_sphere_header(0, rate))
        with PcmReader(source, rate=rate, channels=1) as reader:
            for pcm in reader:
                f.write(pcm.astype("<i2").tobytes())
        f.seek(0)
        f.write(nist_sphere_header(reader.samples, rate))
    return reader.samples / rate


def nist_sphere_header(samples: int, rate: int) -> bytes:
    """The 1024-byte NIST SPHERE header of 16-bit little-endian mono PCM (TED-LIUM's
    audio), as sph2pipe, sox and FFmpeg read it."""
    fields = (
        "NIST_1A\n   1024\n"
        f"sample_count -i {samples}\nsample_rate -i {rate}\nchannel_count -i 1\n"
        "sample_n_bytes -i 2\nsample_byte_format -s2 01\nsample_coding -s3 pcm\n"
        "sample_sig_bits -i 16\nend_head\n"
    ).encode()
    return fields + b" " * (1024 - len(fields))


def tsv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Tab-separated, unquoted (fields are made one-line by the caller)."""
    buf = io.StringIO()
    buf.write("\t".join(header) + "\n")
    for row in rows:
        buf.write("\t".join(str(v) for v in row) + "\n")
    return buf.getvalue()

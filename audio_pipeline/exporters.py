"""Dataset exporters: accepted segments (source time) and their source audio into the
on-disk layouts of well-known speech corpora, with the audio cut per segment.

Fields a corpus needs that an annotation cannot know get a documented placeholder, never a
made-up value that looks real:
- speaker id: the segment's `speaker` attribute if the job asked for one, else one speaker
  per source file (the file's stem). `client_id` (Common Voice) is the sha256 of it.
- votes (Common Voice): up_votes 2, down_votes 0, meaning "accepted by the recording
  oracle"; sentence_domain, variant and segment are empty.
- splits: everything is in the train split (Common Voice: train.tsv and validated.tsv;
  LibriSpeech subset `train-annotated`; VoxCeleb Set `dev`; VoxPopuli `train`).
- chapter (LibriSpeech) and video (VoxCeleb): the source file.
- missing gender/age/accent/locale: `unknown` (Common Voice: empty, as it does itself).
Each exporter writes a README.txt into the output saying which placeholders it used.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audio_pipeline.clips import cut_regions, encode_audio
from audio_pipeline.decode import AudioSource
from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.normalize import basic


def file_stem(name: str, limit: int = 80) -> str:
    """A source file's stem short enough for the names built from it (file systems stop
    at 255 bytes): a long one keeps its start and a hash of the whole."""
    stem = Path(name).stem
    if len(stem.encode()) <= limit:
        return stem
    digest = hashlib.sha256(stem.encode()).hexdigest()[:12]
    return f"{stem.encode()[: limit - 13].decode(errors='ignore')}-{digest}"


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


OpenAudio = Callable[[str], AudioSource]


@dataclass
class Exported:
    format: str
    root: Path
    files: list[Path] = field(default_factory=list)
    placeholders: list[str] = field(default_factory=list)

    def write(self, relative: str, data: bytes | str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        self.files.append(path)
        return path


def _cuts(segments: Sequence[ExportSegment], open_audio: OpenAudio, rate: int) -> dict[int, Any]:
    """Samples of every segment (by index), one decode pass per source file."""
    by_file: dict[str, list[int]] = defaultdict(list)
    for i, seg in enumerate(segments):
        by_file[seg.file].append(i)
    out = {}
    for name, indexes in by_file.items():
        ranges = [(segments[i].start_ms, segments[i].end_ms) for i in indexes]
        cut = cut_regions(open_audio(name), ranges, rate)
        for i, r in zip(indexes, ranges, strict=True):
            out[i] = cut[r]
    return out


def _tsv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _speaker_numbers(segments: Sequence[ExportSegment], start: int) -> dict[str, int]:
    return {name: start + n for n, name in enumerate(sorted({s.speaker for s in segments}))}


def _readme(out: Exported, text: str) -> None:
    lines = [f"{out.format} export by audio-oracles.", "", text.strip(), "", "Placeholders:"]
    lines += [f"- {p}" for p in out.placeholders] or ["- none"]
    out.write("README.txt", "\n".join(lines) + "\n")


# -- Common Voice ------------------------------------------------------------------------
CV_HEADER = [
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
]
CV_SPLITS = ("train", "dev", "test", "validated", "invalidated", "other")


def common_voice(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, locale: str = "en"
) -> Exported:
    out = Exported("commonvoice", out_dir)
    cuts = _cuts(segments, open_audio, 48_000)
    rows, durations = [], []
    for i, seg in enumerate(segments):
        name = f"common_voice_{locale}_{i + 1:08d}.mp3"
        out.write(f"{locale}/clips/{name}", encode_audio(cuts[i], 48_000, "mp3"))
        rows.append(
            [
                hashlib.sha256(seg.speaker.encode()).hexdigest(),
                name,
                hashlib.sha256(seg.transcription.encode()).hexdigest(),
                seg.transcription,
                "",
                2,
                0,
                seg.attr("age", ""),
                seg.attr("gender", ""),
                seg.attr("accent", ""),
                "",
                seg.attr("locale", locale),
                "",
            ]
        )
        durations.append([name, seg.end_ms - seg.start_ms])
    for split in CV_SPLITS:
        out.write(
            f"{locale}/{split}.tsv",
            _tsv(CV_HEADER, rows if split in ("train", "validated") else []),
        )
    out.write(f"{locale}/clip_durations.tsv", _tsv(["clip", "duration[ms]"], durations))
    out.placeholders += [
        "client_id: sha256 of the speaker (the `speaker` attribute, else the source file)",
        "up_votes 2 / down_votes 0: accepted by the recording oracle",
        "every clip is in train.tsv and validated.tsv; dev/test/invalidated/other are empty",
    ]
    _readme(out, "Layout: <locale>/clips/*.mp3 (48 kHz), split TSVs with the v17 header.")
    return out


# -- LibriSpeech -------------------------------------------------------------------------
def _libri_text(text: str) -> str:
    return re.sub(r"[^A-Z' ]", "", basic(text).upper()).strip()


def librispeech(
    segments: Sequence[ExportSegment],
    open_audio: OpenAudio,
    out_dir: Path,
    subset: str = "train-annotated",
) -> Exported:
    out = Exported("librispeech", out_dir)
    cuts = _cuts(segments, open_audio, 16_000)
    speakers = _speaker_numbers(segments, 1)
    chapters: dict[tuple[int, str], int] = {}
    lines: dict[tuple[int, int], list[str]] = defaultdict(list)
    seconds: dict[int, float] = defaultdict(float)
    genders: dict[int, str] = {}
    order = sorted(range(len(segments)), key=lambda i: (segments[i].file, segments[i].start_ms))
    for i in order:
        seg = segments[i]
        spk = speakers[seg.speaker]
        ch = chapters.setdefault((spk, seg.file), 100 + len(chapters))
        utt = len(lines[(spk, ch)])
        uid = f"{spk}-{ch}-{utt:04d}"
        out.write(f"{subset}/{spk}/{ch}/{uid}.flac", encode_audio(cuts[i], 16_000, "flac"))
        lines[(spk, ch)].append(f"{uid} {_libri_text(seg.transcription)}")
        seconds[spk] += (seg.end_ms - seg.start_ms) / 1000
        genders.setdefault(spk, {"male": "M", "female": "F"}.get(seg.attr("gender"), "U"))
    for (spk, ch), texts in lines.items():
        out.write(f"{subset}/{spk}/{ch}/{spk}-{ch}.trans.txt", "\n".join(texts) + "\n")
    names = {v: k for k, v in speakers.items()}
    spk_lines = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    spk_lines += [
        f"{spk:<5}| {genders[spk]} | {subset:<17}| {seconds[spk] / 60:5.2f} | {names[spk]}"
        for spk in sorted(genders)
    ]
    out.write("SPEAKERS.TXT", "\n".join(spk_lines) + "\n")
    ch_lines = [
        ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE"
    ]
    for (spk, file), ch in sorted(chapters.items(), key=lambda kv: kv[1]):
        minutes = sum(
            (s.end_ms - s.start_ms) / 60_000
            for s in segments
            if s.file == file and speakers[s.speaker] == spk
        )
        ch_lines.append(
            f"{ch:<6}| {spk:<5}| {minutes:5.2f} | {subset:<17}| 0    | 0     | {file} | {file}"
        )
    out.write("CHAPTERS.TXT", "\n".join(ch_lines) + "\n")
    out.placeholders += [
        "speaker ids are numbers given in order of the speaker names (listed in SPEAKERS.TXT NAME)",
        "one chapter per speaker and source file; PROJ. and BOOK ID are 0",
        "SEX U where the gender attribute is missing",
    ]
    _readme(
        out, "Layout: <subset>/<speaker>/<chapter>/<spk>-<ch>-<utt>.flac (16 kHz) and .trans.txt."
    )
    return out


# -- TED-LIUM ----------------------------------------------------------------------------
def tedlium(segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path) -> Exported:
    """STM per source file (times relative to the talk) with the talk's segments cut out as
    wav beside it (data/wav/<talk>/<n>.wav) and the STM naming the talk."""
    out = Exported("tedlium", out_dir)
    cuts = _cuts(segments, open_audio, 16_000)
    by_talk: dict[str, list[int]] = defaultdict(list)
    for i, seg in enumerate(segments):
        by_talk[file_stem(seg.file)].append(i)
    for talk, indexes in sorted(by_talk.items()):
        stm = []
        for n, i in enumerate(sorted(indexes, key=lambda i: segments[i].start_ms)):
            seg = segments[i]
            out.write(f"data/wav/{talk}/{n + 1:05d}.wav", encode_audio(cuts[i], 16_000, "wav"))
            gender = seg.attr("gender")
            stm.append(
                f"{talk} 1 {seg.speaker} {seg.start_ms / 1000:.2f} {seg.end_ms / 1000:.2f} "
                f"<o,f0,{gender}> {basic(seg.transcription)}"
            )
        out.write(f"data/stm/{talk}.stm", "\n".join(stm) + "\n")
    out.placeholders += ["label <o,f0,GENDER>: f0 (wide band) for every segment"]
    _readme(out, "Layout: data/stm/<talk>.stm and data/wav/<talk>/<n>.wav, one per STM line.")
    return out


# -- VoxCeleb ----------------------------------------------------------------------------
def voxceleb(segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path) -> Exported:
    out = Exported("voxceleb", out_dir)
    cuts = _cuts(segments, open_audio, 16_000)
    speakers = _speaker_numbers(segments, 10001)
    counts: dict[tuple[int, str], int] = defaultdict(int)
    meta: dict[int, list[str]] = {}
    for i, seg in enumerate(segments):
        spk = speakers[seg.speaker]
        video = re.sub(r"[^A-Za-z0-9_-]", "_", file_stem(seg.file))
        counts[(spk, video)] += 1
        out.write(
            f"wav/id{spk}/{video}/{counts[(spk, video)]:05d}.wav",
            encode_audio(cuts[i], 16_000, "wav"),
        )
        gender = {"male": "m", "female": "f"}.get(seg.attr("gender"), "unknown")
        meta.setdefault(spk, [f"id{spk}", seg.speaker, gender, seg.attr("locale"), "dev"])
    out.write(
        "vox1_meta.csv",
        _tsv(
            ["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"],
            [meta[k] for k in sorted(meta)],
        ),
    )
    out.placeholders += [
        "VGGFace1 ID holds the speaker name; Nationality holds the locale attribute",
        "video folder = the source file; Set dev for all",
    ]
    _readme(out, "Layout: wav/<id>/<video>/<nnnnn>.wav and vox1_meta.csv (tab-separated).")
    return out


# -- VCTK --------------------------------------------------------------------------------
def vctk(segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path) -> Exported:
    out = Exported("vctk", out_dir)
    cuts = _cuts(segments, open_audio, 48_000)
    speakers = {name: f"p{n}" for name, n in _speaker_numbers(segments, 225).items()}
    counts: dict[str, int] = defaultdict(int)
    info: dict[str, list[str]] = {}
    for i, seg in enumerate(segments):
        spk = speakers[seg.speaker]
        counts[spk] += 1
        uid = f"{spk}_{counts[spk]:03d}"
        out.write(
            f"wav48_silence_trimmed/{spk}/{uid}_mic1.flac", encode_audio(cuts[i], 48_000, "flac")
        )
        out.write(f"txt/{spk}/{uid}.txt", seg.transcription.strip() + "\n")
        gender = {"male": "M", "female": "F"}.get(seg.attr("gender"), "unknown")
        info.setdefault(
            spk, [spk, seg.attr("age"), gender, seg.attr("accent"), seg.attr("locale"), seg.speaker]
        )
    lines = ["ID  AGE  GENDER  ACCENTS  REGION COMMENTS"]
    lines += ["  ".join(info[k]) for k in sorted(info)]
    out.write("speaker-info.txt", "\n".join(lines) + "\n")
    out.placeholders += [
        "audio is resampled to 48 kHz whatever the source rate (the layout's name promises it)",
        "REGION holds the locale attribute; COMMENTS holds the speaker name",
    ]
    _readme(out, "Layout: wav48_silence_trimmed/<p>/<p>_<n>_mic1.flac, txt/<p>/<p>_<n>.txt.")
    return out


# -- VoxPopuli ---------------------------------------------------------------------------
VP_HEADER = [
    "id",
    "raw_text",
    "normalized_text",
    "speaker_id",
    "split",
    "gender",
    "is_gold_transcript",
    "accent",
]


def voxpopuli(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, lang: str = "en"
) -> Exported:
    out = Exported("voxpopuli", out_dir)
    cuts = _cuts(segments, open_audio, 16_000)
    rows = []
    for i, seg in enumerate(segments):
        uid = f"{file_stem(seg.file)}_{seg.start_ms:09d}_{seg.end_ms:09d}"
        out.write(f"transcribed_data/{lang}/audio/{uid}.wav", encode_audio(cuts[i], 16_000, "wav"))
        rows.append(
            [
                uid,
                seg.transcription,
                basic(seg.transcription),
                seg.speaker,
                "train",
                seg.attr("gender"),
                "True",
                seg.attr("accent", "None"),
            ]
        )
    out.write(f"transcribed_data/{lang}/asr_train.tsv", _tsv(VP_HEADER, rows))
    out.placeholders += [
        "audio is wav in transcribed_data/<lang>/audio/ (VoxPopuli ships ogg per year)",
        "is_gold_transcript True: accepted by the recording oracle",
    ]
    _readme(out, "Layout: transcribed_data/<lang>/asr_train.tsv and the segment audio.")
    return out


# -- LibriVox and native -----------------------------------------------------------------
LIBRIVOX_HEADER = ["id", "path", "source", "start", "end", "duration", "text", "speaker", "gender"]


def librivox(segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path) -> Exported:
    """LibriVox has no corpus layout: clips/<id>.mp3 and metadata.tsv (header documented)."""
    out = Exported("librivox", out_dir)
    cuts = _cuts(segments, open_audio, 24_000)
    rows = []
    for i, seg in enumerate(segments):
        uid = f"{i + 1:06d}"
        out.write(f"clips/{uid}.mp3", encode_audio(cuts[i], 24_000, "mp3"))
        rows.append(
            [
                uid,
                f"clips/{uid}.mp3",
                seg.file,
                f"{seg.start_ms / 1000:.3f}",
                f"{seg.end_ms / 1000:.3f}",
                f"{(seg.end_ms - seg.start_ms) / 1000:.3f}",
                seg.transcription,
                seg.speaker,
                seg.attr("gender"),
            ]
        )
    out.write("metadata.tsv", _tsv(LIBRIVOX_HEADER, rows))
    _readme(
        out,
        "Layout: clips/<id>.mp3 (24 kHz) and metadata.tsv with the columns "
        + ", ".join(LIBRIVOX_HEADER)
        + " (start/end: seconds in the source file).",
    )
    return out


NATIVE_FIELDS = [
    "id",
    "file",
    "start_ms",
    "end_ms",
    "label",
    "transcription",
    "attributes",
    "annotator",
    "audio",
]


def native(segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path) -> Exported:
    """Every field: segments.json and segments.tsv (attributes as JSON), clips/<id>.wav."""
    out = Exported("native", out_dir)
    cuts = _cuts(segments, open_audio, 16_000)
    docs = []
    for i, seg in enumerate(segments):
        uid = f"{i + 1:06d}"
        out.write(f"clips/{uid}.wav", encode_audio(cuts[i], 16_000, "wav"))
        docs.append(
            {
                "id": uid,
                "file": seg.file,
                "start_ms": seg.start_ms,
                "end_ms": seg.end_ms,
                "label": seg.label,
                "transcription": seg.transcription,
                "attributes": dict(seg.attributes),
                "annotator": seg.annotator,
                "audio": f"clips/{uid}.wav",
            }
        )
    out.write("segments.json", json.dumps(docs, indent=1, ensure_ascii=False) + "\n")
    out.write(
        "segments.tsv",
        _tsv(
            NATIVE_FIELDS,
            [
                [
                    json.dumps(d[f], sort_keys=True) if f == "attributes" else d[f]
                    for f in NATIVE_FIELDS
                ]
                for d in docs
            ],
        ),
    )
    _readme(out, "Layout: segments.json, segments.tsv (attributes as JSON) and clips/<id>.wav.")
    return out


EXPORTERS: dict[str, Callable[[Sequence[ExportSegment], OpenAudio, Path], Exported]] = {
    "commonvoice": common_voice,
    "librispeech": librispeech,
    "tedlium": tedlium,
    "voxceleb": voxceleb,
    "vctk": vctk,
    "voxpopuli": voxpopuli,
    "librivox": librivox,
    "native": native,
}


def export(
    name: str, segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path
) -> Exported:
    try:
        exporter = EXPORTERS[name]
    except KeyError:
        raise InvalidParameterError(
            f"unknown export format '{name}': use {', '.join(EXPORTERS)}"
        ) from None
    bad = [s for s in segments if s.end_ms <= s.start_ms]
    if bad:
        raise InvalidParameterError(f"segment of {bad[0].file} at {bad[0].start_ms} ms is empty")
    return exporter(list(segments), open_audio, out_dir)

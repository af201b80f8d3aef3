"""VoxPopuli (transcribed data): `transcribed_data/<lang>/<year>/<id>.ogg` (16 kHz mono Ogg
Vorbis) and `asr_{train,dev,test}.tsv` per language, unquoted as VoxPopuli writes them,
as SpeechBrain's VoxPopuli preparation reads them."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from audio_pipeline.exports.common import (
    SPLITS,
    Exported,
    ExportOptions,
    ExportSegment,
    OpenAudio,
    empty_splits_note,
    file_stem,
    iter_encoded,
    language_of,
    segment_language,
    split_within,
    spoken_words,
    token,
    tsv,
    unquoted_field,
    with_text,
)

VP_HEADER = ["id", "raw_text", "normalized_text", "speaker_id", "split", "gender",
             "is_gold_transcript", "accent"]  # fmt: skip
SESSION = "20200101-0000"  # ids begin with their session's date; the year is the folder


def voxpopuli(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, options: ExportOptions
) -> Exported:
    out = Exported("voxpopuli", out_dir)
    segments = with_text(
        segments, out, lambda s: spoken_words(s.transcription, segment_language(s, options))
    )

    def folder(seg: ExportSegment) -> str:
        return language_of(segment_language(seg, options))

    split_of = split_within(segments, options.ratios, folder)
    rows: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    order = sorted(range(len(segments)), key=lambda i: (segments[i].file, segments[i].start_ms))
    uids = {
        i: f"{SESSION}-{re.sub(r'[^A-Za-z0-9-]', '-', file_stem(segments[i].file))}_{n + 1}"
        for n, i in enumerate(order)
    }
    short = 0
    for i, data in iter_encoded(segments, open_audio, 16_000, "ogg"):
        seg = segments[i]
        lang = language_of(segment_language(seg, options))
        out.write(f"transcribed_data/{lang}/{uids[i][:4]}/{uids[i]}.ogg", data)
        normalized = spoken_words(seg.transcription, lang)
        short += len(normalized.split()) < 3
        split = split_of(seg)
        rows[(lang, split)].append(
            [uids[i], unquoted_field(seg.transcription), normalized, token(seg.speaker), split,
             seg.attr("gender"), "True", token(seg.attr("accent", "None"))]
        )  # fmt: skip
    for lang in sorted({lang for lang, _ in rows}):
        for split in SPLITS:
            out.write(
                f"transcribed_data/{lang}/asr_{split}.tsv",
                tsv(VP_HEADER, sorted(rows[(lang, split)])),
            )
    empty_splits_note(
        out,
        segments,
        split_of,
        "SpeechBrain's prepare_voxpopuli then writes an empty CSV for them",
        folder,
    )
    if short:
        out.notes.append(
            f"{short} utterance(s) have fewer than 3 words: SpeechBrain's prepare_voxpopuli "
            "leaves such utterances out"
        )
    out.notes.append(
        "lhotse's prepare_voxpopuli reads the raw session audio (raw_audios/) and "
        "asr_<lang>.tsv.gz, not this transcribed layout"
    )
    out.placeholders += [
        f"session {SESSION} for every id (VoxPopuli ids begin with their session's date; the "
        "audio folder is the year, which SpeechBrain's preparation requires to be 2020)",
        "is_gold_transcript True: accepted by the recording oracle; accent None when missing",
        "normalized_text: lower case, punctuation removed, numbers spelt out in the language",
    ]
    out.readme(
        "Layout: transcribed_data/<lang>/asr_{train,dev,test}.tsv and <year>/<id>.ogg. "
        "SpeechBrain: prepare_voxpopuli(data_folder=this folder/transcribed_data/<lang>, ...)."
    )
    return out

"""TED-LIUM release 3: `legacy/<split>/sph/<talk>.sph` (each whole source as 16 kHz NIST
SPHERE) and `legacy/<split>/stm/<talk>.stm` with the segments in talk time, and the train
talks again under `data/` (hard links), where TED-LIUM 3 keeps its train set and
torchaudio reads it. A talk is one source file; talks that share a speaker stay in one
split."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from audio_pipeline.exports.common import (
    Exported,
    ExportOptions,
    ExportSegment,
    OpenAudio,
    ascii_words,
    empty_splits_note,
    english_only,
    file_stem,
    split_by_speaker,
    token,
    with_text,
    write_sphere,
)


def talk_id(name: str) -> str:
    return token(file_stem(name).replace(".", "_"))


def _talk_groups(segments: Sequence[ExportSegment]) -> dict[str, str]:
    """Each talk's group: talks joined by a common speaker (union-find), so that splitting
    groups keeps every speaker in one split."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for seg in segments:
        a, b = find("talk:" + seg.file), find("speaker:" + seg.speaker)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {seg.file: find("talk:" + seg.file) for seg in segments}


def tedlium(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, options: ExportOptions
) -> Exported:
    out = Exported("tedlium", out_dir)
    segments = english_only("tedlium", segments, options, out)
    segments = with_text(segments, out, lambda s: ascii_words(s.transcription))
    groups = _talk_groups(segments)
    # Split the groups as if each were one speaker: a talk, and its speakers, in one split.
    split_of_group = split_by_speaker(
        [replace(s, attributes={**s.attributes, "speaker": groups[s.file]}) for s in segments],
        options.ratios,
    )
    by_talk: dict[str, list[ExportSegment]] = defaultdict(list)
    for seg in segments:
        by_talk[seg.file].append(seg)
    for name, talk_segments in sorted(by_talk.items()):
        split = split_of_group[groups[name]]
        talk = talk_id(name)
        seconds = write_sphere(out, f"legacy/{split}/sph/{talk}.sph", open_audio(name), 16_000)
        lines = []
        for seg in sorted(talk_segments, key=lambda s: s.start_ms):
            end = min(seg.end_ms / 1000, seconds)
            lines.append(
                f"{talk} 1 {token(seg.speaker)} {seg.start_ms / 1000:.3f} {end:.3f} "
                f"<o,f0,{token(seg.attr('gender'))}> {ascii_words(seg.transcription).lower()}"
            )
        out.write(f"legacy/{split}/stm/{talk}.stm", "\n".join(lines) + "\n")
        if split == "train":
            out.link(f"legacy/train/sph/{talk}.sph", f"data/sph/{talk}.sph")
            out.link(f"legacy/train/stm/{talk}.stm", f"data/stm/{talk}.stm")
    empty_splits_note(
        out,
        segments,
        lambda s: split_of_group[groups[s.file]],
        "lhotse's prepare_tedlium reads train, dev and test: pass dataset_parts=('train',)",
    )
    out.notes.append(
        "data/ is legacy/train again, as hard links (no more disk), because torchaudio's "
        "TEDLIUM(root, release='release3') reads its train subset from data/ and dev and "
        "test from legacy/; a zip archive cannot link, so there data/ is a second copy"
    )
    out.notes.append(
        "lhotse reads .sph through sph2pipe (`lhotse install-sph2pipe`); sox and FFmpeg read "
        "these files as they are"
    )
    out.placeholders += [
        "talk = the source file; its whole audio is the talk's .sph (16 kHz)",
        "label <o,f0,GENDER>: f0 (wide band) for every segment, GENDER from the attribute",
        "speaker and talk ids: spaces become _ (STM fields are separated by single spaces)",
        "text: lower case a-z and apostrophes, numbers spelt out in English, other letters "
        "transliterated (anyascii)",
    ]
    out.readme(
        "Layout: TED-LIUM 3's legacy/{train,dev,test}/{sph,stm}/<talk>.{sph,stm} and "
        "data/{sph,stm} (the train talks). lhotse: "
        "prepare_tedlium(this folder); torchaudio: TEDLIUM(parent folder, release='release3') "
        "with this folder named TEDLIUM_release-3."
    )
    return out

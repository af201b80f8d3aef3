"""The `librivox` format: Multilingual LibriSpeech (MLS), the LibriVox-derived corpus that
loaders read: `mls_<language>/{train,dev,test}/audio/<spk>/<book>/<spk>_<book>_<utt>.flac`
(16 kHz FLAC), `transcripts.txt` per split and `metainfo.txt`, for any language."""

from __future__ import annotations

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
    iter_encoded,
    language_of,
    segment_language,
    split_within,
    spoken_words,
    with_text,
)

# MLS's folder names; other languages keep their code (lhotse takes the name after mls_).
NAMES = {"en": "english", "de": "german", "nl": "dutch", "fr": "french", "es": "spanish",
         "it": "italian", "pt": "portuguese", "pl": "polish"}  # fmt: skip
INCOMPLETE = "incomplete_splits"


def mls(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, options: ExportOptions
) -> Exported:
    out = Exported("librivox", out_dir)

    def text(seg: ExportSegment) -> str:
        return spoken_words(seg.transcription, segment_language(seg, options))

    segments = with_text(segments, out, text)

    def language(seg: ExportSegment) -> str:
        lang = language_of(segment_language(seg, options))
        return f"mls_{NAMES.get(lang, lang)}"

    split_of = split_within(segments, options.ratios, language)
    filled: dict[str, set[str]] = defaultdict(set)
    for seg in segments:
        filled[language(seg)].add(split_of(seg))
    # lhotse's prepare_mls reads test, dev and train of every mls_* folder at the top and
    # stops on an empty one: a language whose speakers cannot fill all three sits apart.
    apart = {name for name, got in filled.items() if got != set(SPLITS)}

    def folder(seg: ExportSegment) -> str:
        name = language(seg)
        return f"{INCOMPLETE}/{name}" if name in apart else name

    speakers = {name: n + 1 for n, name in enumerate(sorted({s.speaker for s in segments}))}
    books = {name: n + 1 for n, name in enumerate(sorted({s.file for s in segments}))}
    counts: dict[tuple[int, int], int] = defaultdict(int)
    uids = {}
    for i in sorted(range(len(segments)), key=lambda i: (segments[i].file, segments[i].start_ms)):
        key = (speakers[segments[i].speaker], books[segments[i].file])
        uids[i] = f"{key[0]}_{key[1]}_{counts[key]:06d}"
        counts[key] += 1
    lines: dict[tuple[str, str], list[str]] = defaultdict(list)
    meta: dict[str, dict[int, str]] = defaultdict(dict)
    minutes: dict[tuple[str, int], float] = defaultdict(float)
    for i, data in iter_encoded(segments, open_audio, 16_000, "flac"):
        seg = segments[i]
        where = folder(seg)
        split = split_of(seg)
        spk, book, _ = uids[i].split("_")
        out.write(f"{where}/{split}/audio/{spk}/{book}/{uids[i]}.flac", data)
        lines[(where, split)].append(f"{uids[i]}\t{text(seg)}")
        gender = {"male": "M", "female": "F"}.get(seg.attr("gender"), "U")
        meta[where].setdefault(int(spk), f"{int(spk):<10}|   {gender}    | {split:<10}|")
        minutes[(where, int(spk))] += seg.seconds / 60
    for name in sorted(meta):
        for split in SPLITS:
            out.write(
                f"{name}/{split}/transcripts.txt",
                "".join(f"{x}\n" for x in sorted(lines[(name, split)])),
            )
        rows = [
            " | ".join(("SPEAKER", "GENDER", "PARTITION", "MINUTES", "BOOK ID", "TITLE", "CHAPTER"))
        ]
        rows += [
            f"{prefix} {minutes[(name, spk)]:10.3f} | {0:<10} | {'unknown':<18} | unknown"
            for spk, prefix in sorted(meta[name].items())
        ]
        out.write(f"{name}/metainfo.txt", "\n".join(rows) + "\n")
    empty_splits_note(
        out,
        segments,
        split_of,
        f"so it is under {INCOMPLETE}/, where prepare_mls(this folder) does not look: "
        "lhotse's prepare_mls stops on a language with an empty split",
        folder,
    )
    out.placeholders += [
        "speaker ids are numbers given in order of the speaker names; book = the source file",
        "GENDER U where it is missing; BOOK ID 0, TITLE and CHAPTER unknown",
        "text: lower case, punctuation removed, numbers spelt out in the language, letters "
        "kept as written",
    ]
    out.readme(
        "Layout: Multilingual LibriSpeech's mls_<language>/{train,dev,test}/audio/<spk>/"
        "<book>/*.flac (16 kHz), transcripts.txt, metainfo.txt; a language with too few "
        f"speakers for the three splits in {INCOMPLETE}/mls_<language>/. lhotse: "
        "prepare_mls(this folder, opus=False)."
    )
    return out

"""LibriSpeech: `<subset>/<speaker>/<chapter>/<spk>-<ch>-<utt>.flac` (16 kHz FLAC) with a
`.trans.txt` per chapter, SPEAKERS.TXT and CHAPTERS.TXT. Subsets are LibriSpeech's own
names, by split: train -> train-clean-100, dev -> dev-clean, test -> test-clean. Text is
LibriSpeech's: upper case, numbers spelt out, letters transliterated to A-Z."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from audio_pipeline.exports.common import (
    Exported,
    ExportOptions,
    ExportSegment,
    OpenAudio,
    ascii_words,
    empty_splits_note,
    english_only,
    iter_encoded,
    split_by_speaker,
    with_text,
)

SUBSETS = {"train": "train-clean-100", "dev": "dev-clean", "test": "test-clean"}


def libri_text(text: str) -> str:
    return ascii_words(text).upper()


def librispeech(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, options: ExportOptions
) -> Exported:
    out = Exported("librispeech", out_dir)
    segments = english_only("librispeech", segments, options, out)
    segments = with_text(segments, out, lambda s: libri_text(s.transcription))
    splits = split_by_speaker(segments, options.ratios)
    speakers = {name: n + 1 for n, name in enumerate(sorted({s.speaker for s in segments}))}
    chapters: dict[tuple[int, str], int] = {}
    uids: dict[int, str] = {}
    counts: dict[int, int] = defaultdict(int)
    for i in sorted(range(len(segments)), key=lambda i: (segments[i].file, segments[i].start_ms)):
        seg = segments[i]
        spk = speakers[seg.speaker]
        ch = chapters.setdefault((spk, seg.file), 100 + len(chapters))
        uids[i] = f"{spk}-{ch}-{counts[ch]:04d}"
        counts[ch] += 1
    lines: dict[str, list[str]] = defaultdict(list)
    seconds: dict[int, float] = defaultdict(float)  # per speaker
    chapter_s: dict[int, float] = defaultdict(float)
    for i, data in iter_encoded(segments, open_audio, 16_000, "flac"):
        seg = segments[i]
        reader, chapter, _ = uids[i].split("-")
        folder = f"{SUBSETS[splits[seg.speaker]]}/{reader}/{chapter}"
        out.write(f"{folder}/{uids[i]}.flac", data)
        lines[folder].append(f"{uids[i]} {libri_text(seg.transcription)}")
        seconds[int(reader)] += seg.seconds
        chapter_s[int(chapter)] += seg.seconds
    for folder, texts in lines.items():
        reader, chapter = folder.split("/")[1:]
        out.write(f"{folder}/{reader}-{chapter}.trans.txt", "\n".join(sorted(texts)) + "\n")
    by_number = {n: name for name, n in speakers.items()}
    first = {speakers[s.speaker]: s for s in reversed(segments)}
    sex = {n: {"male": "M", "female": "F"}.get(first[n].attr("gender"), "U") for n in first}
    spk_lines = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    spk_lines += [
        f"{n:<5}| {sex[n]} | {SUBSETS[splits[by_number[n]]]:<17}| {seconds[n] / 60:5.2f} | "
        f"{by_number[n]}"
        for n in sorted(first)
    ]
    out.write("SPEAKERS.TXT", "\n".join(spk_lines) + "\n")
    ch_lines = [
        ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE"
    ]
    for (spk, file), ch in sorted(chapters.items(), key=lambda kv: kv[1]):
        minutes = chapter_s[ch] / 60
        subset = SUBSETS[splits[by_number[spk]]]
        ch_lines.append(
            f"{ch:<6}| {spk:<5}| {minutes:5.2f} | {subset:<17}| 0    | 0     | {file} | {file}"
        )
    out.write("CHAPTERS.TXT", "\n".join(ch_lines) + "\n")
    empty_splits_note(
        out,
        segments,
        lambda s: splits[s.speaker],
        "lhotse and torchaudio then find only the subsets that are there",
    )
    if "U" in sex.values():
        out.notes.append("SEX U: no gender attribute (Kaldi's data_prep.sh accepts M and F only)")
    out.placeholders += [
        "speaker ids are numbers given in order of the speaker names (NAME in SPEAKERS.TXT)",
        "one chapter per speaker and source file (its name is the chapter's title); PROJ. and "
        "BOOK ID are 0",
        f"subsets by speaker: {', '.join(f'{k} -> {v}' for k, v in SUBSETS.items())} "
        "(LibriSpeech's names; the audio is not graded clean or other)",
        "text: upper case A-Z and apostrophes; numbers spelt out in English (num2words); other "
        "letters transliterated (anyascii: É -> E, ß -> SS, Cyrillic to Latin)",
    ]
    out.readme(
        "Layout: LibriSpeech's: <subset>/<speaker>/<chapter>/<spk>-<ch>-<utt>.flac (16 kHz "
        "mono FLAC), <spk>-<ch>.trans.txt, SPEAKERS.TXT, CHAPTERS.TXT. lhotse: "
        "prepare_librispeech(this folder); torchaudio: LIBRISPEECH(this folder, url=<subset>, "
        "folder_in_archive='')."
    )
    return out

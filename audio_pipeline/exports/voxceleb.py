"""VoxCeleb1: `wav/<id1NNNN>/<video>/<nnnnn>.wav` (16 kHz WAV), `vox1_meta.csv` (tab-separated,
five fields), `iden_split.txt` (1 train, 2 dev, 3 test) and `veri_test.txt` (trial pairs
among the test speakers), as torchaudio and lhotse read them."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from audio_pipeline.exports.common import (
    Exported,
    ExportOptions,
    ExportSegment,
    OpenAudio,
    empty_splits_note,
    file_stem,
    iter_encoded,
    segment_language,
    split_by_speaker,
    token,
    tsv,
)

IDEN = {"train": 1, "dev": 2, "test": 3}
SET = {"train": "dev", "dev": "dev", "test": "test"}  # VoxCeleb1's meta knows dev and test


def _trials(paths: dict[str, list[str]]) -> list[str]:
    """Each test utterance against the next of its speaker (target, 1) and against the
    same position of the next speaker (non-target, 0): a fixed, balanced list."""
    speakers = sorted(paths)
    lines = []
    for n, spk in enumerate(speakers):
        mine = paths[spk]
        other = paths[speakers[(n + 1) % len(speakers)]] if len(speakers) > 1 else []
        for k, path in enumerate(mine):
            if len(mine) > 1:
                lines.append(f"1 {path} {mine[(k + 1) % len(mine)]}")
            if other and other is not mine:
                lines.append(f"0 {path} {other[k % len(other)]}")
    return lines


def voxceleb(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, options: ExportOptions
) -> Exported:
    out = Exported("voxceleb", out_dir)
    splits = split_by_speaker(segments, options.ratios)
    numbers = {name: 10001 + n for n, name in enumerate(sorted({s.speaker for s in segments}))}
    counts: dict[tuple[int, str], int] = defaultdict(int)
    iden, test_paths = [], defaultdict(list)
    meta: dict[int, list[str]] = {}
    order = sorted(range(len(segments)), key=lambda i: (segments[i].file, segments[i].start_ms))
    relative = {}
    for i in order:
        seg = segments[i]
        spk = numbers[seg.speaker]
        video = re.sub(r"[^A-Za-z0-9_-]", "_", file_stem(seg.file))
        counts[(spk, video)] += 1
        relative[i] = f"id{spk}/{video}/{counts[(spk, video)]:05d}.wav"
    for i, data in iter_encoded(segments, open_audio, 16_000, "wav"):
        seg = segments[i]
        out.write(f"wav/{relative[i]}", data)
        split = splits[seg.speaker]
        iden.append(f"{IDEN[split]} {relative[i]}")
        if split == "test":
            test_paths[seg.speaker].append(relative[i])
        region = re.split(r"[-_]", segment_language(seg, options))[1:]
        meta.setdefault(
            numbers[seg.speaker],
            [f"id{numbers[seg.speaker]}", token(seg.speaker),
             {"male": "m", "female": "f"}.get(seg.attr("gender"), "unknown"),
             region[0].upper() if region else "unknown", SET[split]],
        )  # fmt: skip
    out.write(
        "vox1_meta.csv",
        tsv(["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"],
            [meta[k] for k in sorted(meta)]),
    )  # fmt: skip
    out.write("iden_split.txt", "\n".join(sorted(iden, key=lambda x: x.split()[1])) + "\n")
    trials = _trials({k: sorted(v) for k, v in test_paths.items()})
    out.write("veri_test.txt", "\n".join(trials) + ("\n" if trials else ""))
    if not trials:
        out.notes.append(
            "veri_test.txt is empty: the test split has too few speakers or utterances to "
            "pair (torchaudio's VoxCeleb1Verification then has no items)"
        )
    empty_splits_note(
        out,
        segments,
        lambda s: splits[s.speaker],
        "lhotse's prepare_voxceleb needs dev and test speakers in vox1_meta.csv",
    )
    out.notes.append(
        "lhotse's prepare_voxceleb downloads openslr's VoxCeleb1 trial list for its trials "
        "manifest; this export's own trials are veri_test.txt"
    )
    out.placeholders += [
        "VGGFace1 ID holds the speaker name (spaces as _); Nationality holds the region of "
        "the locale (en-US -> US), else unknown",
        "video folder = the source file",
        "Set: dev for the train and dev splits, test for test (VoxCeleb1's two values); "
        "iden_split.txt keeps train (1), dev (2) and test (3) apart",
        "veri_test.txt: each test utterance against another of its speaker (1) and one of "
        "the next test speaker (0)",
    ]
    out.readme(
        "Layout: VoxCeleb1's wav/<id>/<video>/<nnnnn>.wav (16 kHz mono), vox1_meta.csv, "
        "iden_split.txt, veri_test.txt. torchaudio: VoxCeleb1Identification(this folder, "
        "subset=...) and VoxCeleb1Verification(this folder); lhotse: "
        "prepare_voxceleb(voxceleb1_root=this folder)."
    )
    return out

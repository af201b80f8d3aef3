"""A small speech job shared by the integration tests: two data files and one ground-truth
file of espeak-ng speech with known words, the manifest, and what a perfect annotator
would hear in each file."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio_pipeline.segments import format_time
from sandbox.annotators import Said, Truth
from sandbox.speech import Utterance, compose, write_audio

DATA = [
    [
        Utterance("The birch canoe slid on the smooth planks"),
        Utterance("Glue the sheet to the dark blue background", "en-gb"),
    ],
    [
        Utterance("It is easy to tell the depth of a well", "en-us+f3"),
        Utterance("These days a chicken leg is a rare dish"),
        Utterance("Rice is often served in round bowls", "en-gb+m3"),
    ],
]
GT = [
    Utterance("The juice of lemons makes fine punch"),
    Utterance("The box was thrown beside the parked truck", "en-gb"),
    Utterance("Four hours of steady work faced us", "en-us+f3"),
]


@dataclass(frozen=True)
class JobData:
    root: Path  # media/ and gt.tsv, as `escrow launch --data` takes them
    truth: Truth


def _said(track: Any, utterances: list[Utterance]) -> list[Said]:
    return [
        Said(
            round(span.start * 1000),
            round(span.end * 1000),
            utt.text,
            {"gender": "female" if "+f" in utt.voice else "male"},
        )
        for span, utt in zip(track.spans, utterances, strict=True)
    ]


def make_job_data(root: Path) -> JobData:
    (root / "media").mkdir(parents=True)
    truth: dict[str, list[Said]] = {}
    for i, utterances in enumerate(DATA):
        track = compose(utterances, 1.5)
        write_audio(root / "media" / f"talk{i}.mp3", track.pcm, track.rate, out_rate=44_100)
        truth[f"talk{i}.mp3"] = _said(track, utterances)
    gt = compose(GT, 1.2)
    write_audio(root / "media" / "gt.wav", gt.pcm, gt.rate)
    truth["gt.wav"] = _said(gt, GT)
    lines = ["filename\tstart\tstop\tlabel\ttext\tspan_id"]
    lines += [
        f"gt.wav\t{format_time(s.start)}\t{format_time(s.end)}\tspeech\t{t}\tgt{i}"
        for i, (s, t) in enumerate(zip(gt.spans, gt.texts, strict=True))
    ]
    (root / "gt.tsv").write_text("\n".join(lines) + "\n")
    return JobData(root, truth)


def one_file_job(job_data: JobData, root: Path) -> Path:
    """The job with one data file (talk0) beside the ground truth: a short escrow."""
    (root / "media").mkdir(parents=True)
    for name in ("talk0.mp3", "gt.wav"):
        shutil.copy(job_data.root / "media" / name, root / "media" / name)
    shutil.copy(job_data.root / "gt.tsv", root / "gt.tsv")
    return root


def manifest(**details: Any) -> dict[str, Any]:
    return {
        "version": 2,
        "job_type": "audio_transcription",
        "data": {"media_url": "http://x.invalid/placeholder", "gt_url": "http://x.invalid/p"},
        "annotation": {
            "description": "Transcribe the speech",
            "labels": [{"name": "speech", "attributes": ["gender"]}],
            "shared_attributes": [{"name": "gender", "values": ["male", "female", "other"]}],
            "validation": {"target_score": 0.3, "target_metric": "wer"},
            "details": {"clip_duration": 12, "max_time": 600, **details},
        },
    }

"""Scoring speed: 10,000 honeypot segments in 500 assignments, scored the way the recording
oracle does it (normalise, match to ground truth, completeness, WER), against bare
`jiwer.wer` on the same already-normalised text pairs, per assignment, in the same run, with
gender and emotion scored on every honeypot as well.
Goal: our scoring at most 1.5x jiwer's time."""

from __future__ import annotations

import random
import time

import jiwer

from audio_pipeline.normalize import english
from audio_pipeline.validation import (
    AnnotationRules,
    AttributeRule,
    AttributeTarget,
    Interval,
    LabelRule,
    Reference,
    ValidationSpec,
    score_assignment,
)

SEGMENTS = 10_000
ROUNDS = 5
PER_ASSIGNMENT = 20
WORDS = [
    "the",
    "a",
    "birch",
    "canoe",
    "slid",
    "on",
    "smooth",
    "planks",
    "glue",
    "sheet",
    "to",
    "dark",
    "blue",
    "background",
    "it",
    "is",
    "easy",
    "tell",
    "depth",
    "of",
    "well",
    "these",
    "days",
    "chicken",
    "leg",
    "rare",
    "dish",
    "rice",
    "often",
    "served",
    "in",
    "round",
    "bowls",
    "juice",
    "lemons",
    "makes",
    "fine",
    "punch",
    "box",
    "was",
    "thrown",
    "beside",
    "parked",
    "truck",
    "four",
    "hours",
    "steady",
    "work",
]


EMOTIONS = ("neutral", "happy", "sad", "angry")


def make(seed: int = 7) -> list[tuple[list[Reference], list[Interval]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(SEGMENTS // PER_ASSIGNMENT):
        refs, hyps = [], []
        for i in range(PER_ASSIGNMENT):
            words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
            start = i * 4000
            emotion = rng.choice(EMOTIONS)
            refs.append(
                Reference(start, start + 3000, "speech", " ".join(words).capitalize() + ".",
                          attributes={"gender": "female", "emotion": emotion})
            )  # fmt: skip
            said = [w if rng.random() > 0.1 else rng.choice(WORDS) for w in words]
            picked = emotion if rng.random() > 0.2 else rng.choice(EMOTIONS)
            hyps.append(
                Interval(start + 40, start + 2960, "speech", " ".join(said),
                         {"gender": "female", "emotion": picked})
            )  # fmt: skip
        out.append((refs, hyps))
    return out


def main() -> None:
    data = make()
    rules = AnnotationRules(
        labels={"speech": LabelRule("speech", True, ("gender", "emotion"))},
        attributes={
            "gender": AttributeRule("gender", ("male", "female", "other")),
            "emotion": AttributeRule("emotion", EMOTIONS),
        },
    )
    targets = (  # attributes scored on the honeypots too, as a manifest may ask
        AttributeTarget("gender", "exact", 0.8, 1.0, ("male", "female", "other")),
        AttributeTarget("emotion", "exact", 0.7, 1.0, EMOTIONS),
    )
    spec = ValidationSpec("wer", 0.3, rules, "en", 200, targets)
    zones = [(0, PER_ASSIGNMENT * 4000)]

    pairs = [
        ([english(r.text) for r in refs], [english(h.transcription) for h in hyps])
        for refs, hyps in data
    ]
    # Best of five rounds each, interleaved, so a busy moment of the machine hits both.
    ours = bare = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for refs, hyps in data:
            score_assignment(hyps, refs, zones, spec)
        ours = min(ours, time.perf_counter() - started)
        started = time.perf_counter()
        for r, h in pairs:
            jiwer.wer(r, h)
        bare = min(bare, time.perf_counter() - started)

    print(f"scoring {SEGMENTS} segments in {len(data)} assignments: {ours:.3f} s "
          f"({SEGMENTS / ours:,.0f} segments/s)")  # fmt: skip
    print(f"bare jiwer.wer on the same normalised pairs: {bare:.3f} s")
    print(f"ratio ours / jiwer: {ours / bare:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()

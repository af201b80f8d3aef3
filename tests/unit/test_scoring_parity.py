"""Our scoring next to HUMAN's recording oracle's audio checker, case by case.

The peer's figures are facts measured by running its own checker
(`quality_checkers/audio.py` over `libs/audio_qe`, humanprotocol/human-protocol b5223363)
on these same cases: one clip, two honeypots at 0-3 s and 10.7-14 s with 0.7 s pauses,
data between them, WER with target 0.3, boundary_tolerance 200 ms. Where a manifest means
the same thing to both, the verdicts agree; where they differ, it is on purpose, and the
README's parity table says why."""

from __future__ import annotations

import pytest

from audio_pipeline.validation import (
    AnnotationRules,
    Interval,
    LabelRule,
    Reference,
    ValidationSpec,
    score_assignment,
)

GT = [(0, 3_000, "The quick brown fox"), (10_700, 14_000, "jumps over 2 lazy dogs")]
REFS = [Reference(a, b, "speech", text) for a, b, text in GT]
# Segments count inside a honeypot up to half the 0.7 s pause around it, as in the peer.
ZONES = [(a - 350, b + 350) for a, b, _ in GT]
RULES = AnnotationRules(
    labels={"speech": LabelRule("speech", True, ()), "noise": LabelRule("noise", False, ())},
    attributes={},
    clip_ms=20_000,
)
FOX, DOGS = "The quick brown fox", "jumps over 2 lazy dogs"
# One line per case, to read them side by side.
CASES: dict[str, list[tuple[float, float, str, str]]] = {
    "perfect": [(0, 3, "speech", FOX), (10.7, 14, "speech", DOGS)],
    "sloppy": [(0, 3, "speech", "the quick brown box"), (10.7, 14, "speech", "jumps over lazy frogs")],
    "missing": [(0, 3, "speech", FOX)],
    "extra_in_honeypot": [(0, 3, "speech", FOX), (10.7, 14, "speech", DOGS), (14.05, 14.3, "speech", "um yes")],
    "data_region_work": [(0, 3, "speech", FOX), (4, 9, "speech", "honest words"), (10.7, 14, "speech", DOGS)],
    "shifted_0_62": [(0.62, 3, "speech", FOX), (10.7, 14, "speech", DOGS)],
    "shifted_1_0": [(1.0, 3, "speech", FOX), (10.7, 14, "speech", DOGS)],
    "widened_0_3": [(0, 3.3, "speech", FOX), (10.4, 14.3, "speech", DOGS)],
    "split_in_two": [(0, 1.4, "speech", "The quick"), (1.5, 3, "speech", "brown fox"), (10.7, 14, "speech", DOGS)],
    "casing_punctuation": [(0, 3, "speech", "THE QUICK, BROWN FOX!"), (10.7, 14, "speech", "Jumps over 2 lazy dogs.")],
    "numbers_as_words": [(0, 3, "speech", FOX), (10.7, 14, "speech", "jumps over two lazy dogs")],
    "natural_text": [(0, 3, "speech", "The quick brown fox [laughs]"), (10.7, 14, "speech", DOGS)],
    "wrong_label": [(0, 3, "noise", FOX), (10.7, 14, "speech", DOGS)],
    "empty": [],
}  # fmt: skip
# The peer's checker, measured (the same for its `basic` and `en`: its numerals are off).
PEER = {
    "perfect": 0.0,
    "sloppy": 3 / 9,
    "missing": 5 / 9,
    "extra_in_honeypot": 2 / 9,
    "data_region_work": 0.0,
    "shifted_0_62": 0.0,
    "shifted_1_0": 0.0,
    "widened_0_3": 0.0,
    "split_in_two": 0.0,
    "casing_punctuation": 0.0,
    "numbers_as_words": 1 / 9,
    "natural_text": 0.0,
    "wrong_label": 8 / 9,
    "empty": 1.0,
}
# Where ours differs on purpose: the tolerance bounds a honeypot's edges (the peer scores
# any overlap), and `en` spells digits so "2" and "two" are the same word.
OURS = {
    ("shifted_0_62", "basic"): 4 / 9,
    ("shifted_0_62", "en"): 4 / 9,
    ("shifted_1_0", "basic"): 4 / 9,
    ("shifted_1_0", "en"): 4 / 9,
    ("widened_0_3", "basic"): 1.0,
    ("widened_0_3", "en"): 1.0,
    ("numbers_as_words", "en"): 0.0,
}


def _score(case: str, normalizer: str) -> float:
    intervals = [
        Interval(round(a * 1000), round(b * 1000), label, text, {})
        for a, b, label, text in CASES[case]
    ]
    spec = ValidationSpec("wer", 0.3, RULES, normalizer, 200)
    value = score_assignment(intervals, REFS, ZONES, spec).value
    assert value is not None
    return value


@pytest.mark.parametrize("normalizer", ["basic", "en"])
@pytest.mark.parametrize("case", list(CASES))
def test_our_wer_next_to_the_peers_checker(case: str, normalizer: str) -> None:
    expected = OURS.get((case, normalizer), PEER[case])
    ours = _score(case, normalizer)
    assert ours == pytest.approx(expected)
    if (case, normalizer) not in OURS:  # the same meaning: the same verdict
        assert (ours <= 0.3) == (PEER[case] <= 0.3)

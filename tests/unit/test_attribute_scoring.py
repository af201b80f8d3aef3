"""Attributes scored on honeypots: the ground truth gives a value per span (emotion, age
bucket, ...); the manifest says how each is scored and its target. A worker who picks one
value for everything no longer passes on completeness alone."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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
from oracle_core.ground_truth import GroundTruthError, read_gt
from oracle_core.manifest import Annotation

EMOTIONS = ("neutral", "happy", "sad", "angry")
AGES = ("teens", "twenties", "thirties", "forties", "fifties")
RULES = AnnotationRules(
    labels={"speech": LabelRule("speech", True, ("emotion", "age"))},
    attributes={
        "emotion": AttributeRule("emotion", EMOTIONS),
        "age": AttributeRule("age", AGES),
    },
    max_segment_ms=15_000,
    clip_ms=60_000,
)
TRUTH = ["happy", "sad", "neutral", "angry", "happy"]
REFS = [
    Reference(i * 5000, i * 5000 + 2000, "speech", "hello there", f"g{i}",
              {"emotion": e, "age": "thirties"})
    for i, e in enumerate(TRUTH)
]  # fmt: skip
ZONES = [(0, 25_000)]


def spec(*targets: AttributeTarget) -> ValidationSpec:
    return ValidationSpec("wer", 0.3, RULES, "basic", 200, targets)


def work(emotions: list[str], age: str = "thirties") -> list[Interval]:
    return [
        Interval(r.start_ms, r.end_ms, "speech", "hello there", {"emotion": e, "age": age})
        for r, e in zip(REFS, emotions, strict=True)
    ]


EMOTION = AttributeTarget("emotion", "exact", 0.7, 1.0, EMOTIONS)


def test_a_careful_worker_passes_with_every_attribute_right() -> None:
    result = score_assignment(work(TRUTH), REFS, ZONES, spec(EMOTION))
    assert result.passed, result.reasons
    (emotion,) = result.attributes
    assert (emotion.accuracy, emotion.macro_f1, emotion.honeypots) == (1.0, 1.0, 5)


def test_one_value_for_everything_is_rejected_naming_metric_value_target_and_count() -> None:
    result = score_assignment(work(["happy"] * 5), REFS, ZONES, spec(EMOTION))
    assert not result.passed
    assert result.reasons[0] == "emotion accuracy 0.40 < 0.70 on 5 honeypot segments"
    (emotion,) = result.attributes
    assert emotion.macro_f1 < 0.3  # right on one class, nothing on the three others
    assert result.quality == pytest.approx((1.0 + 0.4) / 2)  # transcription 1, emotion 0.4


def test_adjacent_age_buckets_count_when_the_manifest_says_so() -> None:
    near = work(TRUTH, age="forties")
    exact = AttributeTarget("age", "exact", 0.7, 1.0, AGES)
    adjacent = AttributeTarget("age", "adjacent", 0.7, 1.0, AGES)
    assert not score_assignment(near, REFS, ZONES, spec(exact)).passed
    assert score_assignment(near, REFS, ZONES, spec(adjacent)).passed
    far = work(TRUTH, age="teens")
    assert not score_assignment(far, REFS, ZONES, spec(adjacent)).passed


def test_an_uncovered_honeypot_counts_as_a_wrong_attribute() -> None:
    result = score_assignment(work(TRUTH)[:3], REFS, ZONES, spec(EMOTION))
    assert result.attributes[0].accuracy == pytest.approx(0.6)
    assert "emotion accuracy 0.60 < 0.70 on 5 honeypot segments" in result.reasons


def test_ground_truth_attribute_columns_are_read_and_unknown_ones_refused() -> None:
    tsv = ("filename\tstart\tstop\tlabel\ttext\temotion\tage\n"
           "a.wav\t0:00:01\t0:00:02\tspeech\thi\thappy\t\n")  # fmt: skip
    (span,) = read_gt(tsv, ["emotion", "age", "gender"])
    assert span.attributes == {"emotion": "happy"}  # an empty cell gives no value
    with pytest.raises(GroundTruthError, match=r"columns \['age'\] are not attributes"):
        read_gt(tsv, ["emotion"])


def test_the_manifest_scores_only_attributes_it_defines() -> None:
    base = {
        "labels": [{"name": "speech", "attributes": ["emotion"]}],
        "shared_attributes": [{"name": "emotion", "values": list(EMOTIONS)}],
    }
    ok = Annotation.model_validate(
        base | {"validation": {"target_score": 0.3, "attributes": {"emotion": {"target": 0.8}}}}
    )
    (target,) = ok.validation_spec().attributes
    assert (target.name, target.scoring, target.target, target.values) == (
        "emotion", "exact", 0.8, EMOTIONS)  # fmt: skip
    with pytest.raises(ValidationError, match="not among the shared_attributes"):
        Annotation.model_validate(
            base | {"validation": {"target_score": 0.3, "attributes": {"mood": {}}}}
        )
    unscored = Annotation.model_validate(
        base | {"validation": {"target_score": 0.3,
                               "attributes": {"emotion": {"scoring": "none"}}}}
    )  # fmt: skip
    assert unscored.validation_spec().attributes == ()


def test_labels_as_classes_report_accuracy_and_macro_f1() -> None:
    """A label-classification job (sentiment as the label): one label for everything is
    right on its own class only, and macro-F1 says so where accuracy flatters it."""
    labels = ("positive", "negative", "neutral")
    rules = AnnotationRules(
        labels={n: LabelRule(n, False, ()) for n in labels}, attributes={},
        max_segment_ms=15_000, clip_ms=60_000,
    )  # fmt: skip
    truth = ["neutral", "neutral", "neutral", "positive", "negative"]
    refs = [Reference(i * 5000, i * 5000 + 2000, t, "", f"g{i}") for i, t in enumerate(truth)]
    lazy = [Interval(r.start_ms, r.end_ms, "neutral") for r in refs]
    score = score_assignment(lazy, refs, ZONES, ValidationSpec("accuracy", 0.8, rules))
    assert score.value == pytest.approx(0.6) and not score.passed
    (label,) = score.attributes
    assert label.name == "label" and label.accuracy == pytest.approx(0.6)
    assert label.macro_f1 == pytest.approx((2 * 0.6 * 1 / 1.6) / 3)  # neutral's F1 only
    careful = [Interval(r.start_ms, r.end_ms, r.label) for r in refs]
    good = score_assignment(careful, refs, ZONES, ValidationSpec("accuracy", 0.8, rules))
    assert good.passed and good.attributes[0].macro_f1 == 1.0

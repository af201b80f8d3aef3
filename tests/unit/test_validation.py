"""The validation module: normalisers, WER/CER (equal to jiwer's), matching, completeness."""

from __future__ import annotations

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.normalize import basic, english, get_normalizer
from audio_pipeline.validation import (
    AnnotationRules,
    AttributeRule,
    Interval,
    LabelRule,
    Reference,
    ValidationSpec,
    char_error_rate,
    check_annotations,
    match_segments,
    score_assignment,
    summarize,
    word_error_rate,
)

RULES = AnnotationRules(
    labels={
        "speech": LabelRule("speech", True, ("gender",)),
        "noise": LabelRule("noise", False, ()),
    },
    attributes={"gender": AttributeRule("gender", ("female", "male", "unknown"))},
    max_segment_ms=15_000,
    clip_ms=60_000,
)
REFS = [
    Reference(10_000, 12_000, "speech", "The quick brown fox", "g1"),
    Reference(13_000, 15_500, "speech", "jumps over 2 lazy dogs.", "g2"),
]
ZONES = [(9_500, 16_000)]


def iv(start: int, end: int, text: str = "", label: str = "speech", **attrs: str) -> Interval:
    return Interval(start, end, label, text, attrs or {"gender": "female"})


def spec(metric: str = "wer", target: float = 0.2, normalizer: str = "en") -> ValidationSpec:
    return ValidationSpec(metric, target, RULES, normalizer, 200)  # type: ignore[arg-type]


def test_basic_normaliser_folds_case_punctuation_width_and_spaces() -> None:
    assert basic("  Hello,   WORLD! It\u2019s ﬁne…  ") == "hello world it's fine"
    assert basic("'quoted' rock-'n'-roll") == "quoted rock n roll"
    assert basic("so [laughs] (coughs) <unk> then") == "so then"  # noise tags are not words


def test_english_normaliser_spells_numbers_and_expands_contractions() -> None:
    assert english("I have 42 cats and 3.5 dogs, 1,000 times") == (
        "i have forty two cats and three point five dogs one thousand times"
    )
    assert english("I can't, it's 1905") == "i can not it is one thousand nine hundred and five"


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        ("de", "Die Straße hat 3 Häuser", "die strasse hat drei häuser"),
        ("ru", "Ёлка: 5", "елка пять"),
        ("tr", "İstanbul IRMAK", "istanbul ırmak"),
        ("nl", "ĳs", "ijs"),
        ("fr", "L'homme a 21 ans", "l'homme a vingt et un ans"),
        ("zh", "我有三只猫，你呢？", "我 有 三 只 猫 你 呢"),  # scored per character
        ("ar", "أَهْلاً وَسَهْلاً", "اهلا وسهلا"),
        ("hi", "किताब । पढ़ो", "किताब पढ़ो"),
        ("es-MX", "¡Hola, señor! [ruido]", "hola señor"),
    ],
)
def test_language_presets_follow_humans_steps_with_numbers_spelt(
    code: str, text: str, expected: str
) -> None:
    assert get_normalizer(code)(text) == expected


def test_humans_basic_and_whispers_presets_are_offered() -> None:
    assert get_normalizer("human-basic")("Don't [noise] STOP!") == "don t stop"
    assert get_normalizer("whisper-en")("Mr. Smith colours") == "mister smith colors"
    assert get_normalizer("none")("  As   Written ") == "As Written"


def test_language_codes_pick_a_normaliser_and_nonsense_is_refused() -> None:
    assert get_normalizer("en-GB") is english
    for name in ("klingon!", "xx", "de_XX_long_region"):
        with pytest.raises(InvalidParameterError, match="unknown normalizer"):
            get_normalizer(name)


words = st.lists(st.sampled_from(["a", "b", "c", "dd", "e"]), min_size=0, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(words.filter(bool), words), min_size=1, max_size=5))
def test_wer_and_cer_equal_jiwer(pairs: list[tuple[list[str], list[str]]]) -> None:
    refs = [" ".join(r) for r, _ in pairs]
    hyps = [" ".join(h) for _, h in pairs]
    assert word_error_rate(zip(refs, hyps, strict=True)).rate == pytest.approx(
        jiwer.wer(refs, hyps)
    )
    assert char_error_rate(zip(refs, hyps, strict=True)).rate == pytest.approx(
        jiwer.cer(refs, hyps)
    )


def test_segments_group_under_the_reference_they_cover() -> None:
    hyps = [
        iv(9_900, 11_000, "the quick"),
        iv(11_000, 12_100, "brown fox"),
        iv(15_600, 15_900, "um"),  # in the zone, belongs to no reference
        iv(30_000, 31_000, "data speech"),  # outside every honeypot zone: not scored
    ]
    matches, extras = match_segments(REFS, hyps, ZONES, 200)
    assert [m.text for m in matches] == ["the quick brown fox", ""]
    assert [e.transcription for e in extras] == ["um"]


def test_an_exact_transcript_passes() -> None:
    hyps = [
        iv(10_050, 11_950, "the quick brown fox"),
        iv(13_000, 15_400, "Jumps over two lazy dogs"),
    ]
    result = score_assignment(hyps, REFS, ZONES, spec())
    assert result.passed, result.reasons
    assert result.value == 0.0 and result.quality == 1.0 and result.reasons == ()


def test_a_sloppy_transcript_fails_with_its_wer() -> None:
    hyps = [
        iv(10_050, 11_950, "the quick brown box"),
        iv(13_000, 15_400, "jumps over lazy frogs"),
    ]
    result = score_assignment(hyps, REFS, ZONES, spec())
    # 1 substitution + 1 deletion + 1 substitution over 4 + 5 words
    assert result.value == pytest.approx(3 / 9)
    assert not result.passed
    assert result.reasons[0] == "WER 0.33 > 0.20 on 2 honeypot segments"


def test_a_missed_reference_counts_as_deletions_and_is_named() -> None:
    result = score_assignment([iv(10_000, 12_000, "the quick brown fox")], REFS, ZONES, spec())
    assert result.value == pytest.approx(5 / 9)
    assert "no segment covers the reference speech at 13.0-15.5 s" in result.reasons


def test_boundaries_outside_the_tolerance_count_against_the_worker() -> None:
    """The manifest's boundary_tolerance bounds the honeypot's edges: a right transcript on
    a segment starting 0.62 s late is scored as not covering the reference."""
    hyps = [
        iv(10_620, 12_000, "the quick brown fox"),
        iv(13_150, 15_650, "jumps over two lazy dogs"),  # 0.15 s off: within 0.20 s
    ]
    result = score_assignment(hyps, REFS, ZONES, spec())
    assert result.value == pytest.approx(4 / 9) and not result.passed
    assert (
        "segment starts 0.62 s after the reference at 10.0-12.0 s, tolerance 0.20 s"
        in result.reasons
    )
    widened = ValidationSpec("wer", 0.2, RULES, "en", 700)
    assert score_assignment(hyps, REFS, ZONES, widened).passed


def test_cer_and_accuracy_metrics() -> None:
    hyps = [
        iv(10_000, 12_000, "the quick brown fox"),
        iv(13_000, 15_500, "jumps over two lazy dog"),
    ]
    cer = score_assignment(hyps, REFS, ZONES, spec("cer", 0.1))
    assert cer.value == pytest.approx(
        1 / (len("the quick brown fox") + len("jumps over two lazy dogs"))
    )
    assert cer.passed
    wrong_label = [iv(10_000, 12_000, "x", label="noise"), iv(13_500, 15_500, "y")]
    acc = score_assignment(wrong_label, REFS, ZONES, spec("accuracy", 0.9))
    # first: wrong label; second: starts 500 ms late, beyond the 200 ms tolerance
    assert acc.value == 0.0 and not acc.passed
    assert acc.reasons[0] == "label accuracy 0.00 < 0.90 on 2 honeypot segments"


def test_boundary_f1_scores_segmentation_alone() -> None:
    """Segmentation-only jobs: boundaries within the tolerance count, text does not."""
    exact = [iv(10_100, 11_900, "anything"), iv(13_000, 15_400, "at all")]  # within 200 ms
    good = score_assignment(exact, REFS, ZONES, spec("boundary_f1", 0.8))
    assert good.value == 1.0 and good.passed and good.quality == 1.0
    # One segment over both honeypots: 2 of 4 reference boundaries, 2 of 2 of its own.
    merged = score_assignment([iv(10_000, 15_500, "x")], REFS, ZONES, spec("boundary_f1", 0.8))
    assert merged.value == pytest.approx(2 * 2 / (4 + 2))
    assert not merged.passed
    assert merged.reasons[0] == "boundary F1 0.67 < 0.80 on 2 honeypot segments"
    # An extra segment on the honeypot piece costs precision.
    extra = [*exact, iv(15_700, 15_900, "x")]
    assert score_assignment(extra, REFS, ZONES, spec("boundary_f1", 0.8)).value == (
        pytest.approx(2 * 4 / (4 + 6))
    )
    late = [iv(10_500, 12_000, "x"), iv(13_000, 15_500, "y")]  # one start 500 ms late
    assert score_assignment(late, REFS, ZONES, spec("boundary_f1", 0.8)).value == (
        pytest.approx(2 * 3 / 8)
    )


def test_completeness_names_each_missing_thing() -> None:
    hyps = [
        iv(1_000, 2_000, "hello", gender="female"),
        Interval(3_000, 4_000, "speech", "", {"gender": "female"}),
        Interval(5_000, 6_000, "speech", "hi", {}),
        Interval(7_000, 8_000, "speech", "hi", {"gender": "robot"}),
        Interval(9_000, 9_500, "noise", "", {}),  # noise needs no transcription
        Interval(9_400, 30_000, "laugh", "ha", {}),
        Interval(59_000, 61_000, "noise", "", {}),
    ]
    problems = check_annotations(hyps, RULES)
    messages = [p.message for p in problems]
    assert "segment 2 (3.0-4.0 s) has no transcription" in messages
    assert "segment 3 (5.0-6.0 s) has no gender" in messages
    assert "segment 4 (7.0-8.0 s) has gender 'robot', not one of female, male, unknown" in messages
    assert "segment 6 (9.4-30.0 s) is longer than 15 s" in messages
    assert "segment 6 (9.4-30.0 s) has label 'laugh', not one of speech, noise" in messages
    assert "segment 7 (59.0-61.0 s) lies outside the clip" in messages
    assert "segment 6 (9.4-30.0 s) overlaps segment 5 (9.0-9.5 s)" in messages
    assert not any("segment 1 " in m or "segment 5 " in m.split(" overlaps")[0] for m in messages)
    assert summarize(problems, len(hyps))[0] == "1 of 7 segments lack a transcription"


def test_incomplete_work_fails_even_with_a_perfect_transcript() -> None:
    hyps = [
        Interval(10_000, 12_000, "speech", "the quick brown fox", {}),
        iv(13_000, 15_500, "jumps over two lazy dogs"),
    ]
    result = score_assignment(hyps, REFS, ZONES, spec())
    assert result.value == 0.0
    assert not result.passed
    assert result.reasons == ("segment 1 (10.0-12.0 s) has no gender",)


def test_a_clip_without_honeypots_is_judged_on_completeness_alone() -> None:
    ok = score_assignment([iv(0, 1000, "hi")], [], [], spec())
    assert ok.passed and ok.value is None and ok.honeypots == 0
    bad = score_assignment([iv(0, 1000, "")], [], [], spec())
    assert not bad.passed


def test_overlaps_pass_when_the_manifest_allows_them() -> None:
    rules = AnnotationRules(labels=RULES.labels, attributes=RULES.attributes, allow_overlap=True)
    assert check_annotations([iv(0, 2000, "a"), iv(1000, 3000, "b")], rules) == []


def _naive_match(refs, hyps, zones, tol):  # type: ignore[no-untyped-def]
    """Every reference tried for every segment: what match_segments must equal."""
    from audio_pipeline.validation import _overlap, iou

    groups = {i: [] for i in range(len(refs))}
    extras = []
    for h in sorted(hyps, key=lambda h: (h.start_ms, h.end_ms)):
        if h.end_ms <= h.start_ms:
            continue
        best, key = None, (0, 0.0)
        for i, r in enumerate(refs):
            if r.label != h.label or not _overlap(h.start_ms, h.end_ms, r.start_ms, r.end_ms):
                continue
            k = (
                _overlap(h.start_ms, h.end_ms, r.start_ms - tol, r.end_ms + tol),
                iou((h.start_ms, h.end_ms), (r.start_ms, r.end_ms)),
            )
            if k > key:
                best, key = i, k
        if best is not None and key[0] * 2 >= h.end_ms - h.start_ms:
            groups[best].append(h)
        elif any(_overlap(h.start_ms, h.end_ms, a, b) for a, b in zones):
            extras.append(h)
    return [tuple(groups[i]) for i in range(len(refs))], extras


spans = st.tuples(st.integers(0, 20_000), st.integers(1, 4_000))


@settings(max_examples=300, deadline=None)
@given(st.lists(spans, max_size=8), st.lists(spans, max_size=12), st.integers(0, 500))
def test_matching_equals_trying_every_reference(
    ref_spans: list[tuple[int, int]], hyp_spans: list[tuple[int, int]], tol: int
) -> None:
    refs = [Reference(a, a + n, "speech", f"r{i}") for i, (a, n) in enumerate(ref_spans)]
    hyps = [iv(a, a + n, f"h{i}") for i, (a, n) in enumerate(hyp_spans)]
    zones = [(0, 10_000)]
    matches, extras = match_segments(refs, hyps, zones, tol)
    want_groups, want_extras = _naive_match(refs, hyps, zones, tol)
    assert [m.hypotheses for m in matches] == want_groups
    assert extras == want_extras

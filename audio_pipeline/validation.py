"""Scoring one assignment: completeness of its labels and attributes, and WER/CER or label
accuracy on its honeypots (ground-truth spans hidden in the clip).

Pure: segments and ground truth in, a result with human-readable reasons out. Times are
integer milliseconds of the clip. The completeness checks need no ground truth, so the
same function gives annotators live feedback without leaking honeypots.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz.distance import Levenshtein

from audio_pipeline.attribute_scoring import (
    AttributeScore,
    AttributeTarget,
    attribute_scores,
    label_score,
)
from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.normalize import Normalizer, get_normalizer
from audio_pipeline.segments import Segment

Metric = Literal["wer", "cer", "accuracy", "boundary_f1"]
METRICS: tuple[Metric, ...] = ("wer", "cer", "accuracy", "boundary_f1")
HIGHER_IS_BETTER = ("accuracy", "boundary_f1")


# -- what is checked -------------------------------------------------------------------
@dataclass(frozen=True)
class AttributeRule:
    name: str
    values: tuple[str, ...] = ()  # allowed values; empty: free text
    required: bool = True


@dataclass(frozen=True)
class LabelRule:
    name: str
    transcription: bool = True  # a non-empty transcription is needed
    attributes: tuple[str, ...] = ()  # names of the attributes this label asks for


@dataclass(frozen=True)
class AnnotationRules:
    labels: Mapping[str, LabelRule]
    attributes: Mapping[str, AttributeRule] = field(default_factory=dict)
    allow_overlap: bool = False
    min_segment_ms: int = 0
    max_segment_ms: int | None = None
    clip_ms: int | None = None  # segments must lie inside [0, clip_ms)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an annotation; `segment` is its 1-based number in time order."""

    kind: Literal["label", "transcription", "attribute", "bounds", "overlap", "length"]
    message: str
    segment: int | None = None


@dataclass(frozen=True)
class Interval:
    """An annotator's segment in clip milliseconds (the shape CVAT stores)."""

    start_ms: int
    end_ms: int
    label: str
    transcription: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    # CVAT's: auto (VAD), file (the requester's suggestion), semi-auto (either, edited), manual
    source: str = "manual"

    @classmethod
    def from_segment(cls, seg: Segment, clip_ms: int | None = None) -> Interval:
        end = seg.end if seg.end is not None else (clip_ms or 0) / 1000
        return cls(
            round(seg.start * 1000),
            round(end * 1000),
            seg.label,
            seg.transcription,
            dict(seg.attributes),
            seg.source,
        )


def _when(iv: Interval) -> str:
    return f"{iv.start_ms / 1000:.1f}-{iv.end_ms / 1000:.1f} s"


def in_time_order(intervals: Iterable[Interval]) -> list[Interval]:
    return sorted(intervals, key=lambda iv: (iv.start_ms, iv.end_ms))


def check_annotations(intervals: Iterable[Interval], rules: AnnotationRules) -> list[Problem]:
    """Every segment labelled with a known label, transcribed where its label needs it,
    every required attribute filled with an allowed value, inside the clip, long enough,
    short enough, and not overlapping another unless overlaps are allowed."""
    problems: list[Problem] = []
    ordered = in_time_order(intervals)
    for n, iv in enumerate(ordered, start=1):
        where = f"segment {n} ({_when(iv)})"

        def add(kind: str, text: str, n: int = n, where: str = where) -> None:
            problems.append(Problem(kind, f"{where} {text}", n))  # type: ignore[arg-type]

        if iv.end_ms <= iv.start_ms:
            add("bounds", "ends before it starts")
            continue
        if iv.start_ms < 0 or (rules.clip_ms is not None and iv.end_ms > rules.clip_ms):
            add("bounds", "lies outside the clip")
        length = iv.end_ms - iv.start_ms
        if length < rules.min_segment_ms:
            add("length", f"is shorter than {rules.min_segment_ms / 1000:g} s")
        if rules.max_segment_ms is not None and length > rules.max_segment_ms:
            add("length", f"is longer than {rules.max_segment_ms / 1000:g} s")
        label = rules.labels.get(iv.label)
        if label is None:
            known = ", ".join(rules.labels)
            add(
                "label",
                f"has label '{iv.label}', not one of {known}" if iv.label else "has no label",
            )
            continue
        if label.transcription and not iv.transcription.strip():
            add("transcription", "has no transcription")
        for name in label.attributes:
            attr = rules.attributes.get(name, AttributeRule(name))
            value = (iv.attributes.get(name) or "").strip()
            if not value:
                if attr.required:
                    add("attribute", f"has no {name}")
            elif attr.values and value not in attr.values:
                add("attribute", f"has {name} '{value}', not one of {', '.join(attr.values)}")
    if not rules.allow_overlap:
        for n in range(1, len(ordered)):
            prev, cur = ordered[n - 1], ordered[n]
            if cur.start_ms < prev.end_ms and prev.end_ms > prev.start_ms:
                problems.append(
                    Problem(
                        "overlap",
                        f"segment {n + 1} ({_when(cur)}) overlaps segment {n} ({_when(prev)})",
                        n + 1,
                    )
                )
    return problems


def summarize(problems: Sequence[Problem], total: int) -> list[str]:
    """Counts for live feedback: "3 of 12 segments lack a transcription"."""
    by_kind: dict[str, set[int]] = {}
    for p in problems:
        by_kind.setdefault(p.kind, set()).add(p.segment or 0)
    words = {
        "transcription": "lack a transcription",
        "attribute": "lack an attribute or have a wrong value",
        "label": "have no valid label",
        "bounds": "lie outside the clip",
        "length": "are too short or too long",
        "overlap": "overlap the one before",
    }
    return [f"{len(segs)} of {total} segments {words[kind]}" for kind, segs in by_kind.items()]


# -- error rates ---------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorRate:
    errors: int
    reference_length: int

    @property
    def rate(self) -> float:
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.reference_length


def word_error_rate(pairs: Iterable[tuple[str, str]]) -> ErrorRate:
    """Edits over words, summed over (reference, hypothesis) pairs of normalised text;
    the same figure as `jiwer.wer(refs, hyps)`."""
    errors = length = 0
    for ref, hyp in pairs:
        r, h = ref.split(), hyp.split()
        errors += Levenshtein.distance(r, h)
        length += len(r)
    return ErrorRate(errors, length)


def char_error_rate(pairs: Iterable[tuple[str, str]]) -> ErrorRate:
    """Edits over characters (spaces included), like `jiwer.cer(refs, hyps)`."""
    errors = length = 0
    for ref, hyp in pairs:
        errors += Levenshtein.distance(ref, hyp)
        length += len(ref)
    return ErrorRate(errors, length)


# -- matching to ground truth --------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """One ground-truth span, in clip milliseconds, with the attribute values it gives."""

    start_ms: int
    end_ms: int
    label: str
    text: str
    span_id: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    reference: Reference
    hypotheses: tuple[Interval, ...]

    @property
    def text(self) -> str:
        return " ".join(h.transcription for h in self.hypotheses)


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = _overlap(a[0], a[1], b[0], b[1])
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def match_segments(
    references: Sequence[Reference],
    intervals: Sequence[Interval],
    zones: Sequence[tuple[int, int]],
    tolerance_ms: int,
) -> tuple[list[Match], list[Interval]]:
    """Group the annotator's segments under the references they cover. A segment belongs to
    the reference of its label whose window (widened by the tolerance) holds most of it and
    which it overlaps at all, ties going to the higher IoU. Segments inside a honeypot zone
    that belong to no reference are extras (their words count as insertions); segments
    elsewhere are not scored here."""
    groups: dict[int, list[Interval]] = {i: [] for i in range(len(references))}
    extras: list[Interval] = []
    order = sorted(range(len(references)), key=lambda i: references[i].start_ms)
    # Windows [start - tol, end + tol) sorted by start; a running maximum of their ends lets
    # bisect find the few windows a segment can touch.
    starts = [references[i].start_ms - tolerance_ms for i in order]
    reach, top = [], -(2**62)
    for i in order:
        top = max(top, references[i].end_ms + tolerance_ms)
        reach.append(top)
    for iv in in_time_order(intervals):
        length = iv.end_ms - iv.start_ms
        if length <= 0:
            continue
        best, best_key = None, (0, 0.0)
        lo, hi = bisect_right(reach, iv.start_ms), bisect_left(starts, iv.end_ms)
        for i in order[lo:hi]:
            ref = references[i]
            if ref.label != iv.label or not _overlap(
                iv.start_ms, iv.end_ms, ref.start_ms, ref.end_ms
            ):
                continue
            inside = _overlap(
                iv.start_ms, iv.end_ms, ref.start_ms - tolerance_ms, ref.end_ms + tolerance_ms
            )
            key = (inside, iou((iv.start_ms, iv.end_ms), (ref.start_ms, ref.end_ms)))
            if key > best_key or (key == best_key and best is not None and i < best):
                best, best_key = i, key
        if best is not None and best_key[0] * 2 >= length:
            groups[best].append(iv)
        elif any(_overlap(iv.start_ms, iv.end_ms, z0, z1) for z0, z1 in zones):
            extras.append(iv)
    return [Match(ref, tuple(groups[i])) for i, ref in enumerate(references)], extras


# -- the result of one assignment ----------------------------------------------------
@dataclass(frozen=True)
class ValidationSpec:
    metric: Metric
    target: float  # the most WER/CER allowed, or the least accuracy
    rules: AnnotationRules
    normalizer: str = "basic"
    tolerance_ms: int = 200
    attributes: tuple[AttributeTarget, ...] = ()

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InvalidParameterError(f"metric '{self.metric}' is not one of {METRICS}")
        get_normalizer(self.normalizer)


@dataclass(frozen=True)
class AssignmentScore:
    metric: Metric
    value: float | None  # None when the clip held no honeypot
    quality: float  # 0..1, higher is better (1 - error rate, or accuracy)
    passed: bool
    reasons: tuple[str, ...]
    honeypots: int
    problems: tuple[Problem, ...]
    attributes: tuple[AttributeScore, ...] = ()


def score_assignment(
    intervals: Sequence[Interval],
    references: Sequence[Reference],
    zones: Sequence[tuple[int, int]],
    spec: ValidationSpec,
) -> AssignmentScore:
    problems = check_annotations(intervals, spec.rules)
    reasons = [p.message for p in problems]
    value: float | None = None
    matches: list[Match] = []
    if references:
        matches, extras = match_segments(references, intervals, zones, spec.tolerance_ms)
        value, why = _measure(matches, extras, spec, get_normalizer(spec.normalizer))
        reasons.extend(why)
    if value is None:
        quality = 1.0
        metric_ok = True
    elif spec.metric in HIGHER_IS_BETTER:
        quality = value
        metric_ok = value >= spec.target
    else:
        quality = max(0.0, 1.0 - value)
        metric_ok = value <= spec.target
    if value is not None and not metric_ok:
        n = len(references)
        if spec.metric == "accuracy":
            verdict = f"label accuracy {value:.2f} < {spec.target:.2f}"
        elif spec.metric == "boundary_f1":
            verdict = f"boundary F1 {value:.2f} < {spec.target:.2f}"
        else:
            verdict = f"{spec.metric.upper()} {value:.2f} > {spec.target:.2f}"
        reasons.insert(0, f"{verdict} on {n} honeypot segment{'s' if n != 1 else ''}")
    scored = attribute_scores(matches, spec.attributes)
    for a in scored:
        if not a.passed:
            plural = "s" if a.honeypots != 1 else ""
            reasons.insert(
                0, f"{a.name} accuracy {a.accuracy:.2f} < {a.target:.2f} on {a.honeypots} "
                f"honeypot segment{plural}",
            )  # fmt: skip
    weights = {t.name: t.weight for t in spec.attributes}
    if scored:  # the transcription's quality weighs 1 beside each attribute's weight
        total = 1 + sum(weights[a.name] for a in scored)
        quality = (quality + sum(a.accuracy * weights[a.name] for a in scored)) / total
    labels = label_score(references, intervals) if spec.metric == "accuracy" else None
    return AssignmentScore(
        spec.metric,
        value,
        quality,
        metric_ok and not problems and all(a.passed for a in scored),
        tuple(reasons),
        len(references),
        tuple(problems),
        tuple(scored) + ((labels,) if labels else ()),
    )


# The words every reason that says where a honeypot lies is written with: such reasons are
# for operators, not for the worker (the same honeypot audio may be in their next clips).
REFERENCE = "the reference"


def names_a_honeypot(reason: str) -> bool:
    return REFERENCE in reason


def _measure(
    matches: Sequence[Match], extras: Sequence[Interval], spec: ValidationSpec, norm: Normalizer
) -> tuple[float, list[str]]:
    why: list[str] = []
    for m in matches:
        if not m.hypotheses:
            ref = m.reference
            why.append(
                f"no segment covers {REFERENCE} speech at "
                f"{ref.start_ms / 1000:.1f}-{ref.end_ms / 1000:.1f} s"
            )
    if spec.metric == "accuracy":
        right = sum(1 for m in matches if _label_and_bounds_ok(m, spec.tolerance_ms))
        return right / len(matches), why
    if spec.metric == "boundary_f1":
        hyps = [h for m in matches for h in m.hypotheses] + list(extras)
        return boundary_f1([m.reference for m in matches], hyps, spec.tolerance_ms), why
    pairs = []
    for m in matches:
        off = boundary_miss(m, spec.tolerance_ms)
        if off:  # boundaries outside the tolerance: the honeypot counts as not covered
            why.append(off)
            pairs.append((norm(m.reference.text), ""))
        else:
            pairs.append((norm(m.reference.text), norm(m.text)))
    pairs += [("", norm(e.transcription)) for e in extras]
    rate = word_error_rate(pairs) if spec.metric == "wer" else char_error_rate(pairs)
    return rate.rate, why


def boundary_f1(
    references: Sequence[Reference], hypotheses: Sequence[Interval], tolerance_ms: int
) -> float:
    """Segmentation quality: starts matched to starts and ends to ends, one to one, each
    pair within `tolerance_ms` (closest first); F1 of those matches over the boundaries of
    the honeypot segments and of the worker's segments on the honeypots."""
    matched = 0
    for kind in ("start", "end"):
        refs = sorted(getattr(r, f"{kind}_ms") for r in references)
        hyps = sorted(getattr(h, f"{kind}_ms") for h in hypotheses)
        pairs = sorted(
            (abs(a - b), i, j)
            for i, a in enumerate(refs)
            for j, b in enumerate(hyps)
            if abs(a - b) <= tolerance_ms
        )
        used_r: set[int] = set()
        used_h: set[int] = set()
        for _, i, j in pairs:
            if i not in used_r and j not in used_h:
                used_r.add(i)
                used_h.add(j)
        matched += len(used_r)
    total = 2 * len(references) + 2 * len(hypotheses)
    return 2 * matched / total if total else 0.0


def boundary_miss(m: Match, tolerance_ms: int) -> str | None:
    """Why a covered honeypot's boundaries miss the manifest's tolerance, or None."""
    if not m.hypotheses:
        return None
    ref = m.reference
    hyps = m.hypotheses
    start = hyps[0].start_ms if len(hyps) == 1 else min(h.start_ms for h in hyps)
    end = hyps[0].end_ms if len(hyps) == 1 else max(h.end_ms for h in hyps)
    if abs(start - ref.start_ms) <= tolerance_ms and abs(end - ref.end_ms) <= tolerance_ms:
        return None
    name, got, want = (
        ("starts", start, ref.start_ms)
        if abs(start - ref.start_ms) > tolerance_ms
        else ("ends", end, ref.end_ms)
    )
    way = "after" if got > want else "before"
    at = f"{ref.start_ms / 1000:.1f}-{ref.end_ms / 1000:.1f} s"
    return (
        f"segment {name} {abs(got - want) / 1000:.2f} s {way} {REFERENCE} at {at}, "
        f"tolerance {tolerance_ms / 1000:.2f} s"
    )


def _label_and_bounds_ok(m: Match, tolerance_ms: int) -> bool:
    if not m.hypotheses:
        return False
    start = min(h.start_ms for h in m.hypotheses)
    end = max(h.end_ms for h in m.hypotheses)
    return (
        all(h.label == m.reference.label for h in m.hypotheses)
        and abs(start - m.reference.start_ms) <= tolerance_ms
        and abs(end - m.reference.end_ms) <= tolerance_ms
    )

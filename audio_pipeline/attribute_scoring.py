"""Attributes scored on honeypots (emotion, gender, age bucket, ...): per attribute the
worker's values against the ground truth's, as accuracy and macro-F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audio_pipeline.validation import Interval, Match, Reference


@dataclass(frozen=True)
class AttributeTarget:
    """An attribute scored on honeypots: `exact`, or `adjacent` (one step along `values`,
    which are in order, still counts), the least accuracy accepted, and its weight."""

    name: str
    scoring: str = "exact"
    target: float = 0.7
    weight: float = 1.0
    values: tuple[str, ...] = ()

    def agrees(self, want: str, got: str) -> bool:
        want, got = want.strip().casefold(), got.strip().casefold()
        if want == got:
            return True
        if self.scoring != "adjacent" or not got:
            return False
        order = [v.casefold() for v in self.values]
        return want in order and got in order and abs(order.index(want) - order.index(got)) <= 1


@dataclass(frozen=True)
class AttributeScore:
    name: str
    accuracy: float
    macro_f1: float
    honeypots: int
    target: float

    @property
    def passed(self) -> bool:
        return self.accuracy >= self.target


def attribute_scores(
    matches: Sequence[Match], targets: Sequence[AttributeTarget]
) -> list[AttributeScore]:
    """Accuracy and macro-F1 of each scored attribute over the honeypots whose ground truth
    gives it: the worker's value is that of their longest segment on the honeypot (none
    when nothing covers it, which counts as wrong). Values compare without case."""
    if not targets:
        return []
    # (the reference's values, the worker's) per honeypot, found once for every attribute
    answers: list[tuple[Mapping[str, str], Mapping[str, str]]] = []
    for m in matches:
        hyps = m.hypotheses
        if not hyps:
            answers.append((m.reference.attributes, {}))
        else:
            longest = hyps[0] if len(hyps) == 1 else max(hyps, key=_length)
            answers.append((m.reference.attributes, longest.attributes))
    out = []
    for target in targets:
        name = target.name
        pairs = [
            (want.strip().casefold(), got.get(name, "").strip().casefold())
            for truth, got in answers
            if (want := truth.get(name))
        ]
        if not pairs:
            continue
        adjacent = target.scoring == "adjacent"
        right = [w == g or (adjacent and target.agrees(w, g)) for w, g in pairs]
        out.append(
            AttributeScore(name, sum(right) / len(pairs), _macro_f1(pairs, right),
                           len(pairs), target.target)
        )  # fmt: skip
    return out


def label_score(
    references: Sequence[Reference], intervals: Sequence[Interval]
) -> AttributeScore | None:
    """The labels as a classification (emotion or sentiment as the label, say): accuracy
    and macro-F1 of the worker's label on each honeypot (that of the segment overlapping
    it most, whatever its label) against the honeypot's. Reported beside the attributes;
    whether the work passes is the `accuracy` metric's to say (it also wants the
    boundaries), so its target is 0."""
    pairs = []
    for ref in references:
        best, most = "", 0
        for iv in intervals:
            overlap = min(iv.end_ms, ref.end_ms) - max(iv.start_ms, ref.start_ms)
            if overlap > most:
                best, most = iv.label, overlap
        pairs.append((ref.label.casefold(), best.casefold()))
    if not pairs:
        return None
    right = [w == g for w, g in pairs]
    accuracy = sum(right) / len(pairs)
    return AttributeScore("label", accuracy, _macro_f1(pairs, right), len(pairs), 0.0)


def _length(iv: Interval) -> int:
    return iv.end_ms - iv.start_ms


def _macro_f1(pairs: Sequence[tuple[str, str]], right: Sequence[bool]) -> float:
    """F1 per reference class, averaged: a worker who gives one value to everything scores
    well on that class and zero on the others. An answer that agrees with the reference
    (exactly or as an adjacent bucket) counts as the reference's class."""
    support = Counter(w for w, _ in pairs)
    hits = Counter(w for (w, _), ok in zip(pairs, right, strict=True) if ok)
    claimed = Counter(w if ok else g for (w, g), ok in zip(pairs, right, strict=True))
    f1s = []
    for c, n in support.items():
        tp = hits[c]
        if tp:
            precision, recall = tp / claimed[c], tp / n
            f1s.append(2 * precision * recall / (precision + recall))
        else:
            f1s.append(0.0)
    return sum(f1s) / len(f1s)

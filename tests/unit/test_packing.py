"""Clip packing: all data covered exactly once, honeypots in every clip, same seed same clips."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange_oracle.packing import (
    PackingParams,
    SourceFile,
    cut_points,
    pack,
    seed_for,
    subtract,
)
from oracle_core.ground_truth import GroundTruthError, GtSpan, usable_spans

GT = [
    GtSpan("gt.wav", s, s + 2_000, "speech", f"sentence {i}", f"s{i}")
    for i, s in enumerate(range(1_000, 40_000, 4_000))
]


@st.composite
def sources(draw: st.DrawFn) -> list[SourceFile]:
    files = []
    for i in range(draw(st.integers(1, 5))):
        duration = draw(st.integers(500, 400_000))
        marks = sorted(set(draw(st.lists(st.integers(0, duration), max_size=20))))
        speech = tuple((a, b) for a, b in zip(marks[::2], marks[1::2], strict=False) if b > a)
        files.append(SourceFile(f"f{i}.wav", duration, speech))
    return files


@settings(max_examples=120, deadline=None)
@given(
    sources(), st.integers(10_000, 120_000), st.sampled_from([0.1, 0.2, 0.3]), st.integers(0, 99)
)
def test_every_data_millisecond_is_in_exactly_one_clip(
    files: list[SourceFile], clip_ms: int, overhead: float, seed: int
) -> None:
    params = PackingParams(clip_ms=clip_ms, validation_overhead=overhead)
    clips = pack(files, GT, {"gt.wav": 45_000}, params, seed)
    for source in files:
        covered = sorted(
            (p.region.start_ms, p.region.end_ms)
            for c in clips
            for p in c.pieces
            if p.kind == "data" and p.region.source == source.name
        )
        assert covered[0][0] == 0 and covered[-1][1] == source.duration_ms
        assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    for clip in clips:
        assert clip.data_ms() <= params.data_budget_ms
        gt_ids = [p.span_id for p in clip.pieces if p.kind == "gt"]
        assert len(gt_ids) >= 1 and len(set(gt_ids)) == len(gt_ids)
        for piece in clip.pieces:
            if piece.kind == "gt":
                assert 0 <= piece.region.start_ms < piece.region.end_ms <= 45_000


def test_the_same_seed_gives_the_same_clips_and_another_seed_does_not() -> None:
    files = [SourceFile(f"f{i}.wav", 95_000, ((1_000, 20_000), (21_000, 60_000))) for i in range(4)]
    params = PackingParams()
    one = pack(files, GT, {}, params, seed_for("0xAbC", 1338))
    two = pack(files, GT, {}, params, seed_for("0xabc", 1338))
    other = pack(files, GT, {}, params, seed_for("0xdef", 1338))
    assert [c.pieces for c in one] == [c.pieces for c in two]
    assert [c.pieces for c in one] != [c.pieces for c in other]


def test_cuts_fall_in_pauses_when_there_is_one_near_the_budget() -> None:
    source = SourceFile("a.wav", 100_000, ((0, 30_000), (31_000, 45_000), (47_000, 100_000)))
    assert cut_points(source, 48_000)[0] == (0, 46_000)  # middle of the 45-47 s pause
    assert cut_points(SourceFile("b.wav", 100_000), 48_000)[0] == (0, 48_000)


def test_honeypots_fill_about_the_overhead_share() -> None:
    files = [SourceFile("long.wav", 480_000)]
    clips = pack(files, GT, {}, PackingParams(clip_ms=60_000, validation_overhead=0.2), 7)
    for clip in clips[:-1]:
        share = clip.gt_ms() / (clip.gt_ms() + clip.data_ms())
        assert 0.18 <= share <= 0.35, share


@settings(max_examples=60, deadline=None)
@given(sources(), st.integers(1, 4))
def test_full_clips_hold_at_least_min_composition_ds_data_pieces(
    files: list[SourceFile], ds: int
) -> None:
    params = PackingParams(clip_ms=30_000, validation_overhead=0.2, min_data=ds)
    clips = pack(files, GT, {"gt.wav": 45_000}, params, 3)
    for clip in clips[:-1]:  # the last clip takes what data is left
        if clip.data_ms() >= params.data_budget_ms - 1_000:
            assert sum(p.kind == "data" for p in clip.pieces) >= ds


def test_pieces_respect_max_segment_duration_and_only_listed_regions_are_packed() -> None:
    source = SourceFile("f.wav", 100_000, (), regions=((10_000, 40_000), (60_000, 61_000)))
    params = PackingParams(clip_ms=60_000, validation_overhead=0.2, max_piece_ms=7_000)
    clips = pack([source], GT, {"gt.wav": 45_000}, params, 1)
    data = [p.region for c in clips for p in c.pieces if p.kind == "data"]
    assert all(r.end_ms - r.start_ms <= 7_000 for r in data)
    assert sum(r.end_ms - r.start_ms for r in data) == 31_000
    assert all(r.start_ms >= 10_000 and (r.end_ms <= 40_000 or r.start_ms >= 60_000) for r in data)


def test_subtract_takes_every_hole_out() -> None:
    assert subtract([(0, 100)], [(10, 20), (50, 200)]) == [(0, 10), (20, 50)]
    assert subtract([(0, 10)], [(-5, 15)]) == []


def test_ground_truth_is_used_as_humans_oracles_use_it() -> None:
    spans = [
        GtSpan("a.wav", 0, 2_000, "speech", "x", "s1"),
        GtSpan("a.wav", 5_000, 25_000, "speech", "x", "s1"),  # s1 spans 25 s
        GtSpan("a.wav", 30_000, 33_000, "speech", "x", "s2"),  # s2 spans 3 s: too short
        GtSpan("a.wav", 40_000, 60_000, "speech", "x", "s3"),
        GtSpan("a.wav", 90_000, 95_000, "speech", "x", "s4"),  # past the file's end
    ]
    kept = usable_spans(spans, {"a.wav": 80_000}, min_span_ms=20_000, max_cue_ms=120_000)
    assert [s.span_id for s in kept] == ["s1", "s1", "s3"]
    with pytest.raises(GroundTruthError, match="only 0 of 5 cues are usable"):
        usable_spans(spans, {"a.wav": 80_000}, min_span_ms=20_000, max_cue_ms=15_000)

"""Clips: regions joined with pauses; clip time <-> source time exact to the millisecond."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_pipeline import InvalidParameterError, Region, TimeMap, build_clip, decode, plan_clip
from audio_pipeline.clips import END_SLACK_MS, SourceInterval, cut_regions, require_source
from sandbox.speech import write_audio

RATE = 16_000


@st.composite
def region_lists(draw: st.DrawFn) -> list[Region]:
    n = draw(st.integers(1, 8))
    regions = []
    for _ in range(n):
        start = draw(st.integers(0, 3_600_000))
        length = draw(st.integers(1, 120_000))
        regions.append(
            Region(draw(st.sampled_from(["a.wav", "b.mp3", "c.flac"])), start, start + length)
        )
    return regions


@settings(max_examples=200, deadline=None)
@given(region_lists(), st.integers(0, 2_000), st.data())
def test_every_source_millisecond_maps_to_the_clip_and_back(
    regions: list[Region], pause: int, data: st.DataObject
) -> None:
    tmap = plan_clip(regions, pause)
    assert tmap.duration_ms == sum(r.end_ms - r.start_ms for r in regions) + pause * (
        len(regions) - 1
    )
    for index, region in enumerate(regions):
        piece = tmap.pieces[index]
        for ms in {
            region.start_ms,
            region.end_ms - 1,
            data.draw(st.integers(region.start_ms, region.end_ms - 1)),
        }:
            clip_ms = piece.clip_start_ms + (ms - region.start_ms)
            assert tmap.to_source(clip_ms) is not None
            source, back = tmap.to_source(clip_ms)  # type: ignore[misc]
            # Overlapping regions of one source map to the first piece that holds the time.
            assert tmap.to_clip(source, back) is not None
            assert tmap.to_source(tmap.to_clip(source, back)) == (source, back)  # type: ignore[arg-type]
            if not any(
                p.source == region.source
                and p.source_start_ms <= ms < p.source_start_ms + p.length_ms
                for p in tmap.pieces[:index]
            ):
                assert (source, back) == (region.source, ms)
                assert tmap.to_clip(region.source, ms) == clip_ms
    assert TimeMap.from_dict(tmap.to_dict()) == tmap


def test_pauses_map_to_no_source_time() -> None:
    tmap = plan_clip([Region("a", 1_000, 2_000), Region("b", 0, 500)], pause_ms=700)
    assert tmap.to_source(999) == ("a", 1_999)
    assert tmap.to_source(1_000) is None
    assert tmap.to_source(1_699) is None
    assert tmap.to_source(1_700) == ("b", 0)
    assert tmap.to_source(2_200) is None


def test_an_interval_across_a_pause_maps_to_both_sources() -> None:
    tmap = plan_clip([Region("a", 1_000, 2_000), Region("b", 0, 500)], pause_ms=700)
    parts = tmap.interval_to_source(500, 1_900)
    assert [(p.source, p.start_ms, p.end_ms) for p in parts] == [("a", 1_500, 2_000), ("b", 0, 200)]


def _beeps(seconds: float, at_ms: list[int]) -> np.ndarray:
    pcm = np.zeros(int(seconds * RATE), dtype=np.int16)
    tone = (np.sin(2 * np.pi * 1_000 * np.arange(RATE // 20) / RATE) * 20_000).astype(np.int16)
    for ms in at_ms:
        pcm[ms * 16 : ms * 16 + len(tone)] = tone
    return pcm


def _onsets_ms(pcm: np.ndarray) -> list[int]:
    loud = np.abs(pcm.astype(np.int32)) > 4_000
    starts = np.flatnonzero(np.diff(np.concatenate(([0], loud.astype(np.int8)))) == 1)
    onsets: list[int] = []
    for s in starts:
        if not onsets or s / 16 - onsets[-1] > 100:
            onsets.append(round(s / 16))
    return onsets


def test_the_encoded_clip_sounds_where_the_time_map_says(tmp_path: Path) -> None:
    a = write_audio(tmp_path / "a.flac", _beeps(10, [2_000, 7_500]), RATE, out_rate=44_100)
    b = write_audio(
        tmp_path / "b.mp3", _beeps(6, [1_250, 4_000]), RATE, out_rate=48_000, channels=2
    )
    regions = [Region("a", 1_500, 3_000), Region("b", 1_000, 4_500), Region("a", 7_000, 8_000)]
    mp3, tmap, pcm = build_clip(regions, require_source({"a": a, "b": b}), pause_ms=700)
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    decoded = decode(_write(tmp_path / "clip.mp3", mp3))
    assert abs(len(decoded) - len(pcm)) <= 1_152  # one MP3 frame of padding at most
    expected = [
        tmap.to_clip("a", 2_000),
        tmap.to_clip("b", 1_250),
        tmap.to_clip("b", 4_000),
        tmap.to_clip("a", 7_500),
    ]
    found = _onsets_ms(decoded)
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        assert want is not None and abs(got - want) <= 3, (found, expected)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_region_past_the_end_of_its_source_is_refused(tmp_path: Path) -> None:
    a = write_audio(tmp_path / "a.wav", _beeps(2, []), RATE)
    with pytest.raises(InvalidParameterError, match=r"a.wav: region 1000-5000 ms ends after"):
        build_clip([Region("a", 1_000, 5_000)], require_source({"a": a}))


def test_a_region_a_few_ms_past_the_end_is_cut_with_silence(tmp_path: Path) -> None:
    """The analysis and the cut may decode a file's last frame a few ms apart."""
    a = write_audio(tmp_path / "a.wav", np.full(2 * RATE, 1000, dtype=np.int16), RATE)
    cut = cut_regions(a, [(1_000, 2_030)], RATE)[(1_000, 2_030)]
    assert len(cut) == 1_030 * RATE // 1000
    assert np.all(cut[: RATE - 16] == 1000) and np.all(cut[RATE:] == 0)
    with pytest.raises(InvalidParameterError, match="ends after the audio"):
        cut_regions(a, [(1_000, 2_000 + END_SLACK_MS + 1)], RATE)


@pytest.mark.parametrize(("start", "end"), [(-1, 10), (10, 10), (20, 10)])
def test_inverted_or_negative_regions_are_refused(start: int, end: int) -> None:
    with pytest.raises(InvalidParameterError):
        Region("a", start, end)


def test_empty_clip_and_absurd_pause_are_refused() -> None:
    with pytest.raises(InvalidParameterError):
        plan_clip([])
    with pytest.raises(InvalidParameterError):
        plan_clip([Region("a", 0, 10)], pause_ms=-5)


def test_a_segment_is_placed_on_the_region_it_mostly_covers() -> None:
    tmap = plan_clip([Region("a.wav", 5_000, 7_000), Region("b.wav", 0, 3_000)], pause_ms=700)
    # clip: a.wav 0-2000, pause 2000-2700, b.wav 2700-5700
    assert tmap.place(1_500, 3_000) == SourceInterval("a.wav", 6_500, 7_000)
    assert tmap.place(1_900, 4_000) == SourceInterval("b.wav", 0, 1_300)
    assert tmap.place(2_100, 2_600) is None

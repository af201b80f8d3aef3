"""VAD pre-segments: found where the speech is, nothing in noise or silence."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_pipeline import InvalidParameterError, VadParams, analyze, detect_speech
from audio_pipeline.segments import Span
from audio_pipeline.vad import VoiceActivityDetector, sliding_min
from sandbox.speech import SpeechTrack, Utterance, compose, write_audio
from tests.conftest import pink_noise, white_noise

TOLERANCE_S = 0.25


def assert_matches(found: list[Span], truth: list[Span]) -> None:
    assert len(found) == len(truth), f"found {found}, expected {truth}"
    for seg, span in zip(found, truth, strict=True):
        assert abs(seg.start - span.start) <= TOLERANCE_S, (seg, span)
        assert abs(seg.end - span.end) <= TOLERANCE_S, (seg, span)


def test_segments_match_speech_in_a_wav(speech: SpeechTrack, media_dir: Path) -> None:
    path = write_audio(media_dir / "speech.wav", speech.pcm, speech.rate)
    assert_matches(analyze(path).segments, speech.spans)


def test_segments_match_speech_in_a_44k_stereo_mp3(speech: SpeechTrack, media_dir: Path) -> None:
    path = write_audio(
        media_dir / "speech-44k.mp3", speech.pcm, speech.rate, out_rate=44_100, channels=2
    )
    result = analyze(path)
    assert result.info.sample_rate == 44_100
    assert result.info.channels == 2
    assert_matches(result.segments, speech.spans)


def test_speech_is_found_over_steady_background_noise(speech: SpeechTrack) -> None:
    noisy = (
        speech.pcm.astype(np.int32) + white_noise(speech.duration_s + 1, 0.01)[: len(speech.pcm)]
    )
    assert_matches(detect_speech(noisy.astype(np.int16)), speech.spans)


@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(np.zeros(16_000 * 8, dtype=np.int16), id="digital-silence"),
        pytest.param(white_noise(8, 0.0005), id="near-silence"),
        pytest.param(white_noise(8, 0.1), id="loud-white-noise"),
        pytest.param(white_noise(8, 0.3), id="very-loud-white-noise"),
        pytest.param(pink_noise(8, 0.3), id="loud-pink-noise"),
    ],
)
def test_no_segments_in_noise_or_silence(signal: np.ndarray) -> None:
    for aggressiveness in range(4):
        assert detect_speech(signal, params=VadParams(aggressiveness=aggressiveness)) == []


def test_long_speech_is_split_at_quiet_points_within_the_maximum() -> None:
    words = [Utterance(t) for t in ("one two three four", "five six seven eight") * 3]
    track = compose(words, 0.15, lead_s=0.5, tail_s=0.5)
    found = detect_speech(track.pcm, params=VadParams(max_segment_s=3.0))
    assert len(found) >= 3
    assert all(s.end - s.start <= 3.0 + 1e-6 for s in found)
    # Split pieces touch: no speech is lost between them.
    assert all(a.end == b.start for a, b in itertools.pairwise(found))
    assert found[0].start <= track.spans[0].start + TOLERANCE_S
    assert found[-1].end >= track.spans[-1].end - TOLERANCE_S


def test_short_pauses_merge_and_short_blips_drop() -> None:
    rate = 16_000
    track = compose([Utterance("alpha bravo"), Utterance("charlie delta")], 0.2)
    assert len(detect_speech(track.pcm, params=VadParams(min_pause_s=0.5))) == 1
    click = np.zeros(rate * 3, dtype=np.int16)
    click[rate : rate + 480] = (np.sin(np.arange(480) / 3) * 20_000).astype(np.int16)
    assert detect_speech(click, params=VadParams(min_speech_s=0.4)) == []


def test_a_turn_change_of_half_a_second_stays_a_boundary() -> None:
    """Two speakers, 0.45 s apart: padding must not close the pause (it did up to 0.5 s)."""
    track = compose([Utterance("alpha bravo"), Utterance("charlie delta", voice="en+f3")], 0.45)
    found = detect_speech(track.pcm)
    assert len(found) == 2, found
    assert found[0].end <= found[1].start
    assert_matches(found, track.spans)


def test_distant_talk_in_a_pause_is_not_a_segment() -> None:
    """Room sound: a voice 30 dB below the speaker's, in a 3 s pause, is not pre-segmented
    (webrtcvad calls it speech and it is far above the digital-silence floor)."""
    from sandbox.speech import synthesize

    track = compose([Utterance("alpha bravo charlie"), Utterance("delta echo foxtrot")], 3.0)
    far = synthesize("distant words in the room", voice="en+m3")
    far = (far.astype(np.float64) * 10 ** (-30 / 20)).astype(np.int16)
    at = int((track.spans[0].end + 0.8) * track.rate)
    mixed = track.pcm.astype(np.int32)
    mixed[at : at + len(far)] += far
    pcm = mixed.clip(-32768, 32767).astype(np.int16)
    assert_matches(detect_speech(pcm), track.spans)
    assert len(detect_speech(pcm, params=VadParams(level_gate_db=0))) == 3  # without the gate


def test_feeding_in_odd_blocks_gives_the_same_segments(speech: SpeechTrack) -> None:
    whole = detect_speech(speech.pcm)
    detector = VoiceActivityDetector()
    for i in range(0, len(speech.pcm), 7_777):
        detector.feed(speech.pcm[i : i + 7_777])
    assert detector.finish() == whole


@pytest.mark.parametrize(
    "params",
    [
        VadParams(aggressiveness=4),
        VadParams(aggressiveness=-1),
        VadParams(frame_ms=25),
        VadParams(min_pause_s=-1),
        VadParams(max_segment_s=0),
        VadParams(min_speech_s=20, max_segment_s=10),
        VadParams(padding_s=99),
        VadParams(level_gate_db=-1),
    ],
)
def test_absurd_parameters_are_refused(params: VadParams) -> None:
    with pytest.raises(InvalidParameterError):
        params.validate()


def test_vad_refuses_a_rate_webrtcvad_cannot_take() -> None:
    with pytest.raises(InvalidParameterError, match="44100"):
        VoiceActivityDetector(rate=44_100)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-100, 0, allow_nan=False), min_size=1, max_size=200),
    st.integers(1, 50),
)
def test_sliding_min_equals_the_naive_window_minimum(values: list[float], window: int) -> None:
    arr = np.asarray(values)
    half = window // 2
    expected = [arr[max(0, i - half) : i - half + window].min() for i in range(len(arr))]
    np.testing.assert_array_equal(sliding_min(arr, window), expected)

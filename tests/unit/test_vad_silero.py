"""VAD_ENGINE=silero: silero-vad's bundled ONNX model on onnxruntime, streamed, with the same
pause and padding rules as the default engine."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from audio_pipeline import InvalidParameterError, VadParams, analyze, detect_speech, vad_silero
from audio_pipeline.vad import make_detector
from audio_pipeline.vad_silero import SileroDetector
from exchange_oracle.config import ExchangeSettings
from sandbox.speech import SpeechTrack, Utterance, compose, write_audio
from tests.conftest import pink_noise, white_noise
from tests.unit.test_vad import assert_matches

SILERO = VadParams(engine="silero")


def test_finds_the_speech_in_a_wav(speech: SpeechTrack, media_dir: Path) -> None:
    path = write_audio(media_dir / "speech.wav", speech.pcm, speech.rate)
    assert_matches(analyze(path, vad=SILERO).segments, speech.spans)


def test_finds_the_speech_under_pink_noise(speech: SpeechTrack) -> None:
    noise = pink_noise(speech.duration_s + 1, 0.02)[: len(speech.pcm)]
    noisy = (speech.pcm.astype(np.int32) + noise).clip(-32768, 32767).astype(np.int16)
    assert_matches(detect_speech(noisy, params=SILERO), speech.spans)


@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(np.zeros(16_000 * 8, dtype=np.int16), id="digital-silence"),
        pytest.param(white_noise(8, 0.1), id="loud-white-noise"),
        pytest.param(pink_noise(8, 0.3), id="loud-pink-noise"),
    ],
)
def test_nothing_in_noise_or_silence(signal: np.ndarray) -> None:
    assert detect_speech(signal, params=SILERO) == []


def test_a_turn_change_of_half_a_second_stays_a_boundary() -> None:
    track = compose([Utterance("alpha bravo"), Utterance("charlie delta", voice="en+f3")], 0.45)
    found = detect_speech(track.pcm, params=SILERO)
    assert len(found) == 2, found
    assert_matches(found, track.spans)


def test_feeding_in_odd_blocks_is_one_pass(speech: SpeechTrack) -> None:
    """The model's state is carried between its calls: blocks of any size, and calls cut
    anywhere, give the probabilities (and spans) of one pass."""
    pcm = np.concatenate([speech.pcm] * 4)
    assert len(pcm) > vad_silero.BATCH_WINDOWS * vad_silero.WINDOW  # over one model call
    whole = SileroDetector(SILERO)
    whole.feed(pcm)
    spans = whole.finish()
    streamed = SileroDetector(SILERO)
    for i in range(0, len(pcm), 7_777):
        streamed.feed(pcm[i : i + 7_777])
    assert streamed.finish() == spans
    np.testing.assert_allclose(streamed.probabilities(), whole.probabilities(), atol=1e-5)
    assert len(whole.probabilities()) == -(-len(pcm) // vad_silero.WINDOW)


def test_other_rates_are_resampled_in_memory_and_refused_when_streamed(
    speech: SpeechTrack,
) -> None:
    at_8k = vad_silero.to_16k(speech.pcm, 16_000)[::2]
    assert_matches(detect_speech(at_8k, 8_000, SILERO), speech.spans)
    with pytest.raises(InvalidParameterError, match="16 kHz"):
        SileroDetector(SILERO, 8_000)


def test_the_engine_is_chosen_by_the_params() -> None:
    assert isinstance(make_detector(SILERO), SileroDetector)
    assert not isinstance(make_detector(VadParams()), SileroDetector)
    for bad, message in [
        (VadParams(engine="neural"), "engine must be one of webrtc, silero"),
        (VadParams(engine="silero", threshold=1.0), "threshold"),
    ]:
        with pytest.raises(InvalidParameterError, match=message):
            bad.validate()


def test_a_missing_package_is_named_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "silero_vad" else real(name, *a),
    )
    with pytest.raises(InvalidParameterError, match="pip install --no-deps silero-vad"):
        vad_silero.check()
    # The oracle refuses to start with an engine it cannot run, rather than fail escrows.
    with pytest.raises(ValidationError, match="silero-vad"):
        ExchangeSettings(vad_engine="silero")


def test_the_oracle_setting() -> None:
    assert ExchangeSettings().vad_engine == "webrtc"
    assert ExchangeSettings(vad_engine="silero").vad_engine == "silero"
    with pytest.raises(ValidationError):
        ExchangeSettings(vad_engine="neural")

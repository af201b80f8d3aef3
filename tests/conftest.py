"""Fixtures shared by every test: synthetic speech with known timing, made once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sandbox.speech import SpeechTrack, Utterance, compose

SENTENCES = [
    Utterance("The quick brown fox jumps over the lazy dog", "en-us"),
    Utterance("Hello world this is a test of voice activity", "en-gb"),
    Utterance("Please call Stella and ask her to bring these things", "en-us+f3"),
    Utterance("She sells sea shells by the sea shore", "en-gb+m3"),
]


@pytest.fixture(scope="session")
def speech() -> SpeechTrack:
    """Four utterances, four voices, pauses of 1.2 to 2.5 s between them."""
    return compose(SENTENCES, [1.2, 2.5, 1.6], lead_s=1.0, tail_s=1.5)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


def white_noise(seconds: float, level: float, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(int(seconds * rate)) * level * 32767
    return np.clip(noise, -32768, 32767).astype(np.int16)


def pink_noise(seconds: float, level: float, rate: int = 16_000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(int(seconds * rate)))
    spectrum /= np.sqrt(np.arange(1, len(spectrum) + 1))
    signal = np.fft.irfft(spectrum)
    return (signal / np.abs(signal).max() * level * 32767).astype(np.int16)

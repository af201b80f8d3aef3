"""The ASR engine the operator chooses: none by default, faster-whisper only from a model
folder on disk (never downloaded), an engine of one's own by module:factory; anything
else is refused naming the setting."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from exchange_oracle.asr import AsrConfigError, engine_for
from exchange_oracle.config import ExchangeSettings


def _settings(engine: str, model: str = "") -> ExchangeSettings:
    return ExchangeSettings(asr_engine=engine, asr_model_path=model)


def test_no_engine_by_default() -> None:
    assert engine_for(ExchangeSettings()) is None
    assert engine_for(_settings("none")) is None


def test_an_engine_of_ones_own_by_module_and_factory() -> None:
    engine = engine_for(_settings("sandbox.asr_fake:engine"))
    assert engine is not None
    assert engine(np.zeros(8000, np.int16), 16_000, "en") == "machine draft of 500 ms"


@pytest.mark.parametrize(
    ("engine", "model", "says"),
    [
        ("faster-whisper", "", "ASR_MODEL_PATH '' is not a faster-whisper model folder"),
        ("faster-whisper", "/nonexistent/model", "model.bin"),
        ("whisper", "", "use none, faster-whisper or module:factory"),
        ("sandbox.nothing_here:engine", "", "ASR_ENGINE 'sandbox.nothing_here:engine'"),
        ("sandbox.asr_fake:missing", "", "missing"),
    ],
)
def test_an_engine_that_cannot_run_is_refused_naming_the_setting(
    engine: str, model: str, says: str
) -> None:
    with pytest.raises(AsrConfigError, match=says):
        engine_for(_settings(engine, model))


@pytest.mark.skipif(
    not os.environ.get("ASR_TEST_MODEL"), reason="set ASR_TEST_MODEL to a faster-whisper model"
)
def test_faster_whisper_transcribes_speech_when_its_model_is_present() -> None:
    from sandbox.speech import synthesize

    engine = engine_for(_settings("faster-whisper", os.environ["ASR_TEST_MODEL"]))
    assert engine is not None and Path(os.environ["ASR_TEST_MODEL"]).is_dir()
    text = engine(synthesize("the birch canoe slid on the smooth planks"), 16_000, "en")
    assert "canoe" in text.lower()


@pytest.mark.parametrize(
    ("engine", "model", "says"),
    [
        ("faster-whisper", "", "is not a faster-whisper model folder"),
        ("whisper", "", "use none, faster-whisper or module:factory"),
        ("sandbox.nothing_here:engine", "", "sandbox.nothing_here"),
        ("sandbox.asr_fake:missing", "", "missing"),
    ],
)
def test_the_start_up_check_refuses_the_same_without_loading_a_model(
    engine: str, model: str, says: str
) -> None:
    from exchange_oracle.asr import check

    with pytest.raises(AsrConfigError, match=says):
        check(_settings(engine, model))
    check(_settings("sandbox.asr_fake:engine"))  # a usable one passes
    check(_settings("none"))

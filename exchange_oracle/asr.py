"""Machine drafts of the transcriptions, an engine the operator chooses (`ASR_ENGINE`):
`none` (the default), `faster-whisper` with a model folder the operator provides
(`ASR_MODEL_PATH`; nothing is ever downloaded), or `module:factory` for an engine of
one's own (the factory gets the settings and returns a callable `(pcm, rate, language)
-> text`). Drafts go on the VAD pre-segments of the data; honeypots get their answers
garbled instead (exchange_oracle.imports.seeded), so they look like the data and a
worker who accepts every draft unchanged fails them.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from exchange_oracle.config import ExchangeSettings

Engine = Callable[[np.ndarray, int, str], str]


class AsrConfigError(ValueError):
    """An ASR_ENGINE or ASR_MODEL_PATH this oracle cannot use; the message says why."""


def engine_for(settings: ExchangeSettings) -> Engine | None:
    return _engine(settings.asr_engine.strip(), settings.asr_model_path.strip())


def check(settings: ExchangeSettings) -> None:
    """What `engine_for` would refuse, found without loading a model: for a start-up
    check in every process, most of which (the HTTP API) never draft anything."""
    name, model_path = settings.asr_engine.strip(), settings.asr_model_path.strip()
    if name in ("", "none"):
        return
    if name == "faster-whisper":
        _model_folder(model_path)
        if importlib.util.find_spec("faster_whisper") is None:
            raise AsrConfigError("ASR_ENGINE faster-whisper: pip install faster-whisper")
        return
    module, _, factory = name.partition(":")
    if not factory:
        raise AsrConfigError(f"ASR_ENGINE '{name}': use none, faster-whisper or module:factory")
    try:
        if not callable(getattr(importlib.import_module(module), factory)):
            raise AsrConfigError(f"ASR_ENGINE '{name}': {factory} is not callable")
    except (ImportError, AttributeError) as exc:
        raise AsrConfigError(f"ASR_ENGINE '{name}': {exc}") from None


def _model_folder(model_path: str) -> None:
    if not model_path or not (Path(model_path) / "model.bin").is_file():
        raise AsrConfigError(
            f"ASR_MODEL_PATH '{model_path}' is not a faster-whisper model folder (model.bin): "
            "convert one with ct2-transformers-converter and point ASR_MODEL_PATH at it"
        )


@cache
def _engine(name: str, model_path: str) -> Engine | None:
    if name in ("", "none"):
        return None
    if name == "faster-whisper":
        return _faster_whisper(model_path)
    module, _, factory = name.partition(":")
    if not factory:
        raise AsrConfigError(f"ASR_ENGINE '{name}': use none, faster-whisper or module:factory")
    try:
        made: Engine = getattr(importlib.import_module(module), factory)(model_path)
    except (ImportError, AttributeError) as exc:
        raise AsrConfigError(f"ASR_ENGINE '{name}': {exc}") from None
    return made


def _faster_whisper(model_path: str) -> Engine:
    _model_folder(model_path)
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise AsrConfigError("ASR_ENGINE faster-whisper: pip install faster-whisper") from None
    model: Any = WhisperModel(model_path, device="cpu", compute_type="int8", local_files_only=True)

    def transcribe(pcm: np.ndarray, rate: int, language: str) -> str:
        if rate != 16_000:
            raise ValueError(f"faster-whisper takes 16 kHz audio, not {rate} Hz")
        audio = pcm.astype(np.float32) / 32768.0
        segments, _ = model.transcribe(audio, language=language or None, beam_size=1)
        return " ".join(s.text.strip() for s in segments).strip()

    return transcribe


def drafts(
    engine: Engine, pcm: np.ndarray, rate: int, language: str, spans: list[tuple[int, int]]
) -> list[str]:
    """A draft per clip span (ms) of `pcm`."""
    return [engine(pcm[a * rate // 1000 : b * rate // 1000], rate, language) for a, b in spans]

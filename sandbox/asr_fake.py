"""A stand-in ASR engine for tests and the demo (ASR_ENGINE=sandbox.asr_fake:engine): it
returns known text, "machine draft" and the span's length, so a test can tell a draft
from a worker's words and from a honeypot's garbled answer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def engine(model_path: str) -> Callable[[np.ndarray, int, str], str]:
    def transcribe(pcm: np.ndarray, rate: int, language: str) -> str:
        return f"machine draft of {len(pcm) * 1000 // rate} ms"

    return transcribe

"""The `silero` VAD engine: silero-vad's bundled ONNX model (the 16 kHz sequence export) run
on onnxruntime, with no torch and nothing downloaded, followed by the same pause merging,
padding and splitting as the default engine.

Audio is fed in blocks; every ~33 s of it goes through the model in one call, the LSTM state
carried from call to call, so the probabilities are those of one pass over the whole file.
Only one probability and one energy per 32 ms window are kept, so memory stays flat.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.segments import Span
from audio_pipeline.vad import SILENCE_DB, VadParams, runs, runs_reaching, segment_spans

RATE = 16_000
WINDOW = 512  # samples per decision (32 ms)
CONTEXT = 64  # samples of the previous window the model sees before each one
BATCH_WINDOWS = 1024
MODEL_FILE = "silero_vad_16k_sequence.onnx"
# Frames between `threshold - HYSTERESIS` and `threshold` continue speech, never start it
# (silero's own neg_threshold).
HYSTERESIS = 0.15


def model_path() -> Path:
    """The model file inside the installed silero-vad package, found without importing it
    (its Python code imports torch, which this engine does not need)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidParameterError(
            "VAD engine 'silero' needs the silero-vad package: "
            "pip install --no-deps silero-vad onnxruntime"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_FILE
    if not path.is_file():
        raise InvalidParameterError(f"VAD engine 'silero': {path} is missing from silero-vad")
    return path


def check() -> None:
    """Raise InvalidParameterError when the engine cannot run here, without loading it."""
    model_path()
    if importlib.util.find_spec("onnxruntime") is None:
        raise InvalidParameterError(
            "VAD engine 'silero' needs onnxruntime: pip install onnxruntime"
        )


@lru_cache(maxsize=1)
def _session() -> Any:
    check()
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread: the build runs one analysis per worker process, side by side.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        str(model_path()), options, providers=["CPUExecutionProvider"]
    )


class SileroDetector:
    """Feed int16 mono blocks at 16 kHz; `finish()` returns speech spans in seconds."""

    def __init__(self, params: VadParams | None = None, rate: int = RATE) -> None:
        self.params = params or VadParams(engine="silero")
        self.params.validate()
        if rate != RATE:
            raise InvalidParameterError(f"VAD engine 'silero' needs 16 kHz audio, not {rate} Hz")
        self._session = _session()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._probs: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []
        self._samples = 0

    def feed(self, block: np.ndarray) -> None:
        self._samples += len(block)
        self._pending.append(block)
        self._pending_n += len(block)
        if self._pending_n >= BATCH_WINDOWS * WINDOW:
            self._run(final=False)

    def _run(self, final: bool) -> None:
        data = np.concatenate(self._pending).astype(np.float32) / np.float32(32768)
        usable = len(data) - len(data) % WINDOW
        if final and usable < len(data):  # the last partial window, zero-padded
            data = np.concatenate((data, np.zeros(WINDOW - len(data) % WINDOW, np.float32)))
            usable = len(data)
        rest = data[usable:]
        self._pending = [np.round(rest * 32768).astype(np.int16)] if len(rest) else []
        self._pending_n = len(rest)
        if not usable:
            return
        body = np.concatenate((self._context, data[:usable]))
        windows = np.lib.stride_tricks.sliding_window_view(body, CONTEXT + WINDOW)[::WINDOW]
        probs, self._h, self._c = self._session.run(
            None, {"input": np.ascontiguousarray(windows), "h": self._h, "c": self._c}
        )
        self._probs.append(np.asarray(probs, dtype=np.float32).reshape(-1))
        power = np.mean(data[:usable].reshape(-1, WINDOW) ** 2, axis=1)
        self._energy.append(
            np.maximum(10 * np.log10(np.maximum(power, 1e-12)), SILENCE_DB).astype(np.float32)
        )
        self._context = data[usable - CONTEXT : usable].copy()

    def probabilities(self) -> np.ndarray:
        """Speech probability per 32 ms window of what was fed so far (after `finish`)."""
        return np.concatenate(self._probs) if self._probs else np.zeros(0, np.float32)

    def finish(self) -> list[Span]:
        if self._pending_n:
            self._run(final=True)
        if not self._probs:
            return []
        probs = self.probabilities()
        energy = np.concatenate(self._energy)
        self._probs, self._energy = [probs], [energy]
        threshold = np.float32(self.params.threshold)
        speech = runs_reaching(probs >= threshold - np.float32(HYSTERESIS), probs >= threshold)
        frame_s = WINDOW / RATE
        return segment_spans(
            runs(speech, frame_s), energy, frame_s, self._samples / RATE, self.params
        )


def to_16k(pcm: np.ndarray, rate: int) -> np.ndarray:
    """An in-memory signal at 16 kHz (band-limited resampling in the frequency domain)."""
    if rate == RATE or not len(pcm):
        return pcm
    n = round(len(pcm) * RATE / rate)
    spectrum = np.fft.rfft(pcm.astype(np.float64))
    out = np.fft.irfft(spectrum, n) * (n / len(pcm))
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)

"""Voice-activity pre-segments: webrtcvad frame decisions, gated by a local noise floor.

webrtcvad alone calls loud stationary noise speech, so a frame only counts as speech when
it also rises `noise_margin_db` above the local noise floor (minimum statistics over the
smoothed frame energy). The detector keeps only per-frame flags and energies (a few bytes
per frame), never the audio, so memory stays small for any input length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import webrtcvad

from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.segments import Span

VAD_RATES = (8000, 16000, 32000, 48000)
FRAME_MS = (10, 20, 30)
SILENCE_DB = -100.0
# Frames quieter than this are never speech, whatever webrtcvad says.
ABSOLUTE_FLOOR_DB = -60.0
NOISE_WINDOW_S = 10.0
LEVEL_WINDOW_S = 30.0
SMOOTHING_S = 0.25
# Energy is measured in the speech band, so rumble, hum and DC drift cannot pass for speech.
SPEECH_BAND_HZ = (150.0, 4000.0)
# webrtc: webrtcvad frames gated by noise floor and level (fast, the default);
# silero: silero-vad's bundled ONNX model on onnxruntime (better in steady noise, slower).
ENGINES = ("webrtc", "silero")


@dataclass(frozen=True)
class VadParams:
    """Segmenter settings; `validate` explains any value out of range."""

    aggressiveness: int = 2
    frame_ms: int = 30
    padding_s: float = 0.1
    min_pause_s: float = 0.3
    min_speech_s: float = 0.25
    max_segment_s: float = 15.0
    noise_margin_db: float = 6.0
    # A run of speech frames is kept only if it comes somewhere within this many dB of the
    # local speech level (the loudest smoothed energy within LEVEL_WINDOW_S): distant room
    # sound, breaths and lip noise between turns do not. In heavy noise the level is close
    # to the floor, and the gate lets everything through. 0: off.
    level_gate_db: float = 22.0
    engine: str = "webrtc"
    # silero only: a window whose speech probability reaches this starts or holds speech.
    threshold: float = 0.5

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise InvalidParameterError(
                f"VAD engine must be one of {', '.join(ENGINES)}, not {self.engine!r}"
            )
        if not 0.05 <= self.threshold <= 0.95:
            raise InvalidParameterError(f"threshold {self.threshold} is outside 0.05..0.95")
        if self.aggressiveness not in (0, 1, 2, 3):
            raise InvalidParameterError(
                f"aggressiveness must be 0, 1, 2 or 3, not {self.aggressiveness}"
            )
        if self.frame_ms not in FRAME_MS:
            raise InvalidParameterError(
                f"frame length must be 10, 20 or 30 ms, not {self.frame_ms}"
            )
        if not 0 <= self.padding_s <= 2:
            raise InvalidParameterError(f"padding {self.padding_s} s is outside 0..2 s")
        if not 0 <= self.min_pause_s <= 10:
            raise InvalidParameterError(f"minimum pause {self.min_pause_s} s is outside 0..10 s")
        if not 0 <= self.min_speech_s <= 60:
            raise InvalidParameterError(f"minimum speech {self.min_speech_s} s is outside 0..60 s")
        if not 1 <= self.max_segment_s <= 3600:
            raise InvalidParameterError(
                f"maximum segment {self.max_segment_s} s is outside 1..3600 s"
            )
        if self.min_speech_s >= self.max_segment_s:
            raise InvalidParameterError("minimum speech must be shorter than the maximum segment")
        if not 0 <= self.noise_margin_db <= 40:
            raise InvalidParameterError(f"noise margin {self.noise_margin_db} dB is outside 0..40")
        if not 0 <= self.level_gate_db <= 60:
            raise InvalidParameterError(f"level gate {self.level_gate_db} dB is outside 0..60")


class Detector(Protocol):
    def feed(self, block: np.ndarray) -> None: ...

    def finish(self) -> list[Span]: ...


def make_detector(params: VadParams | None = None, rate: int = 16_000) -> Detector:
    """The detector of `params.engine`, fed int16 mono blocks at `rate`."""
    params = params or VadParams()
    params.validate()
    if params.engine == "silero":
        from audio_pipeline.vad_silero import SileroDetector

        return SileroDetector(params, rate)
    return VoiceActivityDetector(params, rate)


class VoiceActivityDetector:
    """The webrtc engine. Feed int16 mono blocks at `rate`; `finish()` returns speech spans
    in seconds."""

    def __init__(self, params: VadParams | None = None, rate: int = 16_000) -> None:
        self.params = params or VadParams()
        self.params.validate()
        if rate not in VAD_RATES:
            raise InvalidParameterError(f"VAD needs 8, 16, 32 or 48 kHz audio, not {rate} Hz")
        self.rate = rate
        self._frame = rate * self.params.frame_ms // 1000
        window = np.hanning(self._frame)
        freqs = np.fft.rfftfreq(self._frame, 1 / rate)
        self._band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
        self._window = window
        # Parseval: band power as the mean square of the unwindowed frame, relative to full scale.
        self._energy_scale = 2.0 / (self._frame * np.sum(window**2) * 32768.0**2)
        self._vad = webrtcvad.Vad(self.params.aggressiveness)
        self._carry = np.zeros(0, dtype=np.int16)
        self._flags: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []
        self._samples = 0

    def feed(self, block: np.ndarray) -> None:
        self._samples += len(block)
        data = np.concatenate((self._carry, block)) if len(self._carry) else block
        usable = len(data) - len(data) % self._frame
        self._carry = data[usable:].copy()
        if not usable:
            return
        frames = np.ascontiguousarray(data[:usable], dtype=np.int16).reshape(-1, self._frame)
        spectrum = np.fft.rfft(frames * self._window, axis=1)[:, self._band]
        power = np.sum(np.abs(spectrum) ** 2, axis=1) * self._energy_scale
        self._energy.append(
            np.maximum(10 * np.log10(np.maximum(power, 1e-12)), SILENCE_DB).astype(np.float32)
        )
        is_speech = self._vad.is_speech
        raw = frames.tobytes()
        step = self._frame * 2
        self._flags.append(
            np.fromiter(
                (is_speech(raw[i : i + step], self.rate) for i in range(0, len(raw), step)),
                dtype=bool,
                count=len(frames),
            )
        )

    def finish(self) -> list[Span]:
        if not self._flags:
            return []
        flags = np.concatenate(self._flags)
        energy = np.concatenate(self._energy)
        self._flags, self._energy = [flags], [energy]
        frame_s = self.params.frame_ms / 1000
        above, gate = self._levels(energy, frame_s)
        speech = flags & above
        if self.params.level_gate_db > 0:
            speech = runs_reaching(speech, gate)
        spans = runs(speech, frame_s)
        duration = self._samples / self.rate
        return segment_spans(spans, energy, frame_s, duration, self.params)

    def _levels(self, energy: np.ndarray, frame_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(frames above the noise floor plus the margin, frames whose smoothed energy
        reaches the level gate)."""
        # float32 throughout: ten hours of 30 ms frames stay a few MB per array.
        smooth_n = max(1, round(SMOOTHING_S / frame_s))
        linear = np.power(np.float32(10), energy / np.float32(10))
        kernel = np.full(smooth_n, 1 / smooth_n, dtype=np.float32)
        smoothed = np.convolve(linear, kernel, mode="same")
        del linear
        np.maximum(smoothed, np.float32(1e-12), out=smoothed)
        np.log10(smoothed, out=smoothed)
        smoothed *= np.float32(10)
        floor = sliding_min(smoothed, max(1, round(NOISE_WINDOW_S / frame_s)))
        np.maximum(floor, np.float32(SILENCE_DB), out=floor)
        level = -sliding_min(-smoothed, max(1, round(LEVEL_WINDOW_S / frame_s)))
        margin = np.float32(self.params.noise_margin_db)
        gate = smoothed >= level - np.float32(self.params.level_gate_db)
        del smoothed, level
        floor += margin
        return (energy > floor) & (energy > ABSOLUTE_FLOOR_DB), gate


def runs_reaching(flags: np.ndarray, gate: np.ndarray) -> np.ndarray:
    """`flags` with every run of True that has no `gate` frame inside it cleared."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not len(starts):
        return flags
    hits = np.add.reduceat((flags & gate).astype(np.int32), starts)
    # reduceat sums from each start to the next start: past a run's end flags are False.
    out = flags.copy()
    for s, e in zip(starts[hits == 0], ends[hits == 0], strict=True):
        out[s:e] = False
    return out


def sliding_min(values: np.ndarray, window: int) -> np.ndarray:
    """Minimum over a centred window of `window` items (van Herk / Gil-Werman, O(n))."""
    n = len(values)
    if window <= 1 or n == 0:
        return values.copy()
    half = window // 2
    blocks = -(-(half + n + window) // window)
    padded = np.full(blocks * window, np.inf, dtype=values.dtype)
    padded[half : half + n] = values
    grid = padded.reshape(blocks, window)
    prefix = np.minimum.accumulate(grid, axis=1).reshape(-1)
    suffix = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    idx = np.arange(n)
    return np.minimum(suffix[idx], prefix[idx + window - 1])


def runs(flags: np.ndarray, frame_s: float) -> list[Span]:
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [Span(float(s * frame_s), float(e * frame_s)) for s, e in zip(starts, ends, strict=True)]


def segment_spans(
    spans: list[Span],
    energy: np.ndarray,
    frame_s: float,
    duration_s: float,
    params: VadParams,
) -> list[Span]:
    """Merge pauses shorter than `min_pause_s`, drop short blips, pad, and split long
    segments at the quietest frame. Pauses are measured before padding, and padding never
    reaches past the middle of a pause, so a turn change of `min_pause_s` or more stays a
    boundary (padding first used to close gaps up to `min_pause_s + 2 * padding_s`)."""
    merged: list[Span] = []
    for span in spans:
        if merged and span.start - merged[-1].end < params.min_pause_s:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(span)
    merged = [s for s in merged if s.end - s.start >= params.min_speech_s - 2 * params.padding_s]
    padded: list[Span] = []
    for i, span in enumerate(merged):
        before = span.start - merged[i - 1].end if i else span.start * 2
        after = merged[i + 1].start - span.end if i + 1 < len(merged) else np.inf
        padded.append(
            Span(
                max(0.0, span.start - min(params.padding_s, before / 2)),
                min(duration_s, span.end + min(params.padding_s, after / 2)),
            )
        )
    merged = padded
    kept = [s for s in merged if s.end - s.start >= params.min_speech_s]
    out: list[Span] = []
    for span in kept:
        out.extend(_split_long(span, energy, frame_s, params.max_segment_s))
    return [Span(round(s.start, 3), round(s.end, 3)) for s in out]


def _split_long(span: Span, energy: np.ndarray, frame_s: float, max_s: float) -> list[Span]:
    pieces: list[Span] = []
    start, end = span.start, span.end
    while end - start > max_s:
        lo = int((start + max_s / 2) / frame_s)
        hi = int((start + max_s) / frame_s)
        window = energy[lo:hi]
        if not len(window):
            break
        cut = (lo + int(np.argmin(window))) * frame_s
        pieces.append(Span(start, cut))
        start = cut
    pieces.append(Span(start, end))
    return pieces


def detect_speech(
    pcm: np.ndarray, rate: int = 16_000, params: VadParams | None = None
) -> list[Span]:
    """Speech spans of a whole in-memory int16 mono signal."""
    if params is not None and params.engine == "silero" and rate != 16_000:
        from audio_pipeline.vad_silero import to_16k

        pcm, rate = to_16k(pcm, rate), 16_000
    detector = make_detector(params, rate)
    detector.feed(pcm)
    return detector.finish()

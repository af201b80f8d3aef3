"""Streaming decode of any common audio format to 16-bit PCM at a chosen rate and layout.

Decoding goes through PyAV (FFmpeg's libraries in-process), one block at a time, so memory
stays flat however long the input is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import av
import av.logging
import numpy as np

from audio_pipeline.errors import (
    CorruptAudioError,
    EmptyAudioError,
    InvalidParameterError,
    TruncatedAudioError,
    UnreadableAudioError,
)

AudioSource = str | os.PathLike[str] | IO[bytes]
ProgressCallback = Callable[[float], None]

MAX_SAMPLE_RATE = 384_000
# FFmpeg's default layout for each channel count.
LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
MAX_CHANNELS = len(LAYOUTS)
# A stream that stops short of its declared duration by more than both of these is truncated.
TRUNCATION_TOLERANCE_S = 0.5
TRUNCATION_TOLERANCE_RATIO = 0.10


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about the input, before decoding."""

    source: str
    container: str
    codec: str
    sample_rate: int
    channels: int
    declared_duration_s: float | None


def source_name(source: AudioSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def _check_params(rate: int, channels: int, block_s: float) -> None:
    if not 1000 <= rate <= MAX_SAMPLE_RATE:
        raise InvalidParameterError(f"sample rate {rate} Hz is outside 1000..{MAX_SAMPLE_RATE}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidParameterError(f"channel count {channels} is outside 1..{MAX_CHANNELS}")
    if not 0.01 <= block_s <= 600:
        raise InvalidParameterError(f"block length {block_s} s is outside 0.01..600 s")


def _open_container(source: AudioSource, name: str) -> Any:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise UnreadableAudioError(name, "no such file")
        if not path.is_file():
            raise UnreadableAudioError(name, "not a regular file")
        if path.stat().st_size == 0:
            raise EmptyAudioError(name, "file is empty (0 bytes)")
    try:
        return av.open(source, mode="r", metadata_errors="ignore")
    except av.error.EOFError as exc:
        raise UnreadableAudioError(
            name, "not a readable audio file (ends inside its header)"
        ) from exc
    except av.FFmpegError as exc:
        raise UnreadableAudioError(
            name, f"not a readable audio file ({_ffmpeg_reason(exc)})"
        ) from exc


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).rstrip(".").lower()


class PcmReader:
    """Decodes one input to int16 PCM blocks of about `block_s` seconds.

    Iterating yields arrays shaped (n,) for mono or (n, channels) otherwise. After the
    iteration ends, `samples` and `duration_s` hold the exact decoded length.
    """

    def __init__(
        self,
        source: AudioSource,
        *,
        rate: int = 16_000,
        channels: int = 1,
        block_s: float = 5.0,
        progress: ProgressCallback | None = None,
        strict: bool = True,
    ) -> None:
        _check_params(rate, channels, block_s)
        _enable_error_logs()
        self.name = source_name(source)
        self.rate = rate
        self.channels = channels
        self.samples = 0
        self.strict = strict
        self.damage: list[str] = []
        self._block = max(1, int(block_s * rate))
        self._progress = progress
        with av.logging.Capture(local=True) as logs:
            self._container = _open_container(source, self.name)
        try:
            for level, _name, message in logs:
                if level <= av.logging.ERROR:
                    self._damaged(message.strip(), "damaged container")
            self.info = self._read_info()
        except BaseException:
            self._container.close()
            raise

    def _read_info(self) -> AudioInfo:
        streams = self._container.streams.audio
        if not streams:
            fmt = self._container.format.name
            raise UnreadableAudioError(self.name, f"no audio stream found (container '{fmt}')")
        stream = streams[0]
        ctx = stream.codec_context
        if ctx is None or not ctx.name:
            raise UnreadableAudioError(self.name, "audio codec is not supported by this decoder")
        if not ctx.sample_rate or ctx.sample_rate <= 0:
            raise UnreadableAudioError(self.name, f"codec '{ctx.name}' reports no sample rate")
        declared: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            declared = float(stream.duration * stream.time_base)
        elif self._container.duration:
            declared = self._container.duration / 1_000_000
        return AudioInfo(
            source=self.name,
            container=self._container.format.name,
            codec=ctx.name,
            sample_rate=int(ctx.sample_rate),
            channels=int(ctx.channels or len(ctx.layout.channels) or 1),
            declared_duration_s=declared,
        )

    @property
    def duration_s(self) -> float:
        return self.samples / self.rate

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> PcmReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _resampler(self) -> Any:
        return av.AudioResampler(format="s16", layout=LAYOUTS[self.channels], rate=self.rate)

    def _decoded(self) -> Iterator[Any]:
        """Decoded frames; FFmpeg's error-level log lines along the way count as damage."""
        frames = self._container.decode(self._container.streams.audio[0])
        while True:
            with av.logging.Capture(local=True) as logs:
                frame = next(frames, None)
            for level, _name, message in logs:
                if level <= av.logging.ERROR:
                    self._damaged(message.strip())
            if frame is None:
                return
            yield frame

    def _damaged(self, message: str, where: str | None = None) -> None:
        where = where or f"corrupt audio data near {self.samples / self.rate:.2f} s"
        self.damage.append(f"{where}: {message}")
        if self.strict:
            raise CorruptAudioError(self.name, f"{where} ({message})")

    def _frames(self) -> Iterator[np.ndarray]:
        # Half a block per batch keeps every yielded block under 1.5 x block_s (+ one frame).
        batch_s = min(BATCH_S, self._block / self.rate / 2)
        mono = self.channels == 1
        batch: _Batch | None = None
        resampler = self._resampler()
        try:
            for frame in self._decoded():
                key = _Batch.key_of(frame)
                if batch is None or key != batch.key or batch.full():
                    if batch is not None:
                        yield from batch.convert(resampler)
                        if key != batch.key:
                            # The input changed rate, format or layout mid-stream.
                            yield from (f.to_ndarray() for f in resampler.resample(None))
                            resampler = self._resampler()
                    batch = _Batch(key, frame, batch_s, mono)
                batch.add(frame)
            if batch is not None:
                yield from batch.convert(resampler)
            for f in resampler.resample(None):
                yield f.to_ndarray()
        except av.error.EOFError:
            return
        except av.FFmpegError as exc:
            at = self.samples / self.rate
            raise CorruptAudioError(
                self.name, f"corrupt audio data near {at:.2f} s ({_ffmpeg_reason(exc)})"
            ) from exc

    def __iter__(self) -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        held = 0
        for packed in self._frames():
            # Packed s16 frames arrive as (1, n * channels): interleaved samples.
            samples: np.ndarray = (
                packed.reshape(-1, self.channels) if self.channels > 1 else packed.reshape(-1)
            )
            if not len(samples):
                continue
            pending.append(samples)
            held += len(samples)
            if held >= self._block:
                yield self._emit(pending, held)
                pending, held = [], 0
        if held:
            yield self._emit(pending, held)
        self._check_complete()

    def _emit(self, pending: list[np.ndarray], held: int) -> np.ndarray:
        block = pending[0] if len(pending) == 1 else np.concatenate(pending)
        self.samples += held
        if self._progress is not None:
            self._progress(self.duration_s)
        return block

    def _check_complete(self) -> None:
        if self.samples == 0:
            raise EmptyAudioError(self.name, "contains no audio samples")
        declared = self.info.declared_duration_s
        if declared is None:
            return
        missing = declared - self.duration_s
        if missing > TRUNCATION_TOLERANCE_S and missing > declared * TRUNCATION_TOLERANCE_RATIO:
            raise TruncatedAudioError(
                self.name,
                f"audio stops at {self.duration_s:.2f} s but the file declares "
                f"{declared:.2f} s (truncated or damaged)",
            )


_SAMPLE_TYPES: dict[str, type[np.generic]] = {
    "u8": np.uint8,
    "s16": np.int16,
    "s32": np.int32,
    "s64": np.int64,
    "flt": np.float32,
    "dbl": np.float64,
}
BATCH_S = 1.0


class _Batch:
    """About a second of decoded frames of one shape, held as zero-copy views of their planes.

    Resampling once per batch instead of once per codec frame (1152 samples for MP3) is what
    keeps decoding close to FFmpeg's own speed: per-call overhead dominates otherwise.
    """

    def __init__(self, key: tuple[str, int, int], frame: Any, seconds: float, mono: bool) -> None:
        self.key = key
        fmt = frame.format
        self._layout = frame.layout
        self._channels = key[2]
        self._planar = fmt.is_planar
        self._dtype = _SAMPLE_TYPES[fmt.name.rstrip("p")]
        self._limit = max(1, int(frame.sample_rate * seconds))
        # Averaging float planes here is cheaper than letting the resampler downmix.
        self._downmix = mono and self._planar and self._channels > 1 and fmt.name == "fltp"
        self.planes: list[list[np.ndarray]] = [
            [] for _ in range(self._channels if self._planar else 1)
        ]
        self.samples = 0

    @staticmethod
    def key_of(frame: Any) -> tuple[str, int, int]:
        return frame.format.name, frame.sample_rate, frame.layout.nb_channels

    def full(self) -> bool:
        return self.samples >= self._limit

    def add(self, frame: Any) -> None:
        n = frame.samples
        per_plane = n if self._planar else n * self._channels
        dtype = self._dtype
        for store, plane in zip(self.planes, frame.planes, strict=False):
            store.append(np.frombuffer(plane, dtype=dtype, count=per_plane))
        self.samples += n

    def convert(self, resampler: Any) -> Iterator[np.ndarray]:
        if not self.samples:
            return
        name, rate, _ = self.key
        layout: Any = self._layout
        if self._downmix:
            mixed = np.concatenate(self.planes[0])
            for plane in self.planes[1:]:
                mixed += np.concatenate(plane)
            mixed *= np.float32(1 / self._channels)
            data, name, layout = mixed.reshape(1, -1), "flt", "mono"
        elif self._planar:
            data = np.stack([np.concatenate(p) for p in self.planes])
        else:
            data = np.concatenate(self.planes[0]).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format=name, layout=layout)
        frame.sample_rate = rate
        for out in resampler.resample(frame):
            yield out.to_ndarray()


def _enable_error_logs() -> None:
    """PyAV drops FFmpeg's log by default; we need its error lines to see damage."""
    level = av.logging.get_level()
    if level is None or level < av.logging.ERROR:
        av.logging.set_level(av.logging.ERROR)


def probe(source: AudioSource) -> AudioInfo:
    """Read the container header only."""
    with PcmReader(source) as reader:
        return reader.info


def decode(source: AudioSource, *, rate: int = 16_000, channels: int = 1) -> np.ndarray:
    """Whole input as one int16 array; for short audio only (clips, tests)."""
    with PcmReader(source, rate=rate, channels=channels) as reader:
        blocks = list(reader)
    return np.concatenate(blocks)

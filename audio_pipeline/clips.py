"""Assignment clips: regions cut from source files, joined with pauses, encoded as MP3.

All clip and source positions are integer milliseconds (CVAT's audio frame), so mapping
clip time to source time and back is exact. Clips use a sample rate with a whole number of
samples per millisecond, so every boundary falls on a sample.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from audio_pipeline.decode import AudioSource
from audio_pipeline.decode_pipe import open_mono
from audio_pipeline.errors import InvalidParameterError, UnreadableAudioError

DEFAULT_PAUSE_MS = 700
DEFAULT_CLIP_RATE = 16_000
FADE_MS = 5
# How far a planned region may end past the audio as this decode finds it (then silence).
END_SLACK_MS = 50


@dataclass(frozen=True)
class Region:
    """A half-open range [start_ms, end_ms) of one source file."""

    source: str
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.start_ms < 0 or self.end_ms <= self.start_ms:
            raise InvalidParameterError(
                f"region {self.source} {self.start_ms}-{self.end_ms} ms: need 0 <= start < end"
            )


@dataclass(frozen=True)
class Piece:
    """Where one region sits in the clip."""

    clip_start_ms: int
    source: str
    source_start_ms: int
    length_ms: int

    @property
    def clip_end_ms(self) -> int:
        return self.clip_start_ms + self.length_ms


@dataclass(frozen=True)
class SourceInterval:
    source: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class TimeMap:
    """Clip time <-> source time for one clip; positions in pauses map to nothing."""

    pieces: tuple[Piece, ...]
    duration_ms: int

    def to_source(self, clip_ms: int) -> tuple[str, int] | None:
        for p in self.pieces:
            if p.clip_start_ms <= clip_ms < p.clip_end_ms:
                return p.source, p.source_start_ms + (clip_ms - p.clip_start_ms)
        return None

    def to_clip(self, source: str, source_ms: int) -> int | None:
        for p in self.pieces:
            offset = source_ms - p.source_start_ms
            if p.source == source and 0 <= offset < p.length_ms:
                return p.clip_start_ms + offset
        return None

    def interval_to_source(self, start_ms: int, end_ms: int) -> list[SourceInterval]:
        """The parts of a clip interval that fall on source audio, one per piece it crosses."""
        out = []
        for p in self.pieces:
            lo, hi = max(start_ms, p.clip_start_ms), min(end_ms, p.clip_end_ms)
            if lo < hi:
                shift = p.source_start_ms - p.clip_start_ms
                out.append(SourceInterval(p.source, lo + shift, hi + shift))
        return out

    def place(self, start_ms: int, end_ms: int) -> SourceInterval | None:
        """Where a clip interval belongs in the sources: the part of it on the piece it
        overlaps most (an annotator's segment that runs into a pause or the next region
        is cut to the region it mostly covers); None if it covers only pauses."""
        parts = self.interval_to_source(start_ms, end_ms)
        return max(parts, key=lambda p: p.end_ms - p.start_ms) if parts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration_ms": self.duration_ms,
            "pieces": [
                {
                    "clip_start_ms": p.clip_start_ms,
                    "source": p.source,
                    "source_start_ms": p.source_start_ms,
                    "length_ms": p.length_ms,
                }
                for p in self.pieces
            ],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TimeMap:
        pieces = tuple(
            Piece(
                int(p["clip_start_ms"]),
                str(p["source"]),
                int(p["source_start_ms"]),
                int(p["length_ms"]),
            )
            for p in doc["pieces"]
        )
        return cls(pieces, int(doc["duration_ms"]))


def plan_clip(regions: Sequence[Region], pause_ms: int = DEFAULT_PAUSE_MS) -> TimeMap:
    """Lay regions end to end with `pause_ms` of silence between them."""
    if not regions:
        raise InvalidParameterError("a clip needs at least one region")
    if not 0 <= pause_ms <= 60_000:
        raise InvalidParameterError(f"pause {pause_ms} ms is outside 0..60000 ms")
    pieces, cursor = [], 0
    for i, region in enumerate(regions):
        if i:
            cursor += pause_ms
        length = region.end_ms - region.start_ms
        pieces.append(Piece(cursor, region.source, region.start_ms, length))
        cursor += length
    return TimeMap(tuple(pieces), cursor)


def cut_regions(
    source: AudioSource, ranges_ms: Iterable[tuple[int, int]], rate: int = DEFAULT_CLIP_RATE
) -> dict[tuple[int, int], np.ndarray]:
    """Samples of each [start, end) ms range of one source, decoded in a single pass."""
    per_ms = rate // 1000
    wanted = sorted(set(ranges_ms))
    out = {r: np.zeros((r[1] - r[0]) * per_ms, dtype=np.int16) for r in wanted}
    filled = dict.fromkeys(wanted, 0)
    last_end = max(end for _, end in wanted) * per_ms
    with open_mono(source, rate) as reader:
        pos = 0
        for block in reader:
            lo, hi = pos, pos + len(block)
            for r in wanted:
                a, b = max(lo, r[0] * per_ms), min(hi, r[1] * per_ms)
                if a < b:
                    out[r][a - r[0] * per_ms : b - r[0] * per_ms] = block[a - lo : b - lo]
                    filled[r] += b - a
            pos = hi
            if pos >= last_end:
                break
    for r in wanted:
        # Decoders (and rates) may differ by a few ms on a file's last frame: the analysis
        # that planned the regions and this cut need not agree to the sample.
        if filled[r] < len(out[r]) - END_SLACK_MS * per_ms:
            raise InvalidParameterError(
                f"{reader.name}: region {r[0]}-{r[1]} ms ends after the audio ({pos // per_ms} ms)"
            )
    return out


def render_clip(
    time_map: TimeMap,
    open_source: Callable[[str], AudioSource],
    rate: int = DEFAULT_CLIP_RATE,
) -> np.ndarray:
    """The clip's int16 mono samples; `open_source` turns a region's source name into audio."""
    if rate % 1000:
        raise InvalidParameterError(f"clip rate must be a multiple of 1000 Hz, not {rate}")
    per_ms = rate // 1000
    pcm = np.zeros(time_map.duration_ms * per_ms, dtype=np.int16)
    by_source: dict[str, list[Piece]] = defaultdict(list)
    for piece in time_map.pieces:
        by_source[piece.source].append(piece)
    fade = _fade(FADE_MS * per_ms)
    for name, pieces in by_source.items():
        ranges = [(p.source_start_ms, p.source_start_ms + p.length_ms) for p in pieces]
        cuts = cut_regions(open_source(name), ranges, rate)
        for piece, rng in zip(pieces, ranges, strict=True):
            audio = cuts[rng].astype(np.float32)
            n = min(len(fade), len(audio) // 2)
            audio[:n] *= fade[:n]
            audio[len(audio) - n :] *= fade[:n][::-1]
            at = piece.clip_start_ms * per_ms
            pcm[at : at + len(audio)] = audio.astype(np.int16)
    return pcm


def _fade(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32) if n else np.ones(0)


def encode_mp3(pcm: np.ndarray, rate: int = DEFAULT_CLIP_RATE, bitrate: int = 64_000) -> bytes:
    """Mono int16 samples as an MP3 with a LAME header, so decoders trim the encoder delay."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def encode_audio(pcm: np.ndarray, rate: int, kind: str) -> bytes:
    """Mono int16 samples as `wav`, `flac`, `mp3` or `ogg` (Vorbis) bytes."""
    if kind == "mp3":
        return encode_mp3(pcm, rate)
    if kind == "wav":
        import wave

        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.astype("<i2").tobytes())
        return buf.getvalue()
    if kind == "flac":  # libsndfile: about 4x PyAV's per-clip cost on short clips
        import soundfile

        buf = io.BytesIO()
        soundfile.write(buf, pcm.astype(np.int16), rate, format="FLAC", subtype="PCM_16")
        return buf.getvalue()
    if kind == "ogg":
        return _ogg_vorbis(pcm, rate)
    raise InvalidParameterError(f"cannot encode '{kind}': use wav, flac, mp3 or ogg")


def _ogg_vorbis(pcm: np.ndarray, rate: int) -> bytes:
    """Ogg Vorbis (VoxPopuli's audio) through libsndfile (soundfile's wheel carries it):
    FFmpeg's own Vorbis encoder, the only one PyAV's build has, writes stereo only."""
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, pcm.astype(np.int16), rate, format="OGG", subtype="VORBIS")
    return buf.getvalue()


def build_clip(
    regions: Sequence[Region],
    open_source: Callable[[str], AudioSource],
    *,
    pause_ms: int = DEFAULT_PAUSE_MS,
    rate: int = DEFAULT_CLIP_RATE,
) -> tuple[bytes, TimeMap, np.ndarray]:
    """Cut, join and encode: the MP3 bytes, the time map, and the PCM (for peaks)."""
    time_map = plan_clip(regions, pause_ms)
    pcm = render_clip(time_map, open_source, rate)
    return encode_mp3(pcm, rate), time_map, pcm


def require_source(sources: Mapping[str, AudioSource]) -> Callable[[str], AudioSource]:
    """An `open_source` over a name -> path mapping, with a clear error for unknown names."""

    def open_source(name: str) -> AudioSource:
        try:
            return sources[name]
        except KeyError:
            raise UnreadableAudioError(
                name, "region names a source file that was not given"
            ) from None

    return open_source

"""One decoding pass per file: VAD pre-segments and multi-zoom peaks together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audio_pipeline.decode import AudioInfo, AudioSource, ProgressCallback
from audio_pipeline.decode_pipe import open_mono
from audio_pipeline.errors import TooLongAudioError
from audio_pipeline.peaks import DEFAULT_ZOOM, DEFAULT_ZOOMS, Peaks, PeaksBuilder
from audio_pipeline.segments import Span
from audio_pipeline.vad import VadParams, make_detector

ANALYSIS_RATE = 16_000


@dataclass(frozen=True)
class Analysis:
    """What the exchange oracle needs of one source file."""

    info: AudioInfo
    duration_s: float
    segments: list[Span]
    peaks: dict[int, Peaks]

    def to_json(self, zoom: int = DEFAULT_ZOOM) -> dict[str, Any]:
        return {
            "file": self.info.source,
            "duration_s": round(self.duration_s, 6),
            "sample_rate": self.info.sample_rate,
            "channels": self.info.channels,
            "codec": self.info.codec,
            "segments": [{"start": s.start, "end": s.end} for s in self.segments],
            "peaks": self.peaks[zoom].to_audiowaveform(),
        }


def analyze(
    source: AudioSource,
    *,
    vad: VadParams | None = None,
    zooms: Sequence[int] = DEFAULT_ZOOMS,
    bits: int = 8,
    progress: ProgressCallback | None = None,
    max_duration_s: float | None = None,
    pipe: bool = True,
) -> Analysis:
    """Decode once at 16 kHz mono and feed the VAD and the peaks builder from the same blocks.
    With `max_duration_s`, audio longer than that is refused (TooLongAudioError) as soon as
    its header or its decoding shows it, so decoding time is bounded too. A file on disk is
    decoded by an ffmpeg child process when it is long enough to pay for one (`pipe=False`:
    always in this process, through PyAV)."""
    detector = make_detector(vad, ANALYSIS_RATE)
    builder = PeaksBuilder(ANALYSIS_RATE, zooms, bits)
    with open_mono(source, ANALYSIS_RATE, progress=progress, pipe=pipe) as reader:
        declared = reader.info.declared_duration_s
        if max_duration_s is not None and declared and declared > max_duration_s:
            raise TooLongAudioError(
                str(source), f"declares {declared / 3600:.1f} h, over {max_duration_s / 3600:g} h"
            )
        limit = None if max_duration_s is None else int(max_duration_s * ANALYSIS_RATE)
        hours = 0.0 if max_duration_s is None else max_duration_s / 3600
        samples = 0
        for block in reader:
            samples += len(block)
            if limit is not None and samples > limit:
                raise TooLongAudioError(str(source), f"decodes past {hours:g} h")
            detector.feed(block)
            builder.feed(block)
        return Analysis(reader.info, reader.duration_s, detector.finish(), builder.finish())

"""Audio domain code shared by both oracles: pure functions over arrays and dataclasses.

No chains, HTTP or databases here: callers do the I/O and hand us files or bytes.
"""

from audio_pipeline.analyze import ANALYSIS_RATE, Analysis, analyze
from audio_pipeline.clips import Region, TimeMap, build_clip, encode_mp3, plan_clip
from audio_pipeline.decode import AudioInfo, PcmReader, decode, probe
from audio_pipeline.errors import (
    AudioError,
    CorruptAudioError,
    EmptyAudioError,
    InvalidParameterError,
    TruncatedAudioError,
    UnreadableAudioError,
)
from audio_pipeline.peaks import DEFAULT_ZOOMS, Peaks, PeaksBuilder, compute_peaks
from audio_pipeline.segments import Segment, Span, read_generic_tsv, write_generic_tsv
from audio_pipeline.vad import VadParams, VoiceActivityDetector, detect_speech

__all__ = [
    "ANALYSIS_RATE",
    "DEFAULT_ZOOMS",
    "Analysis",
    "AudioError",
    "AudioInfo",
    "CorruptAudioError",
    "EmptyAudioError",
    "InvalidParameterError",
    "PcmReader",
    "Peaks",
    "PeaksBuilder",
    "Region",
    "Segment",
    "Span",
    "TimeMap",
    "TruncatedAudioError",
    "UnreadableAudioError",
    "VadParams",
    "VoiceActivityDetector",
    "analyze",
    "build_clip",
    "compute_peaks",
    "decode",
    "detect_speech",
    "encode_mp3",
    "plan_clip",
    "probe",
    "read_generic_tsv",
    "write_generic_tsv",
]

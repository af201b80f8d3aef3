"""Typed errors for audio input: every message names the input and the cause."""

from __future__ import annotations


class AudioError(Exception):
    """A problem with one audio input; `source` names it, `reason` says what is wrong."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class UnreadableAudioError(AudioError):
    """Missing, not audio, no audio stream, or a codec we cannot decode."""


class EmptyAudioError(AudioError):
    """The input holds no audio samples at all."""


class CorruptAudioError(AudioError):
    """Decoding failed part-way: damaged packets or invalid data."""


class TruncatedAudioError(CorruptAudioError):
    """The stream ends well before the duration its container declares."""


class TooLongAudioError(AudioError):
    """Audio past the length the caller accepts (it may say so in its header, or only as it
    decodes: a small file can hold hours)."""


class InvalidParameterError(ValueError):
    """A parameter outside the range the algorithm supports."""

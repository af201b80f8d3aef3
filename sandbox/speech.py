"""Speech with known words and known timing, synthesised by espeak-ng: test and demo audio."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from audio_pipeline import decode
from audio_pipeline.segments import Span

VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+f2")
# Samples quieter than this (int16) count as silence when finding where speech really is.
_EDGE_LEVEL = 200


class SpeechSynthesisError(RuntimeError):
    pass


@dataclass(frozen=True)
class Utterance:
    text: str
    voice: str = "en-us"


@dataclass
class SpeechTrack:
    """Mono int16 audio and, for each utterance, the span where its sound really is."""

    pcm: np.ndarray
    rate: int
    spans: list[Span]
    texts: list[str]
    voices: list[str]

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.rate


def synthesize(text: str, voice: str = "en-us", rate: int = 16_000, wpm: int = 165) -> np.ndarray:
    """One utterance as int16 mono at `rate` (espeak-ng speaks at 22.05 kHz; we resample)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechSynthesisError("espeak-ng is not installed (make install adds it)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        proc = subprocess.run(
            [exe, "-v", voice, "-s", str(wpm), "-w", str(wav), text],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0 or not wav.exists():
            raise SpeechSynthesisError(f"espeak-ng failed for voice {voice}: {proc.stderr.strip()}")
        return decode(wav, rate=rate)


def _sound_edges(pcm: np.ndarray) -> tuple[int, int]:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > _EDGE_LEVEL)
    if not len(loud):
        return 0, 0
    return int(loud[0]), int(loud[-1]) + 1


def compose(
    utterances: Sequence[Utterance],
    pauses_s: Sequence[float] | float = 1.5,
    *,
    lead_s: float = 1.0,
    tail_s: float = 1.0,
    rate: int = 16_000,
) -> SpeechTrack:
    """Utterances separated by silences of known length; spans are measured, not guessed."""
    gaps = (
        [pauses_s] * (len(utterances) - 1) if isinstance(pauses_s, (int, float)) else list(pauses_s)
    )
    if len(gaps) != max(0, len(utterances) - 1):
        raise ValueError("need one pause between each pair of utterances")
    parts = [np.zeros(int(lead_s * rate), dtype=np.int16)]
    spans: list[Span] = []
    cursor = len(parts[0])
    for i, utt in enumerate(utterances):
        audio = synthesize(utt.text, utt.voice, rate)
        a, b = _sound_edges(audio)
        audio = audio[a:b]
        spans.append(Span(cursor / rate, (cursor + len(audio)) / rate))
        parts.append(audio)
        cursor += len(audio)
        gap = gaps[i] if i < len(gaps) else tail_s
        parts.append(np.zeros(int(gap * rate), dtype=np.int16))
        cursor += int(gap * rate)
    return SpeechTrack(
        np.concatenate(parts),
        rate,
        spans,
        [u.text for u in utterances],
        [u.voice for u in utterances],
    )


CODECS = {
    ".wav": ("wav", "pcm_s16le"),
    ".flac": ("flac", "flac"),
    ".mp3": ("mp3", "libmp3lame"),
    ".ogg": ("ogg", "vorbis"),
    ".opus": ("ogg", "libopus"),
    ".m4a": ("ipod", "aac"),
}


def write_audio(
    path: Path, pcm: np.ndarray, rate: int, *, out_rate: int | None = None, channels: int = 1
) -> Path:
    """Encode mono int16 PCM to the format named by the file's suffix, optionally upmixed."""
    fmt, codec = CODECS[path.suffix.lower()]
    out_rate = out_rate or rate
    if codec == "vorbis":
        channels = 2  # FFmpeg's own Vorbis encoder writes stereo only
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=out_rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=out_rate)
        for i in range(0, max(len(pcm), 1), rate):
            chunk = pcm[i : i + rate]
            data = np.repeat(chunk, 2) if channels == 2 else chunk
            frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout=layout)
            frame.sample_rate = rate
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    container.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path

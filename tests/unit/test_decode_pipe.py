"""The analysis's decoder: an ffmpeg child process with PcmReader's contract. The same
samples as in-process decoding (to the resampler's rounding), the same typed errors, and no
child left behind."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from audio_pipeline import (
    CorruptAudioError,
    TruncatedAudioError,
    UnreadableAudioError,
    analyze,
    decode,
    decode_pipe,
)
from audio_pipeline.decode import PcmReader
from audio_pipeline.decode_pipe import PipedPcmReader, open_mono
from sandbox.speech import SpeechTrack, write_audio
from tests.unit.test_decode import FORMATS, _make


def _piped(path: Path, **kwargs: object) -> np.ndarray:
    with PipedPcmReader(path, **kwargs) as reader:  # type: ignore[arg-type]
        return np.concatenate(list(reader))


@pytest.mark.parametrize(("suffix", "rate", "channels", "codec"), FORMATS)
def test_every_format_decodes_as_in_process(
    speech: SpeechTrack, tmp_path: Path, suffix: str, rate: int, channels: int, codec: str
) -> None:
    path = write_audio(
        tmp_path / f"s{suffix}", speech.pcm, speech.rate, out_rate=rate, channels=channels
    )
    piped, in_process = _piped(path), decode(path)
    assert piped.dtype == np.int16 and piped.ndim == 1
    assert abs(len(piped) - len(in_process)) <= 16  # a millisecond
    n = min(len(piped), len(in_process))
    a, b = piped[:n].astype(np.float64), in_process[:n].astype(np.float64)
    # The channels are averaged in both; only the resampling filters differ.
    assert np.corrcoef(a, b)[0, 1] > 0.99
    assert abs(np.sqrt(np.mean(a**2)) / np.sqrt(np.mean(b**2)) - 1) < 0.02


def test_the_analysis_finds_the_same_segments_either_way(
    speech: SpeechTrack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_audio(tmp_path / "s.mp3", speech.pcm, speech.rate, out_rate=44_100, channels=2)
    with open_mono(path, 16_000) as reader:
        assert isinstance(reader, PcmReader)  # short: no child
    monkeypatch.setattr(decode_pipe, "PIPE_FROM_S", 0.0)
    with open_mono(path, 16_000) as reader:
        assert isinstance(reader, PipedPcmReader)
    piped, in_process = analyze(path), analyze(path, pipe=False)
    assert piped.info == in_process.info
    assert abs(piped.duration_s - in_process.duration_s) < 0.001
    assert len(piped.segments) == len(in_process.segments) == len(speech.spans)
    for x, y in zip(piped.segments, in_process.segments, strict=True):
        assert abs(x.start - y.start) <= 0.03 and abs(x.end - y.end) <= 0.03
    # A file object has no path to hand a child: it is decoded in-process.
    assert analyze(io.BytesIO(path.read_bytes())).segments == in_process.segments


def test_a_truncated_mp3_is_reported(speech: SpeechTrack, tmp_path: Path) -> None:
    data = write_audio(tmp_path / "full.mp3", speech.pcm, speech.rate).read_bytes()
    with pytest.raises(TruncatedAudioError, match=r"half.mp3: audio stops at .* declares"):
        _piped(_make(tmp_path, "half.mp3", data[: len(data) // 2]))


def test_corrupt_packets_mid_stream_are_reported(speech: SpeechTrack, tmp_path: Path) -> None:
    data = write_audio(tmp_path / "full.m4a", speech.pcm, speech.rate).read_bytes()
    third = len(data) // 3
    damaged = data[:third] + np.random.default_rng(9).bytes(5_000) + data[third + 5_000 :]
    path = _make(tmp_path, "bad.m4a", damaged)
    with pytest.raises(CorruptAudioError, match=r"bad.m4a: corrupt audio data near"):
        _piped(path)
    with PipedPcmReader(path, strict=False) as reader:  # lenient: decoded, damage listed
        assert sum(len(b) for b in reader) > 0
        assert reader.damage and all("corrupt audio data near" in d for d in reader.damage)


def test_what_is_not_audio_fails_before_any_child_starts(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudioError, match="notes.txt"):
        PipedPcmReader(_make(tmp_path, "notes.txt", b"just some words\n" * 50))


def test_stopping_early_ends_the_child(speech: SpeechTrack, tmp_path: Path) -> None:
    long = np.tile(speech.pcm, 20)
    path = write_audio(tmp_path / "long.flac", long, speech.rate)
    positions: list[float] = []
    with PipedPcmReader(path, block_s=1.0, progress=positions.append) as reader:
        for _ in zip(range(3), reader, strict=False):
            pass
        child = reader._child
        assert child is not None and child.poll() is None  # still decoding
    assert child.returncode is not None  # killed and reaped by close()
    assert positions == sorted(positions) and 2.9 < positions[-1] < 4.6

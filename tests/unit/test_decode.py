"""Decoding every common format, in blocks, and a clear typed error for every bad input."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from audio_pipeline import (
    AudioError,
    CorruptAudioError,
    EmptyAudioError,
    InvalidParameterError,
    PcmReader,
    TruncatedAudioError,
    UnreadableAudioError,
    decode,
    probe,
)
from sandbox.speech import SpeechTrack, write_audio

FORMATS = [
    # suffix, source rate, channels, codec as reported
    (".wav", 16_000, 1, "pcm_s16le"),
    (".mp3", 44_100, 2, "mp3float"),
    (".flac", 22_050, 1, "flac"),
    (".ogg", 32_000, 2, "vorbis"),
    (".opus", 48_000, 1, "opus"),
    (".m4a", 44_100, 2, "aac"),
]


@pytest.mark.parametrize(("suffix", "rate", "channels", "codec"), FORMATS)
def test_every_common_format_decodes_to_16k_mono(
    speech: SpeechTrack, tmp_path: Path, suffix: str, rate: int, channels: int, codec: str
) -> None:
    path = write_audio(
        tmp_path / f"s{suffix}", speech.pcm, speech.rate, out_rate=rate, channels=channels
    )
    info = probe(path)
    assert (info.sample_rate, info.channels) == (rate, channels)
    assert info.codec.startswith(codec[:3])
    pcm = decode(path)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    # Lossy codecs add encoder delay and padding of a few tens of ms at most.
    assert abs(len(pcm) / 16_000 - speech.duration_s) < 0.1
    # The content survives: loud where the speech is, quiet in the lead-in.
    lead = np.abs(pcm[: int(0.8 * 16_000)].astype(np.int32)).mean()
    first = speech.spans[0]
    voiced = np.abs(
        pcm[int(first.start * 16_000) : int(first.end * 16_000)].astype(np.int32)
    ).mean()
    assert voiced > 20 * max(lead, 1)


def test_stereo_output_keeps_both_channels(speech: SpeechTrack, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "st.flac", speech.pcm, speech.rate, channels=2)
    pcm = decode(path, rate=8_000, channels=2)
    assert pcm.shape[1] == 2
    np.testing.assert_array_equal(pcm[:, 0], pcm[:, 1])


def test_blocks_stay_small_and_add_up_to_the_whole(speech: SpeechTrack, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "s.wav", speech.pcm, speech.rate)
    with PcmReader(path, block_s=0.5) as reader:
        sizes = [len(block) for block in reader]
    # Half a block is batched at a time, so no block exceeds 1.5 blocks plus one codec frame.
    assert max(sizes) <= 1.5 * 0.5 * 16_000 + 4_096
    assert sum(sizes) == reader.samples == len(speech.pcm)
    assert reader.duration_s == pytest.approx(speech.duration_s)


def test_progress_reports_growing_positions(speech: SpeechTrack, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "s.wav", speech.pcm, speech.rate)
    seen: list[float] = []
    with PcmReader(path, block_s=1.0, progress=seen.append) as reader:
        for _ in reader:
            pass
    assert seen == sorted(seen) and len(seen) >= 10
    assert seen[-1] == pytest.approx(speech.duration_s)


def test_file_objects_decode_like_paths(speech: SpeechTrack, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "s.flac", speech.pcm, speech.rate)
    np.testing.assert_array_equal(decode(io.BytesIO(path.read_bytes())), decode(path))


def _make(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _png(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    with av.open(str(path), "w", format="image2") as c:
        stream = c.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 8, 8, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), dtype=np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            c.mux(packet)
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudioError, match="no such file"):
        decode(tmp_path / "nope.wav")


def test_directory_is_not_audio(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudioError, match="not a regular file"):
        decode(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(EmptyAudioError, match=r"empty \(0 bytes\)"):
        decode(_make(tmp_path, "empty.mp3", b""))


def test_text_file_is_not_audio(tmp_path: Path) -> None:
    path = _make(tmp_path, "notes.wav", b"these are meeting notes, not audio\n" * 50)
    with pytest.raises(UnreadableAudioError, match="notes.wav: not a readable audio file"):
        decode(path)


def test_random_bytes_are_not_audio(tmp_path: Path) -> None:
    path = _make(tmp_path, "noise.bin", np.random.default_rng(3).bytes(20_000))
    with pytest.raises(AudioError, match="noise.bin"):
        decode(path)


def test_an_image_has_no_audio_stream(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudioError, match="no audio stream"):
        decode(_png(tmp_path))


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
    with pytest.raises(EmptyAudioError, match="zero.wav: contains no audio samples"):
        decode(path)


def test_header_only_file(speech: SpeechTrack, tmp_path: Path) -> None:
    data = write_audio(tmp_path / "full.flac", speech.pcm, speech.rate).read_bytes()
    with pytest.raises(AudioError, match="head.flac"):
        decode(_make(tmp_path, "head.flac", data[:60]))


def test_truncated_mp3_is_reported(speech: SpeechTrack, tmp_path: Path) -> None:
    data = write_audio(tmp_path / "full.mp3", speech.pcm, speech.rate).read_bytes()
    with pytest.raises(TruncatedAudioError, match=r"half.mp3: audio stops at .* declares"):
        decode(_make(tmp_path, "half.mp3", data[: len(data) // 2]))


def test_truncated_ogg_with_garbage_is_reported(speech: SpeechTrack, tmp_path: Path) -> None:
    data = write_audio(tmp_path / "full.ogg", speech.pcm, speech.rate).read_bytes()
    third = len(data) // 3
    damaged = data[:third] + np.random.default_rng(5).bytes(4_000) + data[third + 4_000 :]
    with pytest.raises(CorruptAudioError, match="bad.ogg"):
        decode(_make(tmp_path, "bad.ogg", damaged))


def test_corrupt_packets_mid_stream_are_reported(speech: SpeechTrack, tmp_path: Path) -> None:
    data = write_audio(tmp_path / "full.m4a", speech.pcm, speech.rate).read_bytes()
    third = len(data) // 3
    damaged = data[:third] + np.random.default_rng(9).bytes(5_000) + data[third + 5_000 :]
    with pytest.raises(CorruptAudioError, match=r"bad.m4a: corrupt audio data near"):
        decode(_make(tmp_path, "bad.m4a", damaged))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "sample rate 0"),
        ({"rate": 10_000_000}, "sample rate"),
        ({"channels": 0}, "channel count 0"),
        ({"channels": 64}, "channel count 64"),
    ],
)
def test_absurd_decode_parameters(
    speech: SpeechTrack, tmp_path: Path, kwargs: dict[str, int], message: str
) -> None:
    path = write_audio(tmp_path / "s.wav", speech.pcm, speech.rate)
    with pytest.raises(InvalidParameterError, match=message):
        decode(path, **kwargs)

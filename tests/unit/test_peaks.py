"""Waveform peaks: exact min/max per pixel at every zoom, in audiowaveform's format."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from audio_pipeline import (
    InvalidParameterError,
    Peaks,
    PeaksBuilder,
    analyze,
    compute_peaks,
)
from audio_pipeline.decode_pipe import open_mono
from sandbox.speech import SpeechTrack, write_audio


def expected_pairs(pcm: np.ndarray, spp: int) -> np.ndarray:
    out = []
    for i in range(0, len(pcm), spp):
        chunk = pcm[i : i + spp]
        out.extend([chunk.min(), chunk.max()])
    return np.asarray(out, dtype=np.int16)


@pytest.mark.parametrize("bits", [8, 16])
def test_peaks_equal_numpy_min_max_of_the_decoded_signal(
    speech: SpeechTrack, tmp_path: Path, bits: int
) -> None:
    path = write_audio(tmp_path / "s.mp3", speech.pcm, speech.rate, out_rate=44_100)
    with open_mono(path, 16_000) as reader:  # the reader the analysis takes for this file
        pcm = np.concatenate(list(reader))
    result = analyze(path, zooms=(20, 100, 500, 333), bits=bits)
    for zoom, peaks in result.peaks.items():
        spp = round(16_000 / zoom)
        assert peaks.samples_per_pixel == spp
        assert peaks.length == math.ceil(len(pcm) / spp)
        expected = expected_pairs(pcm, spp)
        if bits == 8:
            expected = (expected.astype(np.int32) // 256).astype(np.int8)
        np.testing.assert_array_equal(peaks.data, expected)
        doc = peaks.to_audiowaveform()
        assert doc["version"] == 2 and doc["channels"] == 1 and doc["bits"] == bits
        assert doc["sample_rate"] == 16_000 and len(doc["data"]) == 2 * doc["length"]
        assert all(lo <= hi for lo, hi in zip(doc["data"][::2], doc["data"][1::2], strict=True))


def test_eight_bit_peaks_span_the_full_range() -> None:
    pcm = np.array([-32768, 32767, 0, 0], dtype=np.int16)
    peaks = compute_peaks(pcm, 16_000, zooms=[8_000], bits=8)[8_000]
    assert peaks.data.tolist() == [-128, 127, 0, 0]


def test_blocks_of_any_size_give_the_same_peaks(speech: SpeechTrack) -> None:
    whole = compute_peaks(speech.pcm, speech.rate)
    builder = PeaksBuilder(speech.rate)
    rng = np.random.default_rng(2)
    i = 0
    while i < len(speech.pcm):
        n = int(rng.integers(1, 5_000))
        builder.feed(speech.pcm[i : i + n])
        i += n
    for zoom, peaks in builder.finish().items():
        np.testing.assert_array_equal(peaks.data, whole[zoom].data)


def test_streamed_json_equals_the_document(speech: SpeechTrack) -> None:
    peaks = compute_peaks(speech.pcm, speech.rate, zooms=[100])[100]
    buf = io.StringIO()
    peaks.write_json(buf)
    parsed = json.loads(buf.getvalue())
    assert parsed == peaks.to_audiowaveform()
    back = Peaks.from_audiowaveform(parsed)
    np.testing.assert_array_equal(back.data, peaks.data)


@pytest.mark.parametrize(("zooms", "bits"), [((20,), 12), ((), 8), ((0,), 8), ((20_000,), 8)])
def test_absurd_peak_parameters_are_refused(zooms: tuple[int, ...], bits: int) -> None:
    with pytest.raises(InvalidParameterError):
        PeaksBuilder(16_000, zooms, bits)

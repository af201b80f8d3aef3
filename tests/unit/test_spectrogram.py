"""Spectrogram tiles: a tone lands on its frequency's row, silence stays dark, tiles cover
the audio exactly and are cut at the tile width."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.spectrogram import ROWS, TILE_PX, layout, spectrogram_tiles

RATE = 16_000


def _tiles(pcm: np.ndarray) -> list[np.ndarray]:
    return [np.array(Image.open(io.BytesIO(png))) for _, png in spectrogram_tiles(pcm, RATE)]


def test_a_tone_is_bright_on_its_row_and_silence_is_dark() -> None:
    t = np.arange(RATE * 4) / RATE
    tone = (np.sin(2 * np.pi * 3000 * t) * 8000).astype(np.int16)
    pcm = np.concatenate((np.zeros(RATE * 2, np.int16), tone))
    (tile,) = _tiles(pcm)
    assert tile.shape == (ROWS, 600)
    row = ROWS - 1 - int(3000 / (RATE / 2) * ROWS)  # 0 Hz is the bottom row
    assert abs(int(tile[:, 300:].mean(axis=1).argmax()) - row) <= 1
    assert tile[:, :190].max() == 0  # digital silence: the darkest colour
    assert tile[row, 300:].min() > 200


def test_tiles_cover_the_audio_and_only_the_last_is_narrower() -> None:
    pcm = np.random.default_rng(1).normal(0, 2000, RATE * 25).astype(np.int16)
    tiles = _tiles(pcm)
    spec = layout(len(pcm), RATE)
    assert len(tiles) == spec.tiles == 3
    assert [t.shape[1] for t in tiles] == [TILE_PX, TILE_PX, 2500 - 2 * TILE_PX]
    assert spec.max_hz == 8000


def test_audio_the_tiles_cannot_hold_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="divisible by 100"):
        list(spectrogram_tiles(np.zeros(1000, np.int16), 22_050))
    with pytest.raises(InvalidParameterError, match="mono"):
        list(spectrogram_tiles(np.zeros((2, 1000), np.int16), RATE))

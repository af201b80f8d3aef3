"""Spectrogram tiles for the annotator's page: computed once by the oracle, like the peaks,
so the browser never decodes or transforms audio.

The clip's 16 kHz mono audio goes through a short-time Fourier transform (25 ms Hann
windows, one column every 10 ms, so 100 columns a second, and a coarser level at 20 for
a zoomed-out view: LEVELS), power in dB relative to full
scale, mapped from -100..-20 dBFS onto 256 colours of a dark-to-bright palette, with the
frequency axis (0 to half the rate) on `rows` rows, low frequencies at the bottom. Tiles
are PNG images `tile_px` columns wide (the last one narrower): a two-hour clip is 704 of
them, about 20-40 KB each, and the page fetches only those it shows.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from audio_pipeline.errors import InvalidParameterError

COLUMNS_PER_S = 100
LEVELS = (20, 100)  # columns per second: zoomed out, and close up
TILE_PX = 1024
ROWS = 128
WINDOW_S = 0.025
FLOOR_DB, CEILING_DB = -100.0, -20.0


@dataclass(frozen=True)
class SpectrogramLayout:
    """What the page needs to place the tiles: columns per second, tile width, tile count,
    rows and the frequency at the top row."""

    columns_per_s: int
    tile_px: int
    tiles: int
    rows: int
    max_hz: int

    def to_dict(self) -> dict[str, int]:
        return {
            "columns_per_s": self.columns_per_s,
            "tile_px": self.tile_px,
            "tiles": self.tiles,
            "rows": self.rows,
            "max_hz": self.max_hz,
        }


def _palette() -> list[int]:
    """256 RGB colours from black through deep blue and magenta to pale yellow (a
    magma-like ramp, so soft sounds stay visible against silence)."""
    stops = np.array(
        [
            (0.0, 0, 0, 4),
            (0.25, 59, 15, 112),
            (0.5, 140, 41, 129),
            (0.75, 241, 96, 93),
            (1.0, 252, 253, 191),
        ]
    )
    x = np.linspace(0, 1, 256)
    rgb = [np.interp(x, stops[:, 0], stops[:, i]) for i in (1, 2, 3)]
    return [int(np.rint(v)) for triple in zip(*rgb, strict=True) for v in triple]


PALETTE = _palette()


def layout(
    samples: int,
    rate: int,
    rows: int = ROWS,
    tile_px: int = TILE_PX,
    columns_per_s: int = COLUMNS_PER_S,
) -> SpectrogramLayout:
    columns = max(1, -(-samples * columns_per_s // rate))
    return SpectrogramLayout(columns_per_s, tile_px, -(-columns // tile_px), rows, rate // 2)


def spectrogram_tiles(
    pcm: np.ndarray,
    rate: int,
    rows: int = ROWS,
    tile_px: int = TILE_PX,
    columns_per_s: int = COLUMNS_PER_S,
) -> Iterator[tuple[int, bytes]]:
    """(tile index, PNG bytes) for int16 mono `pcm`, one tile at a time (memory stays at
    one tile's transform, whatever the clip's length)."""
    if rate % columns_per_s:
        raise InvalidParameterError(
            f"spectrograms need a rate divisible by {columns_per_s}, not {rate}"
        )
    if pcm.ndim != 1:
        raise InvalidParameterError("spectrograms are made of mono audio")
    hop = rate // columns_per_s
    window = int(rate * WINDOW_S)
    n_fft = 1 << (window - 1).bit_length()
    hann = np.hanning(window).astype(np.float32)
    # Full-scale sine -> 0 dB: the window's sum squared, over the two-sided spectrum.
    scale = np.float32(4.0 / (hann.sum() ** 2 * 32768.0**2))
    bins = n_fft // 2 + 1
    if not 1 <= rows <= bins:
        raise InvalidParameterError(f"{rows} rows: a spectrogram at {rate} Hz has 1..{bins}")
    edges = np.linspace(0, bins, rows + 1).astype(int)
    spec = layout(len(pcm), rate, rows, tile_px, columns_per_s)
    padded = np.concatenate(
        (np.zeros(window // 2, np.int16), pcm.astype(np.int16), np.zeros(window, np.int16))
    )
    total = -(-len(pcm) // hop) or 1
    for tile in range(spec.tiles):
        first = tile * tile_px
        count = min(tile_px, total - first)
        starts = (first + np.arange(count)) * hop
        frames = padded[starts[:, None] + np.arange(window)].astype(np.float32) * hann
        power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2 * scale
        banded = np.maximum.reduceat(power, edges[:-1], axis=1)  # each row's loudest bin
        db = 10 * np.log10(np.maximum(banded, 1e-20))
        levels = np.clip((db - FLOOR_DB) / (CEILING_DB - FLOOR_DB) * 255, 0, 255)
        pixels = np.ascontiguousarray(levels.T[::-1], dtype=np.uint8)
        image = Image.frombytes("P", (count, rows), pixels.tobytes())
        image.putpalette(PALETTE)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False, compress_level=6)
        yield tile, out.getvalue()

"""Waveform peaks in BBC audiowaveform's JSON format (version 2), several zooms per pass.

Each pixel holds the min and max sample it covers; 16-bit peaks keep the int16 values,
8-bit peaks shift them right by 8 bits as audiowaveform does. The last pixel may cover
fewer samples than `samples_per_pixel`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from audio_pipeline.errors import InvalidParameterError

DEFAULT_ZOOMS = (20, 100, 500)  # pixels per second
DEFAULT_ZOOM = DEFAULT_ZOOMS[0]
_CHUNK = 65_536


@dataclass(frozen=True)
class Peaks:
    """One zoom level: interleaved [min0, max0, min1, max1, ...] for one channel."""

    sample_rate: int
    samples_per_pixel: int
    bits: int
    data: np.ndarray

    @property
    def length(self) -> int:
        return len(self.data) // 2

    @property
    def pixels_per_second(self) -> float:
        return self.sample_rate / self.samples_per_pixel

    def header(self) -> dict[str, int]:
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel,
            "bits": self.bits,
            "length": self.length,
        }

    def to_audiowaveform(self) -> dict[str, Any]:
        return {**self.header(), "data": self.data.tolist()}

    def write_json(self, fp: IO[str]) -> None:
        """Streams the JSON so a long file never becomes one huge Python list."""
        fp.write(json.dumps(self.header())[:-1] + ', "data": [')
        for i in range(0, len(self.data), _CHUNK):
            if i:
                fp.write(",")
            fp.write(",".join(map(str, self.data[i : i + _CHUNK].tolist())))
        fp.write("]}")

    @classmethod
    def from_audiowaveform(cls, doc: dict[str, Any]) -> Peaks:
        if doc.get("version") != 2 or doc.get("channels") != 1:
            raise ValueError("expected audiowaveform version 2 with one channel")
        bits = int(doc["bits"])
        data = np.asarray(doc["data"], dtype=np.int8 if bits == 8 else np.int16)
        if len(data) != 2 * int(doc["length"]):
            raise ValueError("audiowaveform data length does not match its 'length'")
        return cls(int(doc["sample_rate"]), int(doc["samples_per_pixel"]), bits, data)


def samples_per_pixel(rate: int, pixels_per_second: float) -> int:
    return max(1, round(rate / pixels_per_second))


class PeaksBuilder:
    """Feed int16 mono blocks; `finish()` returns one `Peaks` per zoom, keyed by px/s."""

    def __init__(self, rate: int, zooms: Sequence[int] = DEFAULT_ZOOMS, bits: int = 8) -> None:
        if bits not in (8, 16):
            raise InvalidParameterError(f"peaks must be 8 or 16 bit, not {bits}")
        if not zooms:
            raise InvalidParameterError("at least one zoom level is needed")
        for zoom in zooms:
            if not 1 <= zoom <= rate:
                raise InvalidParameterError(
                    f"zoom {zoom} px/s is outside 1..{rate} px/s for {rate} Hz audio"
                )
        self.rate = rate
        self.bits = bits
        self._levels = {z: _Level(samples_per_pixel(rate, z), bits) for z in dict.fromkeys(zooms)}

    def feed(self, block: np.ndarray) -> None:
        for level in self._levels.values():
            level.feed(block)

    def finish(self) -> dict[int, Peaks]:
        return {
            zoom: Peaks(self.rate, level.spp, self.bits, level.finish())
            for zoom, level in self._levels.items()
        }


class _Level:
    """One zoom: pairs are stored at their final width (int8 for 8 bit) as they are made."""

    def __init__(self, spp: int, bits: int) -> None:
        self.spp = spp
        self.dtype = np.int8 if bits == 8 else np.int16
        self._shift = 8 if bits == 8 else 0
        self._carry = np.zeros(0, dtype=np.int16)
        self._parts: list[np.ndarray] = []

    def _store(self, grid: np.ndarray) -> None:
        pair = np.empty((len(grid), 2), dtype=np.int16)
        np.min(grid, axis=1, out=pair[:, 0])
        np.max(grid, axis=1, out=pair[:, 1])
        if self._shift:
            np.right_shift(pair, self._shift, out=pair)
        self._parts.append(pair.reshape(-1).astype(self.dtype))

    def feed(self, block: np.ndarray) -> None:
        data = np.concatenate((self._carry, block)) if len(self._carry) else block
        whole = len(data) - len(data) % self.spp
        if whole:
            self._store(data[:whole].reshape(-1, self.spp))
        self._carry = data[whole:].copy()

    def finish(self) -> np.ndarray:
        if len(self._carry):
            self._store(self._carry.reshape(1, -1))
            self._carry = self._carry[:0]
        if not self._parts:
            return np.zeros(0, dtype=self.dtype)
        data = np.concatenate(self._parts)
        self._parts = []
        return data


def compute_peaks(
    pcm: np.ndarray, rate: int, zooms: Iterable[int] = DEFAULT_ZOOMS, bits: int = 8
) -> dict[int, Peaks]:
    """Peaks of an in-memory int16 mono signal."""
    builder = PeaksBuilder(rate, tuple(zooms), bits)
    builder.feed(pcm)
    return builder.finish()

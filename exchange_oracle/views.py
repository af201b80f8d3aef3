"""What the annotator's page draws a clip from, computed once when the clip is packed:
waveform peaks at every zoom level and spectrogram tiles, stored beside the clip's MP3."""

from __future__ import annotations

import io

import numpy as np

from audio_pipeline import compute_peaks
from audio_pipeline.spectrogram import COLUMNS_PER_S, LEVELS, spectrogram_tiles
from oracle_core.storage import ObjectStorage


def peaks_key(folder: str, zoom: int) -> str:
    return f"{folder}-{zoom}.json"


def tile_key(folder: str, tile: int, level: int = COLUMNS_PER_S) -> str:
    """The close-up level keeps its first layout's keys; others sit in a folder each."""
    where = folder if level == COLUMNS_PER_S else f"{folder}/{level}"
    return f"{where}/{tile:05d}.png"


def clip_views(base: str, index: int) -> tuple[str, str]:
    """(peaks prefix, spectrogram folder) of a job's clip."""
    return f"{base}/peaks/{index:04d}", f"{base}/spectrogram/{index:04d}"


def practice_views(base: str) -> tuple[str, str]:
    """(peaks prefix, spectrogram folder) of the escrow's practice clip."""
    return f"{base}/practice/peaks", f"{base}/practice/spectrogram"


def publish_views(
    storage: ObjectStorage, bucket: str, views: tuple[str, str], pcm: np.ndarray, rate: int
) -> None:
    peaks_prefix, tiles = views
    for zoom, peaks in compute_peaks(pcm, rate).items():
        buf = io.StringIO()
        peaks.write_json(buf)
        storage.put(
            bucket, peaks_key(peaks_prefix, zoom), buf.getvalue().encode(), "application/json"
        )
    for level in LEVELS:
        for tile, png in spectrogram_tiles(pcm, rate, columns_per_s=level):
            storage.put(bucket, tile_key(tiles, tile, level), png, "image/png")

"""Long benchmark audio, made once and cached in benchmarks/out/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from sandbox.speech import Utterance, compose, write_audio

OUT = Path(__file__).parent / "out"
LINES = [
    "The birch canoe slid on the smooth planks",
    "Glue the sheet to the dark blue background",
    "It is easy to tell the depth of a well",
    "These days a chicken leg is a rare dish",
    "Rice is often served in round bowls",
    "The juice of lemons makes fine punch",
    "The box was thrown beside the parked truck",
    "The hogs were fed chopped corn and garbage",
    "Four hours of steady work faced us",
    "A large size in stockings is hard to sell",
]
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+f2"]


def hour_mp3() -> Path:
    """One hour of 44.1 kHz stereo MP3 speech with pauses (a few minutes tiled)."""
    path = OUT / "hour-44k-stereo.mp3"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    utterances = [Utterance(line, VOICES[i % len(VOICES)]) for i, line in enumerate(LINES)]
    track = compose(utterances, list(rng.uniform(0.4, 2.5, len(utterances) - 1)), tail_s=1.3)
    repeats = int(np.ceil(3600 / track.duration_s))
    pcm = np.tile(track.pcm, repeats)[: 3600 * track.rate]
    tmp = path.with_suffix(".tmp.mp3")
    write_audio(tmp, pcm, track.rate, out_rate=44_100, channels=2)
    tmp.rename(path)
    return path


def ten_hour_mp3() -> Path:
    """Ten one-hour files end to end, joined by stream copy (no re-encoding)."""
    path = OUT / "ten-hours-44k-stereo.mp3"
    if path.exists():
        return path
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (make install adds it)")
    tmp = path.with_suffix(".tmp.mp3")
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-y",
            "-stream_loop",
            "9",
            "-i",
            str(hour_mp3()),
            "-c",
            "copy",
            str(tmp),
        ],
        check=True,
    )
    tmp.rename(path)
    return path

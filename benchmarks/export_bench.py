"""Dataset exports of many hours: seconds and peak RSS per format, against a bare FFmpeg
transcode of the same audio into the format's codec and rate, measured in the same run
(goal: at most 1.3x; memory flat in the hours exported).

Source: the one-hour 44.1 kHz stereo MP3 of benchmarks.media, named as HOURS files (set
EXPORT_BENCH_HOURS, default 10); accepted segments of 6 s every 8 s, 12 speakers.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.media import hour_mp3

GOAL_RATIO = 1.3
# format -> (codec, rate) that its audio is written in
CODECS = {
    "commonvoice": ("libmp3lame", 48_000), "librispeech": ("flac", 16_000),
    "tedlium": ("pcm_s16le", 16_000), "voxceleb": ("pcm_s16le", 16_000),
    "vctk": ("flac", 48_000), "voxpopuli": ("libvorbis", 16_000),
    "librivox": ("flac", 16_000), "native": ("pcm_s16le", 16_000),
}  # fmt: skip
SEGMENT_MS, EVERY_MS = 6_000, 8_000
TEXT = "the birch canoe slid on the smooth planks"


def _child(fmt: str, hours: int, out: str) -> None:
    """In its own process, so that its peak RSS is its own."""
    from audio_pipeline.exports import ExportSegment, export

    source = hour_mp3()
    segments = [
        ExportSegment(f"part{h:02d}.mp3", t, t + SEGMENT_MS, "speech", TEXT,
                      {"speaker": f"speaker{(h * 450 + t // EVERY_MS) % 12}", "gender": "female",
                       "age": "thirties"})
        for h in range(hours) for t in range(0, 3_600_000 - SEGMENT_MS, EVERY_MS)
    ]  # fmt: skip
    export(fmt, segments, lambda name: source, Path(out))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # peak RSS, MB


def _timed(cmd: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, float(done.stdout.split()[-1])


def main() -> None:
    hours = int(os.environ.get("EXPORT_BENCH_HOURS", "10"))
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("ffmpeg is not installed (make install adds it): skipped")
        return
    source = hour_mp3()
    print(f"{'format':<12} {'export s':>9} {'ffmpeg s':>9} {'ratio':>6} {'peak RSS MB':>12}")
    for fmt, (codec, rate) in CODECS.items():
        with tempfile.TemporaryDirectory() as tmp:
            took, rss = _timed([sys.executable, "-m", "benchmarks.export_bench", fmt, str(hours),
                                f"{tmp}/out"])  # fmt: skip
            base = 0.0
            for _ in range(hours):  # the same hours of audio, transcoded whole
                t0 = time.perf_counter()
                subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(source), "-ac", "1",
                                "-ar", str(rate), "-c:a", codec, f"{tmp}/bare.{_ext(codec)}"],
                               check=True)  # fmt: skip
                base += time.perf_counter() - t0
        ratio = took / base
        flag = "" if ratio <= GOAL_RATIO else f"  (goal {GOAL_RATIO})"
        print(f"{fmt:<12} {took:9.1f} {base:9.1f} {ratio:6.2f} {rss:12.0f}{flag}", flush=True)
    print(json.dumps({"hours": hours, "segments_per_hour": 3_600_000 // EVERY_MS}))


def _ext(codec: str) -> str:
    return {"libmp3lame": "mp3", "flac": "flac", "pcm_s16le": "wav", "libvorbis": "ogg"}[codec]


if __name__ == "__main__":
    if len(sys.argv) == 4:
        _child(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    else:
        main()

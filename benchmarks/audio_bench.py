"""audio_pipeline speed and memory on long files.

Figures: throughput (multiples of real time) of decode, VAD, peaks and the whole
`analyze` on one hour of 44.1 kHz stereo MP3; `analyze` time against a bare
`ffmpeg -i FILE -f null -` of the same file in the same run (goal <= 1.3), with the
decoding child (the default for files on disk) and in-process (PyAV); and
peak RSS of `analyze` on ten hours (goal < 200 MB).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from audio_pipeline import ANALYSIS_RATE, PcmReader, PeaksBuilder, VoiceActivityDetector, analyze
from audio_pipeline.decode_pipe import PipedPcmReader
from benchmarks.media import OUT, hour_mp3, ten_hour_mp3

GOAL_RATIO = 1.3
GOAL_RSS_MB = 200


def _best_of(runs: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _decode_only(path: Any, piped: bool = True) -> int:
    reader = PipedPcmReader(path) if piped else PcmReader(path, rate=ANALYSIS_RATE)
    with reader:
        for _ in reader:
            pass
        return reader.samples


def _ffmpeg_null(path: Any) -> None:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is not installed (make install adds it)"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-nostdin", "-i", str(path), "-f", "null", "-"], check=True
    )


def _child_peak_rss_mb(path: Any) -> tuple[float, float]:
    """Peak RSS of one process running analyze, and of the ffmpeg child it decodes with,
    each as that process measures its own (getrusage SELF and CHILDREN)."""
    code = (
        "import sys, resource; from audio_pipeline import analyze; "
        "r = analyze(sys.argv[1]); "
        "print(len(r.segments), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    print(f"   ten-hour analyze: {out[0]} segments")
    return int(out[1]) / 1024, int(out[2]) / 1024


def main() -> None:
    print("-- preparing media (cached in benchmarks/out/)", flush=True)
    hour = hour_mp3()
    runs = 2
    samples = _decode_only(hour)
    seconds = samples / ANALYSIS_RATE
    pcm = np.concatenate(list(PcmReader(hour, rate=ANALYSIS_RATE)))
    blocks = [pcm[i : i + 80_000] for i in range(0, len(pcm), 80_000)]

    def vad() -> None:
        det = VoiceActivityDetector()
        for b in blocks:
            det.feed(b)
        det.finish()

    def peaks() -> None:
        builder = PeaksBuilder(ANALYSIS_RATE)
        for b in blocks:
            builder.feed(b)
        builder.finish()

    t_decode = _best_of(runs, lambda: _decode_only(hour))
    t_decode_av = _best_of(runs, lambda: _decode_only(hour, piped=False))
    t_vad = _best_of(runs, vad)
    t_peaks = _best_of(runs, peaks)
    # Interleave ffmpeg and analyze so machine noise hits both alike.
    t_ffmpeg, t_analyze, t_analyze_av = float("inf"), float("inf"), float("inf")
    for _ in range(runs):
        t_ffmpeg = min(t_ffmpeg, _best_of(1, lambda: _ffmpeg_null(hour)))
        t_analyze = min(t_analyze, _best_of(1, lambda: analyze(hour)))
        t_analyze_av = min(t_analyze_av, _best_of(1, lambda: analyze(hour, pipe=False)))
    ratio = t_analyze / t_ffmpeg

    print(f"one hour of 44.1 kHz stereo MP3 ({seconds / 60:.1f} min), best of {runs}:")
    rows = [
        ("decode to 16 kHz mono (child)", t_decode),
        ("decode in-process (PyAV)", t_decode_av),
        ("VAD (webrtcvad + noise gate)", t_vad),
        ("peaks at 20/100/500 px/s", t_peaks),
        ("analyze (decoding child)", t_analyze),
        ("analyze in-process (PyAV)", t_analyze_av),
        ("ffmpeg -f null (reference)", t_ffmpeg),
    ]
    for name, t in rows:
        print(f"   {name:<32} {t:7.2f} s   {seconds / t:8.0f}x real time")
    verdict = "meets" if ratio <= GOAL_RATIO else "MISSES"
    print(f"   analyze / ffmpeg decode ratio: {ratio:.2f} ({verdict} the goal of <= {GOAL_RATIO})")
    print(f"   in-process analyze / ffmpeg decode ratio: {t_analyze_av / t_ffmpeg:.2f}")

    print("-- ten-hour file", flush=True)
    ten = ten_hour_mp3()
    rss, decoder_rss = _child_peak_rss_mb(ten)
    verdict = "meets" if rss + decoder_rss < GOAL_RSS_MB else "MISSES"
    print(
        f"   analyze peak RSS on ten hours: {rss:.0f} MB, and {decoder_rss:.0f} MB in its ffmpeg "
        f"child: {rss + decoder_rss:.0f} MB ({verdict} the goal of < {GOAL_RSS_MB} MB for both)"
    )

    OUT.mkdir(exist_ok=True)
    (OUT / "audio.json").write_text(
        json.dumps(
            {
                "audio_seconds": seconds,
                "decode_s": t_decode,
                "decode_in_process_s": t_decode_av,
                "analyze_in_process_s": t_analyze_av,
                "vad_s": t_vad,
                "peaks_s": t_peaks,
                "analyze_s": t_analyze,
                "ffmpeg_null_s": t_ffmpeg,
                "ratio": ratio,
                "ten_hour_peak_rss_mb": rss,
                "ten_hour_decoder_peak_rss_mb": decoder_rss,
            },
            indent=2,
        )
    )

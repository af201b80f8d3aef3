"""`audio-oracles demo`: for now, the audio analysis on a freshly synthesised speech sample.

The full marketplace demo (chain, oracles, bot workers) replaces this once it lands.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from audio_pipeline import analyze


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the demo on embedded defaults")
    p.add_argument("--seed", type=int, default=7, help="which sentences and voices to use")
    p.set_defaults(handler=run)


SENTENCES = (
    "The quick brown fox jumps over the lazy dog",
    "Please call Stella and ask her to bring these things",
    "A rainbow is a division of white light into many beautiful colors",
    "She sells sea shells by the sea shore",
    "When the sunlight strikes raindrops in the air they act as a prism",
)


def run(args: argparse.Namespace) -> int:
    from sandbox.speech import VOICES, Utterance, compose, write_audio

    print("audio-oracles demo (audio analysis only: the full marketplace demo is not built yet)")
    n = len(SENTENCES)
    picks = [SENTENCES[(args.seed + i) % n] for i in range(3)]
    voices = [VOICES[(args.seed + i) % len(VOICES)] for i in range(3)]
    track = compose([Utterance(t, v) for t, v in zip(picks, voices, strict=True)], [1.2, 2.0])
    with tempfile.TemporaryDirectory() as tmp:
        path = write_audio(
            Path(tmp) / "demo.mp3", track.pcm, track.rate, out_rate=44_100, channels=2
        )
        started = time.perf_counter()
        result = analyze(path)
        took = time.perf_counter() - started
    print(
        f"synthesised {track.duration_s:.1f} s of speech (44.1 kHz stereo MP3), "
        f"analysed in {took * 1000:.0f} ms"
    )
    print(f"{'utterance':<60} {'true span (s)':>16} {'VAD segment (s)':>18}")
    for i, (text, span) in enumerate(zip(track.texts, track.spans, strict=True)):
        seg = result.segments[i] if i < len(result.segments) else None
        found = f"{seg.start:6.2f} - {seg.end:6.2f}" if seg else "-"
        print(f"{text[:58]:<60} {span.start:6.2f} - {span.end:6.2f}   {found:>16}")
    summary = {z: p.length for z, p in result.peaks.items()}
    print(f"peaks (audiowaveform v2), pixels per zoom: {json.dumps(summary)}")
    return 0

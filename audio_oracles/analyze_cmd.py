"""`audio-oracles analyze FILE`: VAD pre-segments and waveform peaks of one audio file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from audio_pipeline import AudioError, InvalidParameterError, VadParams, analyze
from audio_pipeline.analyze import Analysis
from audio_pipeline.peaks import DEFAULT_ZOOM, DEFAULT_ZOOMS
from audio_pipeline.vad import ENGINES

EXIT_BAD_INPUT = 2


def register(sub: Any) -> None:
    p = sub.add_parser("analyze", help="find speech segments and compute waveform peaks")
    p.add_argument("file", type=Path, help="audio file (WAV, MP3, FLAC, OGG/Opus, M4A/AAC, ...)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--peaks-out",
        type=Path,
        metavar="PATH",
        help="a .json path: write the default-zoom peaks there; otherwise a directory "
        "that receives peaks-<px per s>.json for every zoom",
    )
    defaults = VadParams()
    p.add_argument(
        "--aggressiveness",
        type=int,
        default=defaults.aggressiveness,
        metavar="N",
        help="webrtcvad aggressiveness 0-3 (default %(default)s)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=defaults.engine,
        help="pre-segments: webrtc (fast) or silero (silero-vad's ONNX model; needs the "
        "silero-vad and onnxruntime packages) (default %(default)s)",
    )
    p.add_argument(
        "--min-pause",
        type=float,
        default=defaults.min_pause_s,
        metavar="S",
        help="merge speech separated by less than S seconds (default %(default)s)",
    )
    p.add_argument(
        "--min-speech",
        type=float,
        default=defaults.min_speech_s,
        metavar="S",
        help="drop segments shorter than S seconds (default %(default)s)",
    )
    p.add_argument(
        "--max-segment",
        type=float,
        default=defaults.max_segment_s,
        metavar="S",
        help="split segments longer than S seconds (default %(default)s)",
    )
    p.add_argument(
        "--zooms",
        default=",".join(map(str, DEFAULT_ZOOMS)),
        metavar="LIST",
        help="peak zoom levels in pixels per second (default %(default)s)",
    )
    p.set_defaults(handler=run)


def _zooms(text: str) -> tuple[int, ...]:
    try:
        zooms = tuple(int(z) for z in text.split(",") if z.strip())
    except ValueError:
        raise InvalidParameterError(f"--zooms must be whole numbers, not '{text}'") from None
    if not zooms:
        raise InvalidParameterError("--zooms needs at least one level")
    return zooms


def run(args: argparse.Namespace) -> int:
    try:
        zooms = _zooms(args.zooms)
        params = VadParams(
            engine=args.engine,
            aggressiveness=args.aggressiveness,
            min_pause_s=args.min_pause,
            min_speech_s=args.min_speech,
            max_segment_s=args.max_segment,
        )
        params.validate()
        with _progress(args.file) as progress:
            result = analyze(args.file, vad=params, zooms=zooms, progress=progress)
        if args.peaks_out:
            _write_peaks(result, args.peaks_out, zooms)
    except (AudioError, InvalidParameterError, OSError) as exc:
        print(f"audio-oracles analyze: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        json.dump(
            result.to_json(zoom=zooms[0] if DEFAULT_ZOOM not in zooms else DEFAULT_ZOOM),
            sys.stdout,
            separators=(",", ":"),
        )
        sys.stdout.write("\n")
    else:
        _summary(result)
    return 0


def _write_peaks(result: Analysis, target: Path, zooms: tuple[int, ...]) -> None:
    if target.suffix == ".json":
        zoom = DEFAULT_ZOOM if DEFAULT_ZOOM in zooms else zooms[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w") as fp:
            result.peaks[zoom].write_json(fp)
        return
    target.mkdir(parents=True, exist_ok=True)
    for zoom, peaks in result.peaks.items():
        with (target / f"peaks-{zoom}.json").open("w") as fp:
            peaks.write_json(fp)


def _summary(result: Analysis) -> None:
    info = result.info
    speech = sum(s.end - s.start for s in result.segments)
    print(
        f"{info.source}: {result.duration_s:.2f} s, {info.codec} {info.sample_rate} Hz, "
        f"{info.channels} channel(s)"
    )
    share = speech / result.duration_s if result.duration_s else 0.0
    print(f"{len(result.segments)} speech segment(s), {speech:.2f} s of speech ({share:.0%})")
    for i, seg in enumerate(result.segments[:20], start=1):
        print(f"  {i:3d}  {seg.start:9.3f} - {seg.end:9.3f} s")
    if len(result.segments) > 20:
        print(f"  ... {len(result.segments) - 20} more (use --json for all)")
    levels = ", ".join(f"{z} px/s: {p.length} px" for z, p in result.peaks.items())
    print(f"peaks: {levels}")


class _progress:
    """A progress bar on stderr while decoding, only when stderr is a terminal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
            TimeRemainingColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._bar.start()
        task = self._bar.add_task(self.path.name, total=None)

        def update(done_s: float) -> None:
            self._bar.update(task, completed=done_s)

        try:
            from audio_pipeline import probe

            total = probe(self.path).declared_duration_s
            self._bar.update(task, total=total)
        except Exception:
            pass
        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

"""`audio-oracles export`: accepted annotations (a results archive's annotations.json or
annotations.tsv, or the archive itself) plus the source audio into a dataset layout."""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2


def register(sub: Any) -> None:
    from audio_pipeline.exports import EXPORTERS, PLACEHOLDERS

    epilog = "placeholders per format (README.txt in each export lists what it used):\n" + (
        "\n".join(f"  {name}: {text}" for name, text in PLACEHOLDERS.items())
    )
    p = sub.add_parser(
        "export",
        help="write accepted annotations as a speech dataset",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", required=True, choices=sorted(EXPORTERS), help="dataset layout")
    p.add_argument(
        "--annotations",
        required=True,
        type=Path,
        metavar="FILE",
        help="results.zip, annotations.json or annotations.tsv (source time)",
    )
    p.add_argument(
        "--audio", required=True, type=Path, metavar="DIR", help="folder of the source audio"
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument(
        "--language", default="en", help="the annotations' language (default en; a "
        "segment's locale attribute overrides it)",
    )  # fmt: skip
    p.add_argument(
        "--splits", default="0.8,0.1,0.1", metavar="TRAIN,DEV,TEST",
        help="shares of the audio per split, by speaker (default 0.8,0.1,0.1)",
    )  # fmt: skip
    p.set_defaults(handler=run)


def read_segments(path: Path) -> list[Any]:
    from audio_pipeline.exports import ExportSegment
    from audio_pipeline.segments import read_generic_tsv

    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            rows = json.loads(zf.read("annotations.json"))
        return [ExportSegment.from_row(r) for r in rows]
    if path.suffix == ".json":
        return [ExportSegment.from_row(r) for r in json.loads(path.read_text())]
    return [
        ExportSegment(
            s.filename,
            round(s.start * 1000),
            round((s.end if s.end is not None else s.start) * 1000),
            s.label,
            s.transcription,
            dict(s.attributes),
        )
        for s in read_generic_tsv(path.read_text())
    ]


def run(args: argparse.Namespace) -> int:
    from audio_pipeline import AudioError, InvalidParameterError
    from audio_pipeline.exports import ExportOptions, export
    from audio_pipeline.segments import TsvFormatError

    try:
        shares = [float(x) for x in args.splits.split(",")]
        if len(shares) != 3:
            raise ValueError("three shares")
        options = ExportOptions(
            args.language, dict(zip(("train", "dev", "test"), shares, strict=True))
        )
    except (ValueError, InvalidParameterError) as exc:
        print(f"error: --splits {args.splits}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    try:
        segments = read_segments(args.annotations)
    except (OSError, KeyError, ValueError, TsvFormatError, zipfile.BadZipFile) as exc:
        print(f"error: cannot read {args.annotations}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    missing = sorted({s.file for s in segments if not (args.audio / s.file).is_file()})
    if missing:
        print(f"error: not in {args.audio}: {', '.join(missing)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        done = export(args.format, segments, lambda name: args.audio / name, args.out, options)
    except (AudioError, InvalidParameterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{done.format}: {len(segments)} segments, {len(done.files)} files in {args.out}")
    return 0

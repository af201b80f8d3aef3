"""`audio-oracles` command line. Subcommands import their modules lazily so each starts fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from audio_oracles import (
    analyze_cmd,
    chain_cmd,
    db_cmd,
    demo_cmd,
    escrow_cmd,
    export_cmd,
    oracle_cmd,
    storage_cmd,
)

EXIT_USAGE = 2

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audio-oracles",
        description="HUMAN Protocol oracles for audio annotation, and their tools.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    analyze_cmd.register(sub)
    chain_cmd.register(sub)
    db_cmd.register(sub)
    escrow_cmd.register(sub)
    export_cmd.register(sub)
    oracle_cmd.register(sub)
    storage_cmd.register(sub)
    demo_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`audio-oracles storage up|down`: S3 on loopback for the sandbox (moto's server)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("storage", help="start or stop S3 on loopback (sandbox)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="up|down")
    for verb, handler in (("up", run_up), ("down", run_down)):
        v = verbs.add_parser(verb)
        v.add_argument("--port", type=int, default=9000)
        v.set_defaults(handler=handler)


def run_up(args: argparse.Namespace) -> int:
    from sandbox import storage

    url, started = storage.up(args.port)
    print(
        f"{'started' if started else 'already running'}: {url} "
        f"(access key '{storage.ACCESS_KEY}', secret '{storage.SECRET_KEY}')"
    )
    return 0


def run_down(args: argparse.Namespace) -> int:
    from sandbox import storage

    print("stopped" if storage.down(args.port) else f"nothing started on port {args.port}")
    return 0

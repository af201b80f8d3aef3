"""`audio-oracles escrow launch|status|notify`: the requester's commands."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("escrow", help="launch an escrow or look at one")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="launch|status|notify")
    launch = verbs.add_parser("launch", help="upload data and manifest, create, fund, set up")
    launch.add_argument("--manifest", type=Path, required=True, metavar="FILE")
    launch.add_argument(
        "--amount", required=True, metavar="HMT", help="HMT to fund the escrow with"
    )
    launch.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="upload DIR (media/, gt.tsv, regions.tsv) and point the manifest at it",
    )
    launch.set_defaults(handler=run_launch)
    status = verbs.add_parser("status", help="what the chain says about an escrow")
    status.add_argument("address")
    status.set_defaults(handler=run_status)
    notify = verbs.add_parser("notify", help="send escrow_created (again) to the exchange oracle")
    notify.add_argument("address")
    notify.set_defaults(handler=run_notify)


def _fail(verb: str, message: str) -> int:
    print(f"audio-oracles escrow {verb}: error: {message}", file=sys.stderr)
    return 2


def run_launch(args: argparse.Namespace) -> int:
    from audio_oracles.requester import LaunchError, RequesterSettings, launch, load_manifest
    from oracle_core.chain import ChainError
    from oracle_core.storage import StorageError

    try:
        amount = Decimal(args.amount)
    except InvalidOperation:
        return _fail("launch", f"--amount must be a number of HMT, not '{args.amount}'")
    try:
        settings = RequesterSettings()
        result = launch(
            settings,
            load_manifest(args.manifest),
            amount,
            args.data,
            progress=lambda msg: print(f"  {msg}", file=sys.stderr),
        )
    except (LaunchError, ChainError, StorageError, RuntimeError) as exc:
        return _fail("launch", str(exc))
    print(result.escrow_address)
    if not result.notified:
        print(
            f"warning: the exchange oracle was not told ({result.notify_error}); "
            f"retry with `audio-oracles escrow notify {result.escrow_address}`",
            file=sys.stderr,
        )
        return 1
    return 0


def run_status(args: argparse.Namespace) -> int:
    from oracle_core.chain import Chain, ChainError
    from oracle_core.config import OracleSettings

    settings = OracleSettings()
    try:
        state = Chain(settings.rpc_url).read_escrow(args.address)
    except ChainError as exc:
        return _fail("status", str(exc))
    hmt = Decimal(10) ** 18
    rows = [
        ("escrow", state.address),
        ("chain", str(state.chain_id)),
        ("status", state.status),
        ("funded", f"{Decimal(state.fund_amount) / hmt} HMT"),
        ("balance", f"{Decimal(state.balance) / hmt} HMT"),
        ("reserved", f"{Decimal(state.reserved_funds) / hmt} HMT"),
        ("remaining", f"{Decimal(state.remaining_funds) / hmt} HMT"),
        ("launcher", state.launcher),
        ("exchange oracle", state.exchange_oracle),
        ("recording oracle", state.recording_oracle),
        ("reputation oracle", state.reputation_oracle),
        ("manifest", state.manifest_url),
        ("intermediate results", state.intermediate_results_url or "-"),
        ("final results", state.final_results_url or "-"),
        ("final results hash", state.final_results_hash or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def run_notify(args: argparse.Namespace) -> int:
    from audio_oracles.requester import RequesterSettings, notify
    from oracle_core.chain import Chain, ChainError

    settings = RequesterSettings()
    try:
        chain = Chain(settings.rpc_url, settings.signing_key())
        state = chain.read_escrow(args.address)
    except (ChainError, RuntimeError) as exc:
        return _fail("notify", str(exc))
    error = notify(settings, chain, state.address, "escrow_created", state.exchange_oracle)
    if error:
        return _fail("notify", error)
    print("sent")
    return 0

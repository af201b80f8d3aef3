"""`audio-oracles chain up|down`: the local chain with HUMAN's real contracts (sandbox)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("chain", help="start or stop the local chain (hardhat, chain id 1338)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="up|down")
    up = verbs.add_parser("up", help="start a node, deploy HUMAN's contracts, fund test accounts")
    up.add_argument("--port", type=int, default=8545)
    up.set_defaults(handler=run_up)
    down = verbs.add_parser("down", help="stop the node `chain up` started on this port")
    down.add_argument("--port", type=int, default=8545)
    down.set_defaults(handler=run_down)


def run_up(args: argparse.Namespace) -> int:
    from sandbox import accounts
    from sandbox.chain import CONTRACTS, ChainStartError, up

    try:
        url, started = up(args.port)
    except ChainStartError as exc:
        print(f"audio-oracles chain up: error: {exc}", file=sys.stderr)
        return 1
    print(f"{'started' if started else 'already running'}: {url} (chain id 1338)")
    print(f"  HMToken        {CONTRACTS.hmt}")
    print(f"  Staking        {CONTRACTS.staking}")
    print(f"  EscrowFactory  {CONTRACTS.factory}")
    print(f"  KVStore        {CONTRACTS.kvstore}")
    roles = {
        "job launcher": accounts.JOB_LAUNCHER,
        "exchange oracle": accounts.EXCHANGE_ORACLE,
        "recording oracle": accounts.RECORDING_ORACLE,
        "reputation oracle": accounts.REPUTATION_ORACLE,
    }
    for role, index in roles.items():
        print(f"  {role:<17} account #{index} {accounts.account(index).address}")
    return 0


def run_down(args: argparse.Namespace) -> int:
    from sandbox.chain import stop_node

    stopped = stop_node(args.port)
    print("stopped" if stopped else f"no chain started by `chain up` on port {args.port}")
    return 0

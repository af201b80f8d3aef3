"""`audio-oracles oracle register|show`: an oracle's KVStore entries, written from its own key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from oracle_core.registration import MAX_FEE, ROLES


def register(sub: Any) -> None:
    p = sub.add_parser("oracle", help="publish or read an oracle's KVStore registration")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="register|show")
    reg = verbs.add_parser("register", help="publish url, webhook_url, role, fee, public_key")
    reg.add_argument("--url", required=True, help="the oracle's public base URL")
    reg.add_argument("--webhook-url", help="defaults to URL/webhook")
    reg.add_argument("--role", required=True, choices=ROLES)
    reg.add_argument("--fee", required=True, type=int, help=f"percent, 0..{MAX_FEE}")
    reg.add_argument("--public-key", type=Path, metavar="FILE", help="armored PGP public key")
    reg.set_defaults(handler=run_register)
    show = verbs.add_parser("show", help="what an address has published")
    show.add_argument("address")
    show.set_defaults(handler=run_show)


def run_register(args: argparse.Namespace) -> int:
    from oracle_core.chain import Chain, ChainError
    from oracle_core.config import OracleSettings
    from oracle_core.registration import Registration
    from oracle_core.registration import register as publish

    settings = OracleSettings()
    try:
        public_key = args.public_key.read_text() if args.public_key else ""
        chain = Chain(settings.rpc_url, settings.signing_key())
        publish(
            chain,
            Registration(
                url=args.url,
                webhook_url=args.webhook_url or f"{args.url.rstrip('/')}/webhook",
                role=args.role,
                fee=args.fee,
                public_key=public_key,
            ),
        )
    except (ValueError, OSError, ChainError, RuntimeError) as exc:
        print(f"audio-oracles oracle register: error: {exc}", file=sys.stderr)
        return 2
    print(f"registered {chain.address} as {args.role}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from oracle_core.chain import Chain, ChainError
    from oracle_core.config import OracleSettings
    from oracle_core.registration import registered

    try:
        found = registered(Chain(OracleSettings().rpc_url), args.address)
    except (ValueError, ChainError) as exc:
        print(f"audio-oracles oracle show: error: {exc}", file=sys.stderr)
        return 2
    if found is None:
        print(f"{args.address} has no oracle registration")
        return 1
    for key, value in found.entries().items():
        print(f"{key:<12} {value if key != 'public_key' else value.splitlines()[0] + ' ...'}")
    return 0

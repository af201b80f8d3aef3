"""`audio-oracles db upgrade|downgrade ORACLE`: run an oracle's migrations on DATABASE_URL."""

from __future__ import annotations

import argparse
from typing import Any

ORACLES = ("exchange_oracle", "recording_oracle")


def register(sub: Any) -> None:
    p = sub.add_parser("db", help="migrate an oracle's database (DATABASE_URL)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="upgrade|downgrade")
    for verb, default in (("upgrade", "head"), ("downgrade", "base")):
        v = verbs.add_parser(verb)
        v.add_argument("oracle", choices=ORACLES)
        v.add_argument("--revision", default=default)
        v.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from oracle_core import migrations
    from oracle_core.config import OracleSettings

    url = OracleSettings().database_url
    getattr(migrations, args.verb)(args.oracle, url, args.revision)
    print(f"{args.oracle}: {args.verb} to {args.revision} done on {url.split('@')[-1]}")
    return 0

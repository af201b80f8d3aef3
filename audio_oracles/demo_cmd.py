"""`audio-oracles demo`: the whole HUMAN flow on one machine, on embedded defaults (see
sandbox/demo.py): escrow -> jobs -> bot annotators -> validation with one rejection and
its redo -> results and payouts on chain -> cleanup. Writes demo-report.json/.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the whole marketplace locally, end to end")
    p.add_argument("--files", type=int, default=3, help="speech files in the escrow (default 3)")
    p.add_argument("--workers", type=int, default=4, help="bot annotators (default 4, min 2)")
    p.add_argument("--seed", type=int, default=7, help="which sentences and voices to use")
    p.add_argument(
        "--keep-running", action="store_true", help="leave everything up and print the URLs"
    )
    p.add_argument("--chain-port", type=int, default=8545, help="local chain (reused if up)")
    p.add_argument("--s3-port", type=int, default=9000, help="S3 on loopback (reused if up)")
    for name, what in (
        ("cvat", "the CVAT test double"),
        ("exchange", "the exchange oracle's API"),
        ("recording", "the recording oracle's API"),
        ("reputation", "the reputation oracle stand-in"),
    ):
        p.add_argument(
            f"--{name}-port", type=int, default=0, help=f"port of {what} (default: any free one)"
        )
    p.add_argument(
        "--timeout", type=float, default=300.0, help="seconds each stage may take (default 300)"
    )
    p.add_argument("--work-dir", type=Path, help="state folder (default .demo/ in the checkout)")
    p.add_argument("--report-dir", type=Path, help="where demo-report.* go (default: repo root)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sandbox.demo import DemoFailed, DemoOptions, run_demo
    from sandbox.procs import Stopped, stop_on_signals

    if args.files < 1 or args.workers < 2:
        print("error: need at least 1 file and 2 workers (one is sloppy)", file=sys.stderr)
        return 2
    opts = DemoOptions(
        files=args.files,
        workers=args.workers,
        seed=args.seed,
        keep_running=args.keep_running,
        chain_port=args.chain_port,
        s3_port=args.s3_port,
        cvat_port=args.cvat_port,
        exchange_port=args.exchange_port,
        recording_port=args.recording_port,
        reputation_port=args.reputation_port,
        timeout_s=args.timeout,
    )
    if args.work_dir:
        opts.work_dir = args.work_dir.resolve()
    if args.report_dir:
        opts.report_dir = args.report_dir.resolve()
    try:
        with stop_on_signals():  # SIGINT, SIGTERM, SIGHUP: stop everything it started
            report = run_demo(opts)
    except DemoFailed as exc:
        print(f"demo failed: {exc} (everything it started is stopped)", file=sys.stderr)
        return 1
    except Stopped as exc:
        print(f"{exc}: everything the demo started is stopped", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted: everything the demo started is stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print()
    print(f"{'worker':<44} {'accepted':>8} {'rejected':>8} {'mean WER':>9} {'paid HMT':>12}")
    for w in report["workers"]:
        wer = "-" if w["mean_wer"] is None else f"{w['mean_wer']:.3f}"
        print(f"{w['wallet']:<44} {w['accepted']:>8} {w['rejected']:>8} {wer:>9} "
              f"{w['paid_hmt']:>12}")  # fmt: skip
    print(f"escrow {report['escrow_address']}: {report['status']}")
    print(f"results {report['results_url'].split('?')[0]} sha256 {report['results_hash']}")
    t = report["timings_s"]
    print(f"escrow -> jobs {t['escrow_to_jobs']} s, total {t['total']} s")
    print(f"reports: {opts.report_dir / 'demo-report.json'}, demo-report.html")
    return 0

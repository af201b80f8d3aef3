"""`audio-oracles demo` at a small size on its embedded defaults (SQLite, Celery's
filesystem broker), checked against the chain rather than against its own report."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from oracle_core.chain import Chain
from oracle_core.storage import UrlPolicy, fetch_url
from sandbox import accounts
from tests.integration.conftest import CHAIN_PORT

pytestmark = pytest.mark.integration
WORKERS = 3


def test_the_demo_runs_the_whole_flow_and_its_report_matches_the_chain(
    fresh_chain: str, s3_url: str, tmp_path: Path
) -> None:
    chain = Chain(fresh_chain)
    wallets = [accounts.account(accounts.FIRST_WORKER + i).address for i in range(WORKERS)]
    before = {w: chain.hmt_balance(w) for w in wallets}
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "audio_oracles.cli", "demo", "--files", "2", "--workers",
         str(WORKERS), "--chain-port", str(CHAIN_PORT), "--s3-port", s3_url.rsplit(":", 1)[1],
         "--work-dir", str(tmp_path / "demo"), "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rejected" in done.stdout and "escrow Complete on chain" in done.stdout
    report = json.loads((tmp_path / "demo-report.json").read_text())
    assert set(report) >= {
        "escrow_address", "chain_id", "status", "audio_seconds", "jobs", "assignments",
        "payouts", "results_url", "results_hash", "timings_s",
    }  # fmt: skip
    assert "<svg" in (tmp_path / "demo-report.html").read_text()

    state = chain.read_escrow(report["escrow_address"])
    assert state.status == report["status"] == "Complete"
    archive = fetch_url(report["results_url"], UrlPolicy(allow_private=True))
    assert hashlib.sha256(archive).hexdigest() == report["results_hash"]
    assert state.final_results_hash == report["results_hash"]
    assert report["assignments"]["rejected"] >= 1
    assert report["assignments"]["accepted"] >= report["jobs"]  # every job, one redone
    paid = {p["wallet"]: Decimal(p["amount_hmt"]) for p in report["payouts"]}
    assert paid and sum(paid.values()) <= 20
    for wallet in wallets:
        delta = Decimal(chain.hmt_balance(wallet) - before[wallet]) / 10**18
        assert delta == paid.get(wallet, 0)
    for p in report["payouts"]:
        assert Decimal(p["balance_delta_hmt"]) == Decimal(p["amount_hmt"])

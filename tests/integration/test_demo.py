"""`audio-oracles demo` at a small size on its embedded defaults (SQLite, Celery's
filesystem broker), checked against the chain rather than against its own report, and run
as a newcomer runs it: from another directory, stopped with signals, failing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from oracle_core.chain import Chain
from oracle_core.storage import UrlPolicy, fetch_url
from sandbox import accounts
from sandbox.servers import free_port
from tests.integration.conftest import CHAIN_PORT

pytestmark = pytest.mark.integration
WORKERS = 3
DEMO = [sys.executable, "-m", "audio_oracles.cli", "demo"]


def _env() -> dict[str, str]:
    """The embedded defaults, as a newcomer has them (no DATABASE_URL, no broker)."""
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (Celery workers, hardhat, moto), read from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:  # a failed assertion must not leave a demo running
        for pid in _descendants(proc.pid) | {proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _start(args: list[str], cwd: Path, ignore_sigint: bool = False) -> subprocess.Popen[str]:
    def background() -> None:  # as `cmd &` in a script: the job starts with SIGINT ignored
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(
        DEMO + args, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, preexec_fn=background,
    )  # fmt: skip


def _read_until(proc: subprocess.Popen[str], marker: str, timeout_s: float) -> str:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout_s
    while marker not in seen:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} from the demo; it said:\n{seen[-3000:]}")
        seen += line
    return seen


def _stops_everything(proc: subprocess.Popen[str], sig: int, children: set[int]) -> str:
    assert children, "the demo should have started its workers by now"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=90)
    deadline = time.monotonic() + 10
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(children), f"left running after {signal.Signals(sig).name}"
    return out


def test_the_demo_runs_the_whole_flow_and_its_report_matches_the_chain(
    fresh_chain: str, s3_url: str, tmp_path: Path
) -> None:
    chain = Chain(fresh_chain)
    wallets = [accounts.account(accounts.FIRST_WORKER + i).address for i in range(WORKERS)]
    before = {w: chain.hmt_balance(w) for w in wallets}
    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing may depend on the cwd
    elsewhere.mkdir()
    done = subprocess.run(
        [*DEMO, "--files", "2", "--workers", str(WORKERS), "--chain-port", str(CHAIN_PORT),
         "--s3-port", s3_url.rsplit(":", 1)[1], "--work-dir", str(tmp_path / "demo"),
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=_env(), check=False, cwd=elsewhere,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rejected" in done.stdout and "escrow Complete on chain" in done.stdout
    assert "not compatible" not in done.stdout + done.stderr  # SDK and CVAT of one release
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
    assert not list(elsewhere.iterdir()), "the demo wrote into the directory it was run from"


@pytest.mark.faults
def test_keep_running_holds_the_try_out_job_and_sigint_in_the_background_stops_all_it_started(
    tmp_path: Path, demo_process: list[subprocess.Popen[str]]
) -> None:
    """Its own chain and S3 on ports of our choosing, every service port set, started the
    way a shell starts a background job (SIGINT ignored); SIGINT still stops all of it."""
    chain_port, s3_port, exchange_port = free_port(), free_port(), free_port()
    proc = _start(
        ["--files", "1", "--workers", "2", "--keep-running", "--chain-port", str(chain_port),
         "--s3-port", str(s3_port), "--exchange-port", str(exchange_port), "--cvat-port",
         str(free_port()), "--recording-port", str(free_port()), "--reputation-port",
         str(free_port()), "--work-dir", str(tmp_path / "demo"), "--report-dir", str(tmp_path)],
        tmp_path, ignore_sigint=True,
    )  # fmt: skip
    demo_process.append(proc)
    said = _read_until(proc, "annotator page (try a job)", 300)
    link = said.rsplit("annotator page (try a job): ", 1)[1].split()[0]
    assert link.startswith(f"http://127.0.0.1:{exchange_port}/annotate/")
    assignment_id, token = link.split("/annotate/")[1].split("#token=")
    got = httpx.get(
        f"http://127.0.0.1:{exchange_port}/assignment/{assignment_id}/annotations",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert got.status_code == 200, got.text
    expires = datetime.fromisoformat(got.json()["expires_at"].replace("Z", "+00:00"))
    assert expires > datetime.now(UTC) + timedelta(minutes=50)  # not the manifest's 10 minutes
    assert _answers(chain_port) and _answers(s3_port)

    out = _stops_everything(proc, signal.SIGINT, _descendants(proc.pid))
    assert "SIGINT: stopping everything the demo started" in out
    assert not _answers(chain_port) and not _answers(s3_port) and not _answers(exchange_port)


@pytest.mark.faults
def test_sigterm_mid_run_stops_the_workers_and_servers(
    chain_url: str, s3_url: str, tmp_path: Path, demo_process: list[subprocess.Popen[str]]
) -> None:
    exchange_port = free_port()
    proc = _start(
        ["--files", "1", "--workers", "2", "--chain-port", str(CHAIN_PORT), "--s3-port",
         s3_url.rsplit(":", 1)[1], "--exchange-port", str(exchange_port), "--work-dir",
         str(tmp_path / "demo"), "--report-dir", str(tmp_path)],
        tmp_path,
    )  # fmt: skip
    demo_process.append(proc)
    _read_until(proc, "HMT", 120)  # the escrow is launched: both workers are up
    out = _stops_everything(proc, signal.SIGTERM, _descendants(proc.pid))
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "SIGTERM: everything the demo started is stopped" in out
    assert not _answers(exchange_port)
    assert _answers(CHAIN_PORT)  # the chain it found running is left alone


@pytest.mark.faults
def test_a_failed_demo_says_why_and_stops_what_it_started(
    chain_url: str, s3_url: str, tmp_path: Path, demo_process: list[subprocess.Popen[str]]
) -> None:
    proc = _start(
        ["--files", "1", "--workers", "2", "--timeout", "0.5", "--chain-port", str(CHAIN_PORT),
         "--s3-port", s3_url.rsplit(":", 1)[1], "--work-dir", str(tmp_path / "demo"),
         "--report-dir", str(tmp_path)],
        tmp_path,
    )  # fmt: skip
    demo_process.append(proc)
    _read_until(proc, "HMT", 120)
    children = _descendants(proc.pid)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "demo failed: no jobs listed after 0 s" in out
    time.sleep(1)
    assert not _alive(children)
    assert not (tmp_path / "demo-report.json").exists()

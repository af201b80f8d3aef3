"""`audio-oracles escrow launch|status` as a requester runs them, against the real chain,
S3 on loopback and an exchange oracle's real webhook intake."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from oracle_core.chain import Chain
from sandbox import accounts
from tests.integration.escrows import HMT, key, register_oracles
from tests.integration.receivers import inbox_app

pytestmark = pytest.mark.integration


def cli(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audio_oracles.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **env},
    )


def requester_env(chain_url: str, s3_url: str) -> dict[str, str]:
    return {
        "RPC_URL": chain_url,
        "PRIVATE_KEY": key(accounts.JOB_LAUNCHER),
        "EXCHANGE_ORACLE_ADDRESS": accounts.account(accounts.EXCHANGE_ORACLE).address,
        "RECORDING_ORACLE_ADDRESS": accounts.account(accounts.RECORDING_ORACLE).address,
        "REPUTATION_ORACLE_ADDRESS": accounts.account(accounts.REPUTATION_ORACLE).address,
        "STORAGE_ENDPOINT_URL": s3_url,
        "STORAGE_ACCESS_KEY": "sandbox",
        "STORAGE_SECRET_KEY": "sandbox-secret",
        "STORAGE_BUCKET": "requester",
        "ALLOW_PRIVATE_URLS": "true",
    }


def test_launch_uploads_funds_sets_up_and_tells_the_exchange_oracle(
    fresh_chain: str, s3_url: str, pg_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "media").mkdir(parents=True)
    (data / "media" / "a.wav").write_bytes(b"RIFF....WAVE")
    (data / "gt.tsv").write_text("filename\tstart\tstop\tlabel\ttext\tspan_id\n")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"version": 2, "job_type": "audio_transcription"}))
    with inbox_app(fresh_chain, pg_url, {"escrow_created": ("launcher",)}) as exchange:
        register_oracles(fresh_chain, {accounts.EXCHANGE_ORACLE: exchange.url})
        env = requester_env(fresh_chain, s3_url)
        proc = cli(
            env, "escrow", "launch", "--manifest", manifest, "--amount", "50", "--data", data
        )
        assert proc.returncode == 0, proc.stderr
        escrow = proc.stdout.strip()
        assert exchange.count() == 1
        (event,) = exchange.rows()
        assert (event.escrow_address, event.event_type) == (escrow, "escrow_created")

    state = Chain(fresh_chain).read_escrow(escrow)
    assert state.status == "Pending" and state.fund_amount == 50 * HMT
    assert state.launcher == accounts.account(accounts.JOB_LAUNCHER).address
    body = httpx.get(state.manifest_url).content
    assert hashlib.sha256(body).hexdigest() == state.manifest_hash
    uploaded = json.loads(body)
    assert uploaded["data"]["media_url"]["path"].endswith("/media")
    assert uploaded["data"]["gt_url"]["path"].endswith("/gt.tsv")
    media = uploaded["data"]["media_url"]
    listing = httpx.get(
        f"{media['host_url']}/{media['bucket_name']}", params={"prefix": media["path"]}
    )
    assert "a.wav" in listing.text

    status = cli(env, "escrow", "status", escrow)
    assert status.returncode == 0
    assert "Pending" in status.stdout and "50 HMT" in status.stdout


def test_a_bad_manifest_is_refused_before_anything_reaches_the_chain(
    fresh_chain: str, s3_url: str, tmp_path: Path
) -> None:
    launcher = Chain(fresh_chain).w3.eth.get_transaction_count(accounts.account(1).address)
    bad = tmp_path / "bad.json"
    bad.write_text("{version: 2")
    env = requester_env(fresh_chain, s3_url)
    proc = cli(env, "escrow", "launch", "--manifest", bad, "--amount", "5")
    assert proc.returncode == 2
    assert "bad.json: not JSON" in proc.stderr and "Traceback" not in proc.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"version": 2}))
    for amount, message in (("-3", "amount must be positive"), ("lots", "must be a number")):
        proc = cli(env, "escrow", "launch", "--manifest", good, "--amount", amount)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert Chain(fresh_chain).w3.eth.get_transaction_count(accounts.account(1).address) == launcher


def test_status_of_a_non_escrow_is_a_clear_error(chain_url: str) -> None:
    proc = cli({"RPC_URL": chain_url}, "escrow", "status", accounts.account(5).address)
    assert proc.returncode == 2 and "is not an escrow" in proc.stderr


def test_an_oracle_registers_itself_and_anyone_can_read_it(
    fresh_chain: str, tmp_path: Path
) -> None:
    env = {"RPC_URL": fresh_chain, "PRIVATE_KEY": key(accounts.RECORDING_ORACLE)}
    pgp = tmp_path / "key.asc"
    pgp.write_text(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    proc = cli(
        env,
        "oracle",
        "register",
        "--url",
        "http://rec.test:8001",
        "--role",
        "recording_oracle",
        "--fee",
        "2",
        "--public-key",
        pgp,
    )
    assert proc.returncode == 0, proc.stderr
    chain = Chain(fresh_chain)
    address = accounts.account(accounts.RECORDING_ORACLE).address
    assert chain.kv_get(address, "webhook_url") == "http://rec.test:8001/webhook"
    assert chain.kv_get(address, "fee") == "2"
    assert chain.kv_get(address, "public_key").startswith("-----BEGIN PGP")
    shown = cli({"RPC_URL": fresh_chain}, "oracle", "show", address)
    assert "recording_oracle" in shown.stdout
    bad = cli(
        env,
        "oracle",
        "register",
        "--url",
        "http://rec.test",
        "--role",
        "recording_oracle",
        "--fee",
        "40",
    )
    assert bad.returncode == 2 and "fee must be a whole percent" in bad.stderr

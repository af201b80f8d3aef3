"""The escrow lifecycle through oracle_core.chain against the real HUMAN contracts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from web3 import Web3

from oracle_core.chain import Chain, ChainError, TransactionReverted
from sandbox import accounts
from sandbox.chain import CONTRACTS

pytestmark = pytest.mark.integration
HMT = 10**18


def key(index: int) -> str:
    return accounts.account(index).key.to_0x_hex()


def test_contracts_sit_at_the_sdk_localhost_addresses(chain_url: str) -> None:
    chain = Chain(chain_url)
    assert chain.chain_id == 1338
    assert chain.network["hmt_address"] == CONTRACTS.hmt
    for address in (CONTRACTS.hmt, CONTRACTS.staking, CONTRACTS.factory, CONTRACTS.kvstore):
        assert chain.w3.eth.get_code(address), address


def test_full_escrow_lifecycle(fresh_chain: str) -> None:
    launcher = Chain(fresh_chain, key(accounts.JOB_LAUNCHER))
    exchange = Chain(fresh_chain, key(accounts.EXCHANGE_ORACLE))
    recording = Chain(fresh_chain, key(accounts.RECORDING_ORACLE))
    reputation = Chain(fresh_chain, key(accounts.REPUTATION_ORACLE))
    for oracle, fee in ((exchange, 1), (recording, 2), (reputation, 3)):
        oracle.kv_set({"fee": str(fee), "role": "oracle"})
        assert oracle.kv_get(oracle.address, "fee") == str(fee)

    staked = launcher.available_stake()
    launcher.approve_and_stake(10 * HMT)
    assert launcher.available_stake() == staked + 10 * HMT
    escrow = launcher.create_escrow("requester-1")
    assert launcher.read_escrow(escrow).status == "Launched"

    launcher.fund_escrow(escrow, 100 * HMT)
    launcher.setup_escrow(
        escrow,
        reputation_oracle=reputation.address,
        recording_oracle=recording.address,
        exchange_oracle=exchange.address,
        manifest_url="http://127.0.0.1:9000/manifests/m.json",
        manifest_hash="abc123",
    )
    state = recording.read_escrow(escrow)
    assert state.status == "Pending"
    assert state.launcher == launcher.address
    assert state.role_address("recording_oracle") == recording.address
    assert state.manifest_url.endswith("m.json") and state.manifest_hash == "abc123"
    assert state.fund_amount == 100 * HMT
    # The oracles' fees (1 + 2 + 3 percent) come off at setup: payouts must fit in the rest.
    assert state.remaining_funds == 94 * HMT

    recording.store_results(escrow, "http://127.0.0.1:9000/results/r.zip", "f00d", 90 * HMT)
    state = recording.read_escrow(escrow)
    assert state.intermediate_results_url.endswith("r.zip")
    assert state.reserved_funds == 90 * HMT

    workers = [accounts.account(accounts.FIRST_WORKER + i).address for i in range(2)]
    before = [reputation.hmt_balance(w) for w in workers]
    reputation.bulk_payout(
        escrow,
        workers,
        [50 * HMT, 40 * HMT],
        "http://127.0.0.1:9000/results/final.zip",
        "beef",
        "payout-1",
    )
    state = reputation.read_escrow(escrow)
    assert state.status == "Complete"
    assert state.final_results_hash == "beef"
    gained = [reputation.hmt_balance(w) - b for w, b in zip(workers, before, strict=True)]
    assert gained == [50 * HMT, 40 * HMT]


def test_only_the_recording_oracle_may_store_results(fresh_chain: str) -> None:
    launcher = Chain(fresh_chain, key(accounts.JOB_LAUNCHER))
    stranger = Chain(fresh_chain, key(accounts.FIRST_WORKER))
    launcher.approve_and_stake(HMT)
    escrow = launcher.create_escrow("r")
    with pytest.raises(TransactionReverted, match="storeResults"):
        stranger.store_results(escrow, "http://x.test/r", "h", 0)


def test_reading_something_that_is_not_an_escrow_is_a_clear_error(chain_url: str) -> None:
    with pytest.raises(ChainError, match="is not an escrow"):
        Chain(chain_url).read_escrow(CONTRACTS.hmt)


def test_concurrent_senders_never_share_a_nonce(fresh_chain: str) -> None:
    chain = Chain(fresh_chain, key(accounts.EXCHANGE_ORACLE))
    start = chain.w3.eth.get_transaction_count(chain.address)
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            Chain(fresh_chain, key(accounts.EXCHANGE_ORACLE)).kv_set({f"k{i}": str(i)})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert chain.w3.eth.get_transaction_count(chain.address) == start + 12
    assert [chain.kv_get(chain.address, f"k{i}") for i in range(12)] == [str(i) for i in range(12)]


def test_a_retried_send_lands_exactly_one_transaction(fresh_chain: str) -> None:
    chain = Chain(fresh_chain, key(accounts.EXCHANGE_ORACLE), backoff_s=0.01)
    real_send = chain.w3.eth.send_raw_transaction
    calls = {"n": 0}

    def flaky(raw: bytes) -> bytes:
        calls["n"] += 1
        result = real_send(raw)  # reaches the node...
        if calls["n"] == 1:
            raise ConnectionError("reply lost")  # ...but the reply does not come back
        return result

    chain.w3.eth.send_raw_transaction = flaky  # type: ignore[method-assign]
    start = chain.w3.eth.get_transaction_count(chain.address)
    chain.kv_set({"once": "yes"})
    assert calls["n"] == 2
    assert chain.w3.eth.get_transaction_count(chain.address) == start + 1
    assert Web3.is_address(chain.address)


SENDER_SCRIPT = """
import sys
from oracle_core.chain import Chain, redis_lock_factory
url, key, redis_url, tag = sys.argv[1:5]
chain = Chain(url, key, lock_factory=redis_lock_factory(redis_url))
for i in range(6):
    chain.kv_set({f"{tag}{i}": "x"})
"""


def test_processes_sharing_a_key_take_turns_through_redis(fresh_chain: str, redis_url: str) -> None:
    import subprocess
    import sys

    chain = Chain(fresh_chain, key(accounts.RECORDING_ORACLE))
    start = chain.w3.eth.get_transaction_count(chain.address)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SENDER_SCRIPT,
                fresh_chain,
                key(accounts.RECORDING_ORACLE),
                redis_url,
                tag,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b", "c")
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert chain.w3.eth.get_transaction_count(chain.address) == start + 18
    assert all(chain.kv_get(chain.address, f"{t}{i}") == "x" for t in "abc" for i in range(6))


def test_every_oracle_process_shares_the_nonce_lock_of_its_broker(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's promise: every process that signs with one key takes its nonce under one
    lock (Redis in production, a file beside the demo's filesystem broker)."""
    import itertools
    import subprocess
    import sys

    from oracle_core.chain import local_lock, shared_lock_factory

    assert type(shared_lock_factory(redis_url)("0xabc")).__name__ == "Lock"  # redis-py's
    assert shared_lock_factory("memory://") is local_lock
    monkeypatch.setenv("CELERY_FILESYSTEM_FOLDER", str(tmp_path / "broker"))
    lock_dir = tmp_path / "nonce-locks"
    shared_lock_factory("filesystem://")  # makes the folder beside the broker's
    assert lock_dir.is_dir()

    marks = tmp_path / "marks"
    hold = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from oracle_core.chain import file_lock_factory\n"
        "with file_lock_factory(Path(sys.argv[1]))('0xSender'):\n"
        "    start = time.monotonic(); time.sleep(0.2); end = time.monotonic()\n"
        "with open(sys.argv[2], 'a') as out:\n"
        "    out.write(f'{start} {end}\\n')\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", hold, str(lock_dir), str(marks)]) for _ in range(3)
    ]
    assert all(p.wait(60) == 0 for p in procs)
    spans = sorted(tuple(map(float, line.split())) for line in marks.read_text().splitlines())
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # one holder at a time

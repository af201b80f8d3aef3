"""Chain access over human-protocol-sdk and web3: escrow reads from the chain (never a
subgraph), and transactions that survive RPC hiccups without ever reusing a nonce.

The SDK's write helpers let web3 pick the nonce and send; a retry after a lost reply would
then send a *second* transaction (a second payout). Here every transaction is signed once
with a nonce taken under a per-sender lock, and retries resend those same signed bytes, so
a retry can only ever land the same transaction hash.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from human_protocol_sdk.constants import ARTIFACTS_FOLDER, NETWORKS, ChainId, Status
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError

log = logging.getLogger(__name__)

ROLES = ("launcher", "exchange_oracle", "recording_oracle", "reputation_oracle")
TRANSIENT = (ConnectionError, TimeoutError, OSError, TimeExhausted)


class ChainError(RuntimeError):
    """A chain call that failed for a reason the caller can act on."""


class TransactionReverted(ChainError):
    pass


# Serialises one account's transactions; a Redis lock does it across processes.
SenderLock = AbstractContextManager[Any]


_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def local_lock(address: str) -> SenderLock:
    with _local_locks_guard:
        return _local_locks.setdefault(address, threading.Lock())


def redis_lock_factory(redis_url: str, timeout_s: float = 300) -> Callable[[str], SenderLock]:
    """Per-account locks in Redis, so every process sending from one key takes turns."""
    import redis

    client = redis.Redis.from_url(redis_url)

    def factory(address: str) -> SenderLock:
        lock: SenderLock = client.lock(
            f"audio-oracles:nonce:{address.lower()}", timeout=timeout_s, blocking_timeout=timeout_s
        )
        return lock

    return factory


def file_lock_factory(folder: Path) -> Callable[[str], SenderLock]:
    """Per-account locks as files under `folder` (flock), for processes on one machine
    without Redis (the embedded demo)."""
    import fcntl
    from contextlib import contextmanager

    folder.mkdir(parents=True, exist_ok=True)

    def factory(address: str) -> SenderLock:
        @contextmanager
        def held() -> Any:
            with (folder / f"nonce-{address.lower()}.lock").open("w") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield handle
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

        return held()

    return factory


def shared_lock_factory(broker_url: str) -> Callable[[str], SenderLock]:
    """The nonce lock every process of an oracle shares: in Redis when the oracle's Celery
    broker is Redis (production), in files beside the filesystem broker (the demo), and
    in-process otherwise (a single process: tests)."""
    import os

    if broker_url.startswith(("redis://", "rediss://")):
        return redis_lock_factory(broker_url)
    if broker_url.startswith("filesystem://"):
        folder = Path(os.environ.get("CELERY_FILESYSTEM_FOLDER", ".demo/broker"))
        return file_lock_factory(folder.parent / "nonce-locks")
    return local_lock


@cache
def _abi(name: str) -> list[dict[str, Any]]:
    """Read once per process: contract objects are made on every chain call."""
    path = Path(ARTIFACTS_FOLDER) / "contracts" / f"{name}.sol" / f"{name}.json"
    abi: list[dict[str, Any]] = json.loads(path.read_text())["abi"]
    return abi


@dataclass(frozen=True)
class EscrowState:
    """What the chain says about one escrow right now."""

    address: str
    chain_id: int
    status: str
    token: str
    fund_amount: int
    balance: int
    reserved_funds: int
    remaining_funds: int
    launcher: str
    exchange_oracle: str
    recording_oracle: str
    reputation_oracle: str
    manifest_url: str
    manifest_hash: str
    intermediate_results_url: str
    intermediate_results_hash: str
    final_results_url: str
    final_results_hash: str

    def role_address(self, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role '{role}'; roles are {', '.join(ROLES)}")
        address: str = getattr(self, role)
        return address


class Chain:
    """One RPC endpoint and, when given a key, one signing account."""

    def __init__(
        self,
        rpc_url: str,
        private_key: str | None = None,
        *,
        lock_factory: Callable[[str], SenderLock] = local_lock,
        retries: int = 5,
        backoff_s: float = 0.5,
        receipt_timeout_s: float = 120,
    ) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.rpc_url = rpc_url
        self._account: LocalAccount | None = Account.from_key(private_key) if private_key else None
        self._lock_factory = lock_factory
        self._retries = retries
        self._backoff_s = backoff_s
        self._receipt_timeout_s = receipt_timeout_s
        self._chain_id: int | None = None
        self._network: dict[str, Any] | None = None

    # -- identity and network ------------------------------------------------------------
    @property
    def address(self) -> str:
        if self._account is None:
            raise ChainError("no private key is configured for this oracle")
        return str(self._account.address)

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._call_with_retry(lambda: self.w3.eth.chain_id))
        return self._chain_id

    @property
    def network(self) -> dict[str, Any]:
        if self._network is None:
            try:
                self._network = NETWORKS[ChainId(self.chain_id)]
            except ValueError:
                raise ChainError(
                    f"chain id {self.chain_id} is not a HUMAN Protocol network"
                ) from None
        return self._network

    def contract(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=_abi(name))

    @property
    def hmt(self) -> Any:
        return self.contract("HMToken", self.network["hmt_address"])

    @property
    def kvstore(self) -> Any:
        return self.contract("KVStore", self.network["kvstore_address"])

    @property
    def factory(self) -> Any:
        return self.contract("EscrowFactory", self.network["factory_address"])

    @property
    def staking(self) -> Any:
        return self.contract("Staking", self.network["staking_address"])

    def escrow_contract(self, address: str) -> Any:
        return self.contract("Escrow", address)

    # -- reads ------------------------------------------------------------------------------
    def _call_with_retry(self, fn: Callable[[], Any]) -> Any:
        delay = self._backoff_s
        for attempt in range(self._retries + 1):
            try:
                return fn()
            except TRANSIENT as exc:
                if attempt == self._retries:
                    raise ChainError(f"RPC {self.rpc_url} is unreachable: {exc}") from exc
                log.warning("RPC error (%s), retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def is_escrow(self, address: str) -> bool:
        if not Web3.is_address(address):
            return False
        return bool(
            self._call_with_retry(
                lambda: self.factory.functions.hasEscrow(Web3.to_checksum_address(address)).call()
            )
        )

    def read_escrow(self, address: str) -> EscrowState:
        """Every field straight from the escrow contract; ChainError if it is not an escrow."""
        if not self.is_escrow(address):
            raise ChainError(
                f"{address} is not an escrow of this chain's factory ({self.chain_id})"
            )
        fns = self.escrow_contract(address).functions

        def read(name: str) -> Any:
            return self._call_with_retry(lambda: getattr(fns, name)().call())

        return EscrowState(
            address=Web3.to_checksum_address(address),
            chain_id=self.chain_id,
            status=Status(read("status")).name,
            token=read("token"),
            fund_amount=read("fundAmount"),
            balance=read("getBalance"),
            reserved_funds=read("reservedFunds"),
            remaining_funds=read("remainingFunds"),
            launcher=read("launcher"),
            exchange_oracle=read("exchangeOracle"),
            recording_oracle=read("recordingOracle"),
            reputation_oracle=read("reputationOracle"),
            manifest_url=read("manifest"),
            manifest_hash=read("manifestHash"),
            intermediate_results_url=read("intermediateResultsUrl"),
            intermediate_results_hash=read("intermediateResultsHash"),
            final_results_url=read("finalResultsUrl"),
            final_results_hash=read("finalResultsHash"),
        )

    def kv_get(self, owner: str, key: str) -> str:
        owner = Web3.to_checksum_address(owner)
        return str(self._call_with_retry(lambda: self.kvstore.functions.get(owner, key).call()))

    def hmt_balance(self, address: str) -> int:
        who = Web3.to_checksum_address(address)
        return int(self._call_with_retry(lambda: self.hmt.functions.balanceOf(who).call()))

    # -- writes ------------------------------------------------------------------------------
    def transact(
        self,
        fn: ContractFunction,
        *,
        gas: int | None = None,
        on_signed: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Sign once under the sender's lock, send, resend the same bytes on RPC errors.
        `on_signed` gets the transaction's hash before it is sent (to keep it durably, so a
        process killed while it is pending can wait for it with `landed` instead of sending
        a second one)."""
        if self._account is None:
            raise ChainError("no private key is configured for this oracle")
        sender = self._account.address
        with self._lock_factory(sender):
            try:
                tx = fn.build_transaction(
                    {
                        "from": sender,
                        "chainId": self.chain_id,
                        "nonce": self._call_with_retry(
                            lambda: self.w3.eth.get_transaction_count(sender, "pending")
                        ),
                        **({"gas": gas} if gas else {}),
                    }
                )
            except ContractLogicError as exc:
                raise TransactionReverted(f"{fn.fn_name} would revert: {exc.message}") from exc
            signed = self._account.sign_transaction(dict(tx))  # type: ignore[arg-type]
            if on_signed is not None:
                on_signed(signed.hash.to_0x_hex())
            tx_hash = self._send_raw(signed.raw_transaction, signed.hash)
        receipt = self._wait(tx_hash)
        if receipt["status"] != 1:
            raise TransactionReverted(f"{fn.fn_name} reverted in transaction {tx_hash.to_0x_hex()}")
        return receipt

    def _send_raw(self, raw: bytes, tx_hash: HexBytes) -> HexBytes:
        delay = self._backoff_s
        for attempt in range(self._retries + 1):
            try:
                return HexBytes(self.w3.eth.send_raw_transaction(raw))
            except TRANSIENT as exc:
                if attempt == self._retries:
                    raise ChainError(f"could not send transaction: {exc}") from exc
                time.sleep(delay)
                delay *= 2
            except (ValueError, Web3RPCError) as exc:
                # An earlier attempt may have reached the node after all: same bytes, same hash.
                text = str(exc).lower()
                if ("already known" in text or "nonce too low" in text) and self._known(tx_hash):
                    return tx_hash
                raise ChainError(f"transaction refused: {exc}") from exc
        raise AssertionError("unreachable")

    def landed(self, tx_hash: str) -> bool:
        """Whether a transaction sent earlier (perhaps by a process since killed) succeeded:
        waits for it while the node still holds it; False when it reverted or is unknown."""
        if not self._call_with_retry(lambda: self._known(HexBytes(tx_hash))):
            return False
        return int(self._wait(HexBytes(tx_hash))["status"]) == 1

    def _known(self, tx_hash: HexBytes) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
            return True
        except TransactionNotFound:
            return False

    def _wait(self, tx_hash: HexBytes) -> dict[str, Any]:
        receipt = self._call_with_retry(
            lambda: self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self._receipt_timeout_s
            )
        )
        return dict(receipt)

    def kv_set(self, values: dict[str, str]) -> None:
        keys = list(values)
        self.transact(self.kvstore.functions.setBulk(keys, [values[k] for k in keys]))

    def approve_and_stake(self, amount: int) -> None:
        self.transact(self.hmt.functions.approve(self.network["staking_address"], amount))
        self.transact(self.staking.functions.stake(amount))

    def available_stake(self, address: str | None = None) -> int:
        who = Web3.to_checksum_address(address or self.address)
        return int(
            self._call_with_retry(lambda: self.staking.functions.getAvailableStake(who).call())
        )

    def create_escrow(self, requester_id: str) -> str:
        receipt = self.transact(
            self.factory.functions.createEscrow(self.network["hmt_address"], requester_id)
        )
        for event in self.factory.events.LaunchedV2().process_receipt(receipt):
            return str(event.args.escrow)
        raise ChainError("createEscrow succeeded but emitted no LaunchedV2 event")

    def fund_escrow(self, escrow: str, amount: int) -> None:
        self.transact(self.hmt.functions.transfer(Web3.to_checksum_address(escrow), amount))

    def setup_escrow(
        self,
        escrow: str,
        *,
        reputation_oracle: str,
        recording_oracle: str,
        exchange_oracle: str,
        manifest_url: str,
        manifest_hash: str,
    ) -> None:
        self.transact(
            self.escrow_contract(escrow).functions.setup(
                Web3.to_checksum_address(reputation_oracle),
                Web3.to_checksum_address(recording_oracle),
                Web3.to_checksum_address(exchange_oracle),
                manifest_url,
                manifest_hash,
            )
        )

    def request_cancellation(self, escrow: str) -> dict[str, Any]:
        """The launcher asks to cancel: the escrow goes to ToCancel."""
        return self.transact(self.escrow_contract(escrow).functions.requestCancellation())

    def store_results(
        self,
        escrow: str,
        url: str,
        sha256: str,
        funds_to_reserve: int,
        on_signed: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """The three-argument storeResults (the two-argument one reverts DEPRECATED_SIGNATURE)."""
        fn = self.escrow_contract(escrow).get_function_by_signature(
            "storeResults(string,string,uint256)"
        )
        return self.transact(fn(url, sha256, funds_to_reserve), on_signed=on_signed)

    def bulk_payout(
        self,
        escrow: str,
        recipients: Sequence[str],
        amounts: Sequence[int],
        url: str,
        sha256: str,
        payout_id: str,
        force_complete: bool = True,
    ) -> dict[str, Any]:
        if len(recipients) != len(amounts) or not recipients:
            raise ChainError("payouts need one amount per recipient, and at least one recipient")
        fn = self.escrow_contract(escrow).get_function_by_signature(
            "bulkPayOut(address[],uint256[],string,string,string,bool)"
        )
        return self.transact(
            fn(
                [Web3.to_checksum_address(r) for r in recipients],
                list(amounts),
                url,
                sha256,
                payout_id,
                force_complete,
            )
        )

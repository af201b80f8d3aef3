"""The local chain: a hardhat node with HUMAN's real contracts, deployed from the bytecode that
human-protocol-sdk ships, at the addresses the SDK's built-in localhost network expects.

Deploying from account #0 at nonces 0..4 in the order HMToken, Staking, EscrowFactory
implementation, ERC1967 proxy (initialised with the KVStore address of nonce 4), KVStore
reproduces the SDK's addresses exactly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from human_protocol_sdk.constants import ARTIFACTS_FOLDER, NETWORKS, ChainId
from web3 import Web3

from sandbox import accounts
from sandbox.procs import die_with_parent

CHAIN_ID = 1338
REPO = Path(__file__).resolve().parents[1]
HARDHAT_DIR = Path(__file__).parent / "hardhat"
STATE_DIR = Path(os.environ.get("AUDIO_ORACLES_SANDBOX_DIR", REPO / ".sandbox"))
LOCAL = NETWORKS[ChainId.LOCALHOST]
HMT_SUPPLY = 1_000_000_000  # whole tokens; the contract scales by 10**decimals
FUNDED_HMT = 1_000_000
MIN_STAKE = 1
TEST_ACCOUNTS = 20


class ChainStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class Contracts:
    hmt: str
    staking: str
    factory: str
    kvstore: str


CONTRACTS = Contracts(
    hmt=LOCAL["hmt_address"],
    staking=LOCAL["staking_address"],
    factory=LOCAL["factory_address"],
    kvstore=LOCAL["kvstore_address"],
)


def artifact(name: str) -> dict[str, Any]:
    matches = sorted(Path(ARTIFACTS_FOLDER).glob(f"contracts/{name}.sol/{name}.json"))
    if not matches:
        matches = sorted(Path(ARTIFACTS_FOLDER).glob(f"@openzeppelin/**/{name}.sol/{name}.json"))
    if not matches:
        raise FileNotFoundError(f"no artifact for {name} in {ARTIFACTS_FOLDER}")
    doc: dict[str, Any] = json.loads(matches[0].read_text())
    return doc


def rpc_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def chain_id_at(url: str) -> int | None:
    try:
        reply = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2
        )
        return int(reply.json()["result"], 16)
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _pid_file(port: int) -> Path:
    return STATE_DIR / f"chain-{port}.pid"


def start_node(
    port: int = 8545, timeout_s: float = 60, *, tied: bool = False
) -> subprocess.Popen[bytes] | None:
    """Start a hardhat node unless one already answers on `port`; None when one did. A
    `tied` node dies with this process (the demo's); otherwise it stays up for reuse."""
    url = rpc_url(port)
    found = chain_id_at(url)
    if found == CHAIN_ID:
        return None
    if found is not None:
        raise ChainStartError(f"port {port} already serves chain id {found}, not {CHAIN_ID}")
    if _port_in_use(port):
        raise ChainStartError(f"port {port} is in use by something that is not an Ethereum node")
    exe = REPO / "node_modules" / ".bin" / "hardhat"
    if not exe.exists():
        raise ChainStartError("hardhat is not installed: run `make install` (npm ci)")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    log = (STATE_DIR / f"chain-{port}.log").open("wb")
    proc = subprocess.Popen(
        [str(exe), "node", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=HARDHAT_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent if tied else None,
    )
    _pid_file(port).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if chain_id_at(url) == CHAIN_ID:
            return proc
        if proc.poll() is not None:
            raise ChainStartError(f"hardhat exited with {proc.returncode}; see {log.name}")
        time.sleep(0.2)
    stop_node(port)
    raise ChainStartError(f"hardhat did not answer on {url} within {timeout_s:.0f} s")


def stop_node(port: int = 8545) -> bool:
    """Stop the node that `start_node` started on `port` (and nothing else)."""
    pid_file = _pid_file(port)
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    if b"hardhat" not in cmdline or str(port).encode() not in cmdline:
        return False
    os.killpg(pid, signal.SIGTERM)
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    return True


def _send(w3: Web3, sender: LocalAccount, tx: dict[str, Any]) -> dict[str, Any]:
    tx = {
        **tx,
        "from": sender.address,
        "chainId": CHAIN_ID,
        "nonce": w3.eth.get_transaction_count(sender.address),
    }
    tx.setdefault("gas", w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
    tx["gasPrice"] = w3.eth.gas_price
    signed = sender.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    if receipt["status"] != 1:
        raise ChainStartError(
            f"deployment transaction reverted: {receipt['transactionHash'].hex()}"
        )
    return dict(receipt)


def _deploy(w3: Web3, sender: LocalAccount, name: str, *args: Any) -> str:
    art = artifact(name)
    contract = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = contract.constructor(*args).build_transaction({"from": sender.address})
    return str(_send(w3, sender, {"data": tx["data"]})["contractAddress"])


def deploy_contracts(w3: Web3) -> Contracts:
    """Deploy HUMAN's contracts unless they are there already; idempotent."""
    if w3.eth.get_code(Web3.to_checksum_address(CONTRACTS.kvstore)):
        return CONTRACTS
    deployer = accounts.account(accounts.DEPLOYER)
    if w3.eth.get_transaction_count(deployer.address) != 0:
        raise ChainStartError(
            "the deployer account has sent transactions already, so the contracts cannot land "
            "at the SDK's localhost addresses: start from a fresh chain"
        )
    hmt = _deploy(w3, deployer, "HMToken", HMT_SUPPLY, "HUMAN Token", 18, "HMT")
    staking = _deploy(w3, deployer, "Staking", hmt, MIN_STAKE, 1, 1)
    factory_impl = _deploy(w3, deployer, "EscrowFactory")
    kvstore_at = w3.to_checksum_address(
        Web3.keccak(b"\xd6\x94" + bytes.fromhex(deployer.address[2:]) + b"\x04")[12:]
    )
    factory_abi = artifact("EscrowFactory")["abi"]
    init = w3.eth.contract(abi=factory_abi).encode_abi(
        "initialize", args=[staking, MIN_STAKE, kvstore_at]
    )
    factory = _deploy(w3, deployer, "ERC1967Proxy", factory_impl, init)
    kvstore = _deploy(w3, deployer, "KVStore")
    deployed = Contracts(hmt=hmt, staking=staking, factory=factory, kvstore=kvstore)
    if deployed != CONTRACTS:
        raise ChainStartError(f"contracts landed at {deployed}, expected {CONTRACTS}")
    return deployed


def fund_accounts(w3: Web3, count: int = TEST_ACCOUNTS, amount_hmt: int = FUNDED_HMT) -> None:
    """Give every test account `amount_hmt` HMT (once; accounts already holding HMT are skipped)."""
    token = w3.eth.contract(
        address=Web3.to_checksum_address(CONTRACTS.hmt), abi=artifact("HMToken")["abi"]
    )
    deployer = accounts.account(accounts.DEPLOYER)
    for index in range(1, count):
        who = accounts.account(index).address
        if token.functions.balanceOf(who).call() == 0:
            data = token.functions.transfer(who, amount_hmt * 10**18).build_transaction(
                {"from": deployer.address}
            )["data"]
            _send(w3, deployer, {"to": CONTRACTS.hmt, "data": data})


def up(port: int = 8545, *, tied: bool = False) -> tuple[str, bool]:
    """Chain running, contracts deployed, accounts funded. Returns (RPC URL, started now).
    A node started here is stopped again if deploying or funding fails."""
    proc = start_node(port, tied=tied)
    try:
        w3 = Web3(Web3.HTTPProvider(rpc_url(port)))
        deploy_contracts(w3)
        fund_accounts(w3)
    except BaseException:
        if proc is not None:
            stop_node(port)
        raise
    return rpc_url(port), proc is not None

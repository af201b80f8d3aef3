"""Escrows on the test chain, set up the way a job launcher does it."""

from __future__ import annotations

from oracle_core.chain import Chain
from oracle_core.registration import Registration, register
from sandbox import accounts

HMT = 10**18


def key(index: int) -> str:
    return accounts.account(index).key.to_0x_hex()


ORACLES = {
    accounts.EXCHANGE_ORACLE: ("exchange_oracle", 1),
    accounts.RECORDING_ORACLE: ("recording_oracle", 2),
    accounts.REPUTATION_ORACLE: ("reputation_oracle", 3),
}


def register_oracles(chain_url: str, webhook_urls: dict[int, str] | None = None) -> None:
    for index, (role, fee) in ORACLES.items():
        url = (webhook_urls or {}).get(index, f"http://{role}.test")
        register(
            Chain(chain_url, key(index)),
            Registration(url=url, webhook_url=f"{url}/webhook", role=role, fee=fee),
        )


def launch_escrow(
    chain_url: str, amount_hmt: int = 100, manifest_url: str = "http://m.test/m.json"
) -> str:
    register_oracles(chain_url)
    launcher = Chain(chain_url, key(accounts.JOB_LAUNCHER))
    if launcher.available_stake() == 0:
        launcher.approve_and_stake(10 * HMT)
    escrow = launcher.create_escrow("test-requester")
    launcher.fund_escrow(escrow, amount_hmt * HMT)
    launcher.setup_escrow(
        escrow,
        reputation_oracle=accounts.account(accounts.REPUTATION_ORACLE).address,
        recording_oracle=accounts.account(accounts.RECORDING_ORACLE).address,
        exchange_oracle=accounts.account(accounts.EXCHANGE_ORACLE).address,
        manifest_url=manifest_url,
        manifest_hash="0" * 64,
    )
    return escrow

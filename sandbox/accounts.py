"""The local chain's well-known test accounts (hardhat's default mnemonic): never for real funds."""

from __future__ import annotations

from functools import cache

from eth_account import Account
from eth_account.signers.local import LocalAccount

MNEMONIC = "test test test test test test test test test test test junk"

# Who plays which part on the local chain.
DEPLOYER = 0
JOB_LAUNCHER = 1
EXCHANGE_ORACLE = 2
RECORDING_ORACLE = 3
REPUTATION_ORACLE = 4
FIRST_WORKER = 10


@cache
def account(index: int) -> LocalAccount:
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def private_key(index: int) -> str:
    """The account's key as 0x-hex, the form settings take."""
    return "0x" + bytes(account(index).key).hex()

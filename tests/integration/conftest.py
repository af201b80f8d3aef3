"""Real services for integration tests: a hardhat chain with HUMAN's contracts (own port)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from web3 import Web3

from sandbox import chain as local_chain

CHAIN_PORT = int(os.environ.get("TEST_CHAIN_PORT", "18545"))


@pytest.fixture(scope="session")
def chain_url() -> Iterator[str]:
    url, started = local_chain.up(CHAIN_PORT)
    yield url
    if started:
        local_chain.stop_node(CHAIN_PORT)


@pytest.fixture
def fresh_chain(chain_url: str) -> Iterator[str]:
    """The chain as it was before the test: evm_snapshot before, evm_revert after."""
    w3 = Web3(Web3.HTTPProvider(chain_url))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield chain_url
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]

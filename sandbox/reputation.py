"""A reputation oracle stand-in for the sandbox: pays the workers listed in the recording
oracle's `payouts.json` with `bulkPayOut`, then tells the exchange oracle
`escrow_completed`. Production uses HUMAN's reputation oracle."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

from audio_oracles.requester import notify
from oracle_core.chain import Chain
from oracle_core.config import OracleSettings
from oracle_core.storage import fetch_url


@dataclass(frozen=True)
class Paid:
    payouts: dict[str, int]
    tx_hash: str | None
    notify_error: str | None


def pay_and_complete(settings: OracleSettings, chain: Chain, escrow: str) -> Paid:
    state = chain.read_escrow(escrow)
    results_url = state.intermediate_results_url
    archive = zipfile.ZipFile(io.BytesIO(fetch_url(results_url, settings.url_policy())))
    doc = json.loads(archive.read("payouts.json"))
    payouts = {p["wallet"]: int(p["amount"]) for p in doc["payouts"] if int(p["amount"]) > 0}
    tx_hash = None
    if state.status in ("Pending", "Partial") and payouts:
        receipt = chain.bulk_payout(
            escrow,
            list(payouts),
            list(payouts.values()),
            results_url,
            state.intermediate_results_hash,
            payout_id=f"{escrow}-final",
        )
        tx_hash = receipt["transactionHash"].hex()
    error = notify(settings, chain, escrow, "escrow_completed", state.exchange_oracle)
    return Paid(payouts, tx_hash, error)

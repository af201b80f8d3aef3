"""A stand-in for HUMAN's reputation oracle in the sandbox: it reads an escrow's results and
pays by the reputation oracle's own rule, then tells the exchange oracle `escrow_completed`.
Production uses HUMAN's reputation oracle.

The rule, restated from its source (humanprotocol/human-protocol b5223363, reputation
oracle `modules/escrow-completion/`: `results-processing/cvat-results-processor.ts`,
`payouts-calculation/cvat-payouts-calculator.ts`, `modules/storage/storage.service.ts`):
the escrow's `intermediateResultsUrl` is a folder; `<folder>/resulting_annotations.zip` and
`<folder>/validation_meta.json` are fetched with a plain GET (no credentials) and decrypted
with its own key when they hold a PGP message. Each job whose `final_result_id` is the `id`
of a result is paid `reserved funds // matched jobs` (integer, base units), summed per
`annotator_wallet_address`; no job, no result or no match is "Invalid annotation meta".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audio_oracles.requester import notify
from oracle_core import pgp
from oracle_core.chain import Chain
from oracle_core.config import OracleSettings
from oracle_core.storage import UrlPolicy, fetch_url

RESULTS = "resulting_annotations.zip"
META = "validation_meta.json"


class InvalidAnnotationMeta(ValueError):
    """What the reputation oracle throws for meta it cannot pay from."""


@dataclass(frozen=True)
class Results:
    archive: bytes
    meta: dict[str, Any]


def read_results(
    folder_url: str, policy: UrlPolicy, decrypt: Callable[[bytes], bytes] | None = None
) -> Results:
    """Both files of the folder, as the reputation oracle downloads them."""

    def get(name: str) -> bytes:
        data = fetch_url(f"{folder_url}/{name}", policy, max_bytes=2 * 1024**3)
        if pgp.is_encrypted(data):
            if decrypt is None:
                raise ValueError(f"{name} is encrypted and this reader has no key")
            data = decrypt(data)
        return data

    return Results(get(RESULTS), json.loads(get(META)))


def payouts_by_rule(meta: dict[str, Any], reserved_funds: int) -> dict[str, int]:
    """The reputation oracle's CVAT payouts calculator, restated."""
    jobs, results = meta.get("jobs") or [], meta.get("results") or []
    if not jobs or not results:
        raise InvalidAnnotationMeta("Invalid annotation meta")
    by_id = {r["id"]: r for r in results}
    matched = [by_id[j["final_result_id"]] for j in jobs if j.get("final_result_id") in by_id]
    if not matched:
        raise InvalidAnnotationMeta("Invalid annotation meta")
    bounty = reserved_funds // len(matched)
    paid: dict[str, int] = {}
    for result in matched:
        wallet = result["annotator_wallet_address"]
        paid[wallet] = paid.get(wallet, 0) + bounty
    return dict(sorted(paid.items()))


@dataclass(frozen=True)
class Paid:
    payouts: dict[str, int]
    tx_hash: str | None
    notify_error: str | None


def pay_and_complete(
    settings: OracleSettings,
    chain: Chain,
    escrow: str,
    decrypt: Callable[[bytes], bytes] | None = None,
) -> Paid:
    state = chain.read_escrow(escrow)
    folder = state.intermediate_results_url
    results = read_results(folder, settings.url_policy(), decrypt)
    payouts = {w: a for w, a in payouts_by_rule(results.meta, state.reserved_funds).items() if a}
    tx_hash = None
    if state.status in ("Pending", "Partial") and payouts:
        receipt = chain.bulk_payout(
            escrow,
            list(payouts),
            list(payouts.values()),
            f"{folder}/{RESULTS}",
            state.intermediate_results_hash,
            payout_id=f"{escrow}-final",
        )
        tx_hash = receipt["transactionHash"].hex()
    error = notify(settings, chain, escrow, "escrow_completed", state.exchange_oracle)
    return Paid(payouts, tx_hash, error)

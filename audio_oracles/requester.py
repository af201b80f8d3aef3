"""The requester's side of an escrow: put the data and manifest in a bucket, create, fund and
set up the escrow, and tell the exchange oracle. What a job launcher does, from one CLI."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from oracle_core.chain import Chain
from oracle_core.config import OracleSettings
from oracle_core.storage import ObjectStorage, storage_from_settings
from oracle_core.webhooks import SIGNATURE_HEADER, Envelope, sign

HMT = 10**18
Progress = Callable[[str], None]


class RequesterSettings(OracleSettings):
    """The requester's key and which oracles serve the job (env or `.env`)."""

    exchange_oracle_address: str = Field("", description="oracle addresses written into setup")
    recording_oracle_address: str = ""
    reputation_oracle_address: str = ""
    requester_stake_hmt: Decimal = Field(Decimal(1), description="staked once if nothing is")


class LaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Launched:
    escrow_address: str
    manifest_url: str
    manifest_hash: str
    notified: bool
    notify_error: str | None = None


def load_manifest(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise LaunchError(f"{path}: cannot read manifest ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise LaunchError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise LaunchError(f"{path}: the manifest must be a JSON object")
    return doc


def upload_data(
    storage: ObjectStorage, bucket: str, prefix: str, folder: Path, progress: Progress
) -> dict[str, Any]:
    """Upload `folder` and return the manifest `data` section pointing at it.

    `media/` (or the folder itself) becomes media_url; `gt.tsv` gt_url; `regions.tsv` regions_url;
    `pre/` (existing annotations, one file per media file) pre_annotations_url.
    """
    if not folder.is_dir():
        raise LaunchError(f"{folder}: not a directory")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise LaunchError(f"{folder}: no files to upload")
    storage.ensure_bucket(bucket, public_read=True)
    for i, path in enumerate(files, start=1):
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        storage.put(bucket, key, path.read_bytes())
        progress(f"uploaded {i}/{len(files)}: {key}")
    host = storage.endpoint_url or "https://s3.amazonaws.com"

    def ref(path: str) -> dict[str, str]:
        return {"provider": "AWS", "host_url": host, "bucket_name": bucket, "path": path}

    media = f"{prefix}/media" if (folder / "media").is_dir() else prefix
    data: dict[str, Any] = {"media_url": ref(media)}
    for name, field_name in (("gt.tsv", "gt_url"), ("regions.tsv", "regions_url")):
        if (folder / name).is_file():
            data[field_name] = ref(f"{prefix}/{name}")
    if (folder / "pre").is_dir():
        data["pre_annotations_url"] = ref(f"{prefix}/pre")
    return data


def launch(
    settings: RequesterSettings,
    manifest: dict[str, Any],
    amount_hmt: Decimal,
    data_dir: Path | None = None,
    progress: Progress = lambda _msg: None,
) -> Launched:
    if amount_hmt <= 0:
        raise LaunchError(f"amount must be positive, not {amount_hmt}")
    oracles = {
        "exchange": settings.exchange_oracle_address,
        "recording": settings.recording_oracle_address,
        "reputation": settings.reputation_oracle_address,
    }
    missing = [name for name, address in oracles.items() if not address]
    if missing:
        raise LaunchError("set " + ", ".join(f"{m.upper()}_ORACLE_ADDRESS" for m in missing))
    chain = Chain(settings.rpc_url, settings.signing_key())
    amount = int(amount_hmt * HMT)
    if chain.hmt_balance(chain.address) < amount:
        raise LaunchError(f"{chain.address} holds less than {amount_hmt} HMT")
    storage = storage_from_settings(settings)
    job = uuid.uuid4().hex[:12]
    manifest = dict(manifest)
    if data_dir is not None:
        uploaded = upload_data(storage, settings.storage_bucket, f"jobs/{job}", data_dir, progress)
        # What was just uploaded is what the manifest must point at.
        manifest["data"] = {**(manifest.get("data") or {}), **uploaded}
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    manifest_hash = hashlib.sha256(body).hexdigest()
    storage.ensure_bucket(settings.storage_bucket, public_read=True)
    manifest_url = storage.put(
        settings.storage_bucket, f"jobs/{job}/manifest.json", body, "application/json"
    )
    progress(f"manifest: {manifest_url}")

    if chain.available_stake() == 0:
        stake = int(settings.requester_stake_hmt * HMT)
        chain.approve_and_stake(stake)
        progress(f"staked {settings.requester_stake_hmt} HMT")
    escrow = chain.create_escrow(job)
    progress(f"escrow created: {escrow}")
    chain.fund_escrow(escrow, amount)
    progress(f"funded with {amount_hmt} HMT")
    chain.setup_escrow(
        escrow,
        reputation_oracle=oracles["reputation"],
        recording_oracle=oracles["recording"],
        exchange_oracle=oracles["exchange"],
        manifest_url=manifest_url,
        manifest_hash=manifest_hash,
    )
    progress("escrow set up")
    error = notify(settings, chain, escrow, "escrow_created", oracles["exchange"])
    return Launched(escrow, manifest_url, manifest_hash, error is None, error)


def notify(
    settings: OracleSettings,
    chain: Chain,
    escrow: str,
    event_type: str,
    target: str,
    attempts: int = 4,
    event_data: dict[str, Any] | None = None,
) -> str | None:
    """Send one signed event straight away, a few tries; returns the last error or None.
    Shaped as HUMAN's TypeScript services send it: no timestamp, UTF-8 `JSON.stringify`."""
    body = Envelope(
        escrow_address=escrow, chain_id=chain.chain_id, event_type=event_type, event_data=event_data
    ).to_bytes()
    headers = {
        SIGNATURE_HEADER: sign(body, settings.signing_key()),
        "content-type": "application/json",
    }
    error: str | None = None
    for attempt in range(attempts):
        try:
            url = next(
                (
                    u
                    for a, u in settings.webhook_url_overrides.items()
                    if a.lower() == target.lower()
                ),
                None,
            ) or chain.kv_get(target, "webhook_url")
            if not url:
                return f"{target} publishes no webhook_url in KVStore"
            reply = httpx.post(
                url, content=body, headers=headers, timeout=settings.webhook_timeout_s
            )
            if reply.is_success:
                return None
            error = f"{url} answered {reply.status_code}: {reply.text[:200]}"
            if reply.status_code < 500:
                return error
        except LookupError as exc:
            return str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5 * 2**attempt)
    return error

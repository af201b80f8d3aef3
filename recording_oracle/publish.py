"""Publishing an escrow's final results where HUMAN's reputation oracle reads them."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audio_pipeline import AudioError, InvalidParameterError
from audio_pipeline.exports import ExportOptions, ExportSegment, export
from oracle_core import pgp
from oracle_core.chain import EscrowState
from oracle_core.manifest import Manifest
from oracle_core.storage import ObjectStorage
from recording_oracle import results as final
from recording_oracle.context import RecordingContext

log = logging.getLogger(__name__)


def prefix(chain_id: int, address: str) -> str:
    """The escrow's folder in this oracle's bucket, as HUMAN's recording oracle names it."""
    return f"{address}@{chain_id}"


RESULTS = "resulting_annotations.zip"
META = "validation_meta.json"


def publish_results(
    ctx: RecordingContext, escrow: Any, state: EscrowState, files: dict[str, bytes]
) -> tuple[str, str]:
    """The results folder as HUMAN's reputation oracle reads it: `resulting_annotations.zip`
    (everything) and `validation_meta.json` (plus `payouts.json`) under `{escrow}@{chain}/`,
    readable without credentials, PGP-encrypted to the reputation oracle's and launcher's
    KVStore `public_key` when the reputation oracle publishes one. Returns the folder URL
    (no trailing slash: the reputation oracle appends `/<file>`) and the sha256 of the zip's
    stored bytes, which `storeResults` records."""
    recipients = result_keys(ctx, state)
    stored = {
        RESULTS: final.archive(files),
        META: files["validation_meta.json"],
        "payouts.json": files["payouts.json"],
    }
    if recipients:
        stored = {name: pgp.encrypt(data, recipients) for name, data in stored.items()}
    base = prefix(escrow.chain_id, escrow.escrow_address)
    bucket = ctx.settings.storage_bucket
    ctx.storage.ensure_bucket(bucket, public_read=True, listable=False)
    for name, data in stored.items():
        kind = "application/zip" if name == RESULTS and not recipients else "application/json"
        ctx.storage.put(bucket, f"{base}/{name}", data, "text/plain" if recipients else kind)
    root = ctx.settings.results_public_url
    folder = f"{root.rstrip('/')}/{base}" if root else ctx.storage.public_url(bucket, base)
    return folder, hashlib.sha256(stored[RESULTS]).hexdigest()


def result_keys(ctx: RecordingContext, state: EscrowState) -> list[str]:
    """The reputation oracle's and launcher's published PGP keys; none unless the
    reputation oracle (the reader that pays) publishes one."""
    keys = []
    for address in (state.reputation_oracle, state.launcher):
        key = ctx.chain.kv_get(address, "public_key")
        if key.strip():
            keys.append(key)
        elif address == state.reputation_oracle:
            return []
    return keys


def dataset_exports(
    ctx: RecordingContext, manifest: Manifest, rows: Sequence[dict[str, Any]]
) -> dict[str, bytes]:
    """The dataset layouts the manifest asks for, cut from the requester's source audio,
    as archive members under exports/<format>/."""
    formats = manifest.annotation.details.export_formats
    if not formats or not rows:
        return {}
    segments = [ExportSegment.from_row(r) for r in rows]
    media = manifest.data.bucket("media_url")
    source = ObjectStorage.for_bucket(media, ctx.policy)
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        local = {}
        for name in sorted({s.file for s in segments}):
            path = folder / "media" / name.replace("/", "__")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(source.get(media.bucket_name, media.key(name)))
            local[name] = path
        details = manifest.annotation.details
        options = ExportOptions(language=details.language, ratios=details.export_splits)
        for fmt in formats:
            try:
                done = export(fmt, segments, local.__getitem__, folder / fmt, options)
            except (InvalidParameterError, AudioError) as exc:
                # The results are what was paid for: a layout that cannot be written is
                # reported beside them, never in their place.
                log.warning("export %s failed: %s", fmt, exc)
                out[f"exports/{fmt}/ERROR.txt"] = f"{fmt} could not be written: {exc}\n".encode()
                continue
            for file in done.files:
                out[f"exports/{fmt}/{file.relative_to(done.root).as_posix()}"] = file.read_bytes()
    return out

"""Recording oracle settings: the shared ones plus the iteration limit."""

from __future__ import annotations

from pydantic import Field

from oracle_core.config import OracleSettings


class RecordingSettings(OracleSettings):
    max_iterations: int = Field(
        3,
        ge=1,
        le=20,
        description="rounds of rejection before the escrow is finished with what was accepted",
    )
    exchange_oracle_storage_url: str | None = Field(
        None,
        description="bucket URL where HUMAN's exchange oracle writes its layout (gt.tsv, "
        "assignments.json, task_clips.json, annotation_meta.json), read when an escrow "
        "pairs this recording oracle with HUMAN's exchange oracle",
    )
    results_public_url: str | None = Field(
        None,
        description="base URL at which peers read this oracle's results bucket without "
        "credentials (default: the storage endpoint and bucket, path style)",
    )

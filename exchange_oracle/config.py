"""Exchange oracle settings: the shared ones plus CVAT and HUMAN App."""

from __future__ import annotations

from pydantic import Field, SecretStr

from oracle_core.config import OracleSettings


class ExchangeSettings(OracleSettings):
    cvat_url: str = Field(
        "http://127.0.0.1:8080", description="CVAT (or the sandbox's test double)"
    )
    cvat_username: str = "admin"
    cvat_password: SecretStr = SecretStr("admin-password")
    cvat_webhook_url: str = Field(
        "", description="where CVAT posts job events; default PUBLIC_URL/cvat-webhook"
    )
    human_app_public_key: str = Field("", description="PEM of HUMAN App's ES256 token key")
    clip_rate: int = Field(16_000, description="sample rate of assignment clips")
    job_list_cache_s: float = Field(
        1.0, ge=0, description="GET /job answers reused for this long; 0 turns it off"
    )
    cvat_timeout_s: float = Field(60.0, gt=0, description="per CVAT request")

    def webhook_target(self) -> str:
        return self.cvat_webhook_url or f"{self.public_url.rstrip('/')}/cvat-webhook"

"""Typed settings, read from the environment and `.env`: the one place configuration lives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from oracle_core.storage import UrlPolicy

DEFAULT_SECRETS = {"minioadmin", "sandbox", "sandbox-secret", "admin-password", "change-me", ""}


class OracleSettings(BaseSettings):
    """What every oracle needs; each oracle's settings add their own fields."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development", description="production refuses to start on default credentials"
    )
    database_url: str = Field("sqlite:///./oracle.db", description="SQLAlchemy URL")
    celery_broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker")
    rpc_url: str = Field("http://127.0.0.1:8545", description="EVM JSON-RPC endpoint")
    private_key: SecretStr | None = Field(None, description="this oracle's signing key")
    public_url: str = Field("http://127.0.0.1:8000", description="where peers reach this oracle")
    webhook_url_overrides: dict[str, str] = Field(
        default_factory=dict,
        description="address -> webhook URL, used instead of the KVStore `webhook_url`",
    )
    outbox_max_attempts: int = Field(8, ge=1, le=100)
    outbox_backoff_s: float = Field(2.0, gt=0, description="first retry delay; doubles each time")
    outbox_backoff_max_s: float = Field(900.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0)
    storage_endpoint_url: str | None = Field(None, description="S3 API endpoint; None for AWS")
    storage_access_key: SecretStr | None = None
    storage_secret_key: SecretStr | None = None
    storage_region: str = "us-east-1"
    storage_bucket: str = "audio-oracles"
    allow_private_urls: bool = Field(
        False, description="let manifest URLs point at loopback/private hosts (sandbox only)"
    )
    url_allow_hosts: list[str] = Field(
        default_factory=list, description="if set, the only hosts manifest URLs may name"
    )

    pgp_private_key: SecretStr | None = Field(
        None, description="armored key for encrypted manifests"
    )
    pgp_passphrase: SecretStr | None = None

    max_body_bytes: int = Field(
        4 * 1024**2, ge=1024, description="largest request body accepted (413 above)"
    )
    body_deadline_s: float = Field(
        30.0, gt=0, description="time a request body may take to arrive (408 after)"
    )
    admin_token: SecretStr | None = Field(
        None, description="bearer token for the operator endpoints (outbox listing); unset = off"
    )

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> OracleSettings:
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError("ENVIRONMENT=production, but " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """What a production deployment must not run with (each names its setting)."""
        problems = []
        if self.private_key is None:
            problems.append("PRIVATE_KEY is not set")
        if self.allow_private_urls:
            problems.append("ALLOW_PRIVATE_URLS lets manifests reach private hosts")
        for name in ("storage_access_key", "storage_secret_key"):
            value = getattr(self, name)
            if value is not None and value.get_secret_value() in DEFAULT_SECRETS:
                problems.append(f"{name.upper()} is a well-known default")
        return problems

    def to_env(self) -> dict[str, str]:
        """These settings as the environment variables that reproduce them in another
        process (secrets included: hand it only to processes of this oracle)."""
        import json

        env = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[name.upper()] = json.dumps(value) if isinstance(value, dict | list) else str(value)
        return env

    def url_policy(self) -> UrlPolicy:
        return UrlPolicy(
            allow_private=self.allow_private_urls, allow_hosts=tuple(self.url_allow_hosts)
        )

    def signing_key(self) -> str:
        if self.private_key is None:
            raise RuntimeError("PRIVATE_KEY is not set: this oracle cannot sign")
        return self.private_key.get_secret_value()

    def manifest_decryptor(self) -> Callable[[str], bytes] | None:
        """Decrypts PGP manifests with this oracle's key; None without a key."""
        if self.pgp_private_key is None:
            return None
        from human_protocol_sdk.encryption import Encryption

        passphrase = self.pgp_passphrase.get_secret_value() if self.pgp_passphrase else None
        return Encryption(self.pgp_private_key.get_secret_value(), passphrase).decrypt

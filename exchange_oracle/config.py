"""Exchange oracle settings: the shared ones plus CVAT and HUMAN App."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from oracle_core.config import DEFAULT_SECRETS, OracleSettings


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
    cvat_retry_deadline_s: float = Field(
        60.0, ge=0, description="how long one CVAT request is retried on 5xx and timeouts"
    )
    cvat_outage_limit_s: float = Field(
        1800.0,
        gt=0,
        description="how long a build may find CVAT down with no progress before the "
        "escrow fails and the launcher gets escrow_failed with the reason",
    )
    max_escrow_files: int = Field(2000, ge=1, description="media files one escrow may list")
    max_escrow_bytes: int = Field(50 * 1024**3, ge=1, description="media bytes one escrow may list")
    max_file_hours: float = Field(12.0, gt=0, description="longest media file, decoded")
    max_escrow_hours: float = Field(200.0, gt=0, description="most audio in one escrow")
    vad_engine: Literal["webrtc", "silero"] = Field(
        "webrtc",
        description="pre-segments: webrtc (fast, the default) or silero (silero-vad's "
        "bundled ONNX model on onnxruntime: fewer errors, about 6x the analysis time)",
    )
    asr_engine: str = Field(
        "none",
        description="machine drafts of the transcriptions: none, faster-whisper (with "
        "ASR_MODEL_PATH), or module:factory for an engine of your own",
    )
    asr_model_path: str = Field(
        "", description="a faster-whisper (CTranslate2) model folder; never downloaded"
    )

    @field_validator("vad_engine")
    @classmethod
    def _vad_engine_runs_here(cls, engine: str) -> str:
        """A process that could not run its VAD engine refuses to start, saying why, rather
        than fail the escrows it builds."""
        if engine == "silero":
            from audio_pipeline.vad_silero import check

            check()  # InvalidParameterError is a ValueError: pydantic reports it
        return engine

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.cvat_password.get_secret_value() in DEFAULT_SECRETS:
            problems.append("CVAT_PASSWORD is a well-known default")
        if not self.human_app_public_key.strip():
            problems.append("HUMAN_APP_PUBLIC_KEY is not set: no worker could sign in")
        from exchange_oracle.asr import AsrConfigError, check

        try:
            check(self)  # the engine's settings, without loading its model
        except AsrConfigError as exc:
            problems.append(str(exc))
        return problems

    def webhook_target(self) -> str:
        return self.cvat_webhook_url or f"{self.public_url.rstrip('/')}/cvat-webhook"

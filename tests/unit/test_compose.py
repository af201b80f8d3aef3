"""docker-compose.yml describes the whole stack: every service has an image or a build,
the oracles get the settings they read, and what they run exists in this repository."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from exchange_oracle.config import ExchangeSettings
from recording_oracle.config import RecordingSettings

ROOT = Path(__file__).resolve().parents[2]
ORACLE_SERVICES = {
    "exchange": ("exchange-api", "exchange-worker", "exchange-beat", "exchange-migrate"),
    "recording": ("recording-api", "recording-worker", "recording-beat", "recording-migrate"),
}


def compose() -> dict:  # type: ignore[type-arg]
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def test_every_service_names_an_image_or_a_build() -> None:
    services = compose()["services"]
    for name in ("postgres", "redis", "minio", "minio-buckets", "chain", "chain-setup"):
        assert name in services
    for oracle in ORACLE_SERVICES.values():
        for name in oracle:
            assert name in services
    for name, service in services.items():
        assert "image" in service or "build" in service, name


def test_oracles_get_the_settings_they_read() -> None:
    services = compose()["services"]
    for oracle, settings in (("exchange", ExchangeSettings), ("recording", RecordingSettings)):
        known = {name.upper() for name in settings.model_fields}
        for name in ORACLE_SERVICES[oracle]:
            env = services[name]["environment"]
            for needed in ("DATABASE_URL", "CELERY_BROKER_URL", "RPC_URL", "PRIVATE_KEY"):
                assert env.get(needed), f"{name} lacks {needed}"
            assert set(env) <= known, f"{name}: unknown settings {set(env) - known}"
            assert oracle in env["DATABASE_URL"]  # each oracle its own database


def test_what_the_services_run_exists() -> None:
    services = compose()["services"]
    for oracles in ORACLE_SERVICES.values():
        for name in oracles:
            command = services[name]["command"]
            target = next(c for c in command if "_oracle" in c)
            importlib.import_module(target.split(":")[0])
    init = services["postgres"]["volumes"][1].split(":")[0]
    assert (ROOT / init).exists()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source

"""The worker API's world for tests: the exchange oracle over HTTP on PostgreSQL and the
CVAT double, with one listed escrow of twenty one-second jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert

from audio_pipeline import encode_mp3
from exchange_oracle.app import create_app
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.db import escrows, jobs, metadata
from oracle_core.manifest import Annotation
from sandbox.cvat_double import create_app as create_cvat
from sandbox.human_app import TokenIssuer
from sandbox.servers import free_port
from sandbox.servers import serve_in_thread as serve

ESCROW = "0x" + "E5" * 20
JOBS = 20


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def oracle(pg_url: str, issuer: TokenIssuer, tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    with serve(
        create_cvat(tmp_path / "cvat.db", f"http://127.0.0.1:{port}"), port=port
    ) as cvat_url:
        settings = ExchangeSettings(
            database_url=pg_url,
            cvat_url=cvat_url,
            human_app_public_key=issuer.public_key_pem,
            public_url="http://oracle.test",
        )
        ctx = ExchangeContext(settings)
        metadata.drop_all(ctx.engine)
        metadata.create_all(ctx.engine)
        _seed(ctx, qualifications=[])
        with serve(create_app(ctx)) as url:
            yield {"url": url, "ctx": ctx, "cvat_url": cvat_url}
        metadata.drop_all(ctx.engine)
        ctx.engine.dispose()


def _seed(ctx: ExchangeContext, qualifications: list[str]) -> None:
    annotation = Annotation.model_validate(
        {
            "description": "Transcribe",
            "labels": ["speech"],
            "validation": {"target_score": 0.2, "target_metric": "wer"},
            "qualifications": qualifications,
        }
    )
    cvat = ctx.cvat()
    project = cvat.ensure_project(f"escrow {ESCROW}", annotation)
    mp3 = encode_mp3((np.sin(np.arange(16_000) / 5) * 5_000).astype(np.int16))
    now = datetime.now(UTC)
    with ctx.sessions() as s, s.begin():
        escrow_id = s.execute(
            insert(escrows)
            .values(
                chain_id=1338,
                escrow_address=ESCROW,
                status="ready",
                created_at=now,
                updated_at=now,
                reward_per_job=str(5 * 10**18),
                cvat_project_id=project,
                webhook_secret="seed-secret",
                manifest={"annotation": annotation.model_dump(mode="json")},
            )
            .returning(escrows.c.id)
        ).scalar_one()
        for i in range(JOBS):
            task_id, job_id, frames = cvat.ensure_task(project, f"clip-{i:04d}", mp3)
            s.execute(
                insert(jobs).values(
                    escrow_id=escrow_id,
                    clip_index=i,
                    status="free",
                    duration_ms=frames,  # CVAT's count for the 1 s clip
                    clip_key="k",
                    time_map={},
                    pre_segments=[[100, 800]],
                    honeypots=[],
                    cvat_task_id=task_id,
                    cvat_job_id=job_id,
                    created_at=now,
                    updated_at=now,
                )
            )
    cvat.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

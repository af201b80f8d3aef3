"""GET /job of the exchange oracle with 10,000 listed escrows in PostgreSQL, under 64
concurrent connections: requests per second and latency percentiles (goal: >= 800 req/s,
p99 < 50 ms, no errors). The server runs in its own process (uvicorn, as deployed)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from sqlalchemy import insert

from exchange_oracle.db import escrows, metadata
from oracle_core.db import make_engine
from sandbox.human_app import TokenIssuer

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB = "audio_oracles_bench"
ESCROWS = 10_000
CONNECTIONS = 64
SECONDS = 10.0
PORT = int(os.environ.get("BENCH_PORT", "18901"))
GOAL_RPS, GOAL_P99_MS = 800, 50


def _database() -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{DB}"
    engine = make_engine(url)
    metadata.create_all(engine)
    start = datetime.now(UTC) - timedelta(days=1)
    manifest = {"annotation": {"description": "Transcribe the speech", "qualifications": []}}
    rows = [
        {
            "chain_id": 1338,
            "escrow_address": f"0x{i:040x}",
            "status": "ready",
            "manifest": manifest,
            "reward_per_job": str((i % 50 + 1) * 10**17),
            "created_at": start + timedelta(seconds=i),
            "updated_at": start + timedelta(seconds=i),
        }
        for i in range(ESCROWS)
    ]
    with engine.begin() as conn:
        conn.execute(insert(escrows), rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE escrows")  # what autovacuum does on a live database
    engine.dispose()
    return url


async def _load(url: str, token: str) -> tuple[int, int, list[float]]:
    """64 keep-alive connections speaking plain HTTP/1.1 over asyncio streams: a load
    generator cheap enough that the server, not the client, is what gets measured (an
    httpx client topped out near 340 req/s on its own core)."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + SECONDS

    async def user(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        page = 1 + n % 50
        try:
            while time.perf_counter() < deadline:
                query = f"page={page}&page_size=10&fields=reward_amount&fields=job_description"
                request = (
                    f"GET /job?{query} HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {token}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                if b" 200 " not in status_line:
                    errors += 1
                latencies.append(time.perf_counter() - started)
                page = page % 50 + 1
        finally:
            writer.close()

    await asyncio.gather(*(user(n) for n in range(CONNECTIONS)))
    return len(latencies), errors, latencies


def main() -> None:
    print(f"-- {ESCROWS} listed escrows in PostgreSQL", flush=True)
    db_url = _database()
    issuer = TokenIssuer()
    env = {**os.environ, "DATABASE_URL": db_url, "HUMAN_APP_PUBLIC_KEY": issuer.public_key_pem}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "exchange_oracle.app:create_app",
            "--factory",
            "--port",
            str(PORT),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = issuer.listing_token()
        sample = httpx.get(f"{url}/job", headers={"Authorization": f"Bearer {token}"}).json()
        assert sample["total_results"] == ESCROWS, sample
        count, errors, latencies = asyncio.run(_load(url, token))
    finally:
        server.terminate()
        server.wait(timeout=20)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    rps = count / SECONDS
    print(f"GET /job, {CONNECTIONS} connections for {SECONDS:.0f} s (one uvicorn process):")
    print(f"   {rps:7.0f} req/s, p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, errors {errors}")
    met = rps >= GOAL_RPS and pct(0.99) < GOAL_P99_MS and errors == 0
    verdict = "meets" if met else "MISSES"
    print(f"   {verdict} the goal (>= {GOAL_RPS} req/s, p99 < {GOAL_P99_MS} ms, no errors)")
    from benchmarks.media import OUT

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "worker_api.json").write_text(
        json.dumps(
            {"rps": rps, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "errors": errors}, indent=2
        )
    )
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')

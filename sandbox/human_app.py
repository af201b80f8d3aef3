"""Stand-ins for HUMAN App: its token issuer (an ES256 key pair that signs worker JWTs) and
its calls to an exchange oracle, sent exactly as HUMAN App sends them (humanprotocol/
human-protocol b5223363, HUMAN App's `integrations/exchange-oracle/` and its cron jobs).
Development and test tools, not product code."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


@dataclass
class TokenIssuer:
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def issue(
        self,
        wallet_address: str | None,
        email: str = "worker@example.test",
        qualifications: list[str] | None = None,
        ttl_s: float = 3600,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "email": email,
            "qualifications": qualifications or [],
            "iat": now,
            "exp": now + int(ttl_s),
            **extra,
        }
        if wallet_address is not None:
            claims["wallet_address"] = wallet_address
        return jwt.encode(claims, self.key, algorithm="ES256")

    def listing_token(self, ttl_s: float = 3600) -> str:
        return self.issue(None, email="app@human.test", ttl_s=ttl_s, role="human_app")


# HUMAN App's job-discovery cron: pages from 0, ten at a time (the peer oracles' maximum).
DISCOVERY_FIELDS = ("job_description", "reward_amount", "reward_token", "created_at")
PAGE_SIZE = 10
RETENTION_DAYS = 45  # how far back a fresh assignment cache asks


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class HumanApp:
    """HUMAN App's side of the worker API: each call is the request HUMAN App makes (its
    query strings, bodies and headers), and `requests` records them in order."""

    oracle_url: str
    issuer: TokenIssuer
    requests: list[str] = field(default_factory=list)

    def _call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self.requests.append(f"{method} {path}")
        reply = httpx.request(method, f"{self.oracle_url.rstrip('/')}{path}", headers=headers,
                              timeout=60, **kw)  # fmt: skip
        reply.raise_for_status()
        return reply.json()

    def worker_token(self, wallet: str) -> str:
        return self.issuer.issue(wallet, email=f"{wallet.lower()}@workers.test")

    def discover_jobs(self) -> list[dict[str, Any]]:
        """The cron: page 0 with the machine token, then the other pages."""
        m2m = self.issuer.issue(None, email="human-app@hmt.ai", role="human_app")
        query: list[tuple[str, str | int]] = [("page", 0), ("page_size", PAGE_SIZE)]
        query += [("fields", f) for f in DISCOVERY_FIELDS] + [("status", "active")]
        first = self._call("GET", f"/job?{urlencode(query)}", m2m)
        jobs = {(j["escrow_address"], j["chain_id"]): j for j in first["results"]}
        for page in range(1, int(first["total_pages"])):
            query[0] = ("page", page)
            for j in self._call("GET", f"/job?{urlencode(query)}", m2m)["results"]:
                jobs[(j["escrow_address"], j["chain_id"])] = j
        return list(jobs.values())

    def register(self, wallet: str, oracle_address: str = "") -> Any:
        body = {"oracle_address": oracle_address, "h_captcha_token": "sandbox-captcha"}
        return self._call("POST", "/register", self.worker_token(wallet), json=body)

    def take(self, wallet: str, escrow_address: str, chain_id: int) -> dict[str, Any]:
        body = {"escrow_address": escrow_address, "chain_id": chain_id}
        taken: dict[str, Any] = self._call(
            "POST", "/assignment", self.worker_token(wallet), json=body
        )
        return taken

    def resign(self, wallet: str, assignment_id: str) -> Any:
        body = {"assignment_id": assignment_id}
        return self._call("POST", "/assignment/resign", self.worker_token(wallet), json=body)

    def refresh_assignments(
        self, wallet: str, updated_after: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The assignment cache refresh: page 0, then the rest, of what changed."""
        since = updated_after or datetime.now(UTC) - timedelta(days=RETENTION_DAYS)
        token = self.worker_token(wallet)
        query: dict[str, str | int] = {
            "page": 0,
            "page_size": PAGE_SIZE,
            "updated_after": _iso(since),
        }
        first = self._call("GET", f"/assignment?{urlencode(query)}", token)
        found: list[dict[str, Any]] = list(first["results"])
        for page in range(1, int(first["total_pages"])):
            query["page"] = page
            found += self._call("GET", f"/assignment?{urlencode(query)}", token)["results"]
        return found

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("GET", "/stats")  # no Authorization: it is public
        return stats

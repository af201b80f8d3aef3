"""A stand-in for HUMAN App's token issuer: an ES256 key pair that signs worker JWTs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

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

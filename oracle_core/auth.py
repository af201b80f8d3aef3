"""HUMAN App's worker tokens: ES256 JWTs verified against HUMAN App's public key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt
from web3 import Web3

ALGORITHM = "ES256"
HUMAN_APP_ROLE = "human_app"


class AuthError(Exception):
    """Why a token was refused (always answered as 401)."""


@dataclass(frozen=True)
class TokenClaims:
    wallet_address: str | None
    email: str | None
    qualifications: tuple[str, ...] = ()
    role: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_human_app(self) -> bool:
        """A listing token of HUMAN App itself, not a worker's."""
        return self.role == HUMAN_APP_ROLE


def verify_token(token: str, public_key_pem: str, *, leeway_s: float = 10) -> TokenClaims:
    """Signature (ES256 only: no algorithm confusion), expiry, and the claims we rely on."""
    try:
        doc = jwt.decode(
            token,
            public_key_pem,
            algorithms=[ALGORITHM],
            leeway=leeway_s,
            options={"require": ["exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token has expired") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"token lacks the '{exc.claim}' claim") from None
    except jwt.InvalidAlgorithmError:
        raise AuthError(f"token is not signed with {ALGORITHM}") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid token: {exc}") from None
    role = doc.get("role")
    wallet = doc.get("wallet_address")
    if role != HUMAN_APP_ROLE:
        if not wallet:
            raise AuthError("token lacks the 'wallet_address' claim")
        if not Web3.is_address(wallet):
            raise AuthError(f"wallet_address '{wallet}' is not an address")
    quals = doc.get("qualifications") or []
    if not isinstance(quals, list) or not all(isinstance(q, str) for q in quals):
        raise AuthError("qualifications must be a list of strings")
    return TokenClaims(
        wallet_address=str(Web3.to_checksum_address(wallet)) if wallet else None,
        email=doc.get("email"),
        qualifications=tuple(quals),
        role=role,
        raw=doc,
    )


def bearer_token(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError("missing 'Authorization: Bearer <token>' header")
    token = authorization.removeprefix("Bearer ").strip()
    if not token.isascii():
        raise AuthError("a token is ASCII (base64url parts joined by dots)")
    return token

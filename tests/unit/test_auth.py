"""Worker JWTs: only ES256 from HUMAN App's key, unexpired, with the claims we rely on."""

from __future__ import annotations

import time

import jwt
import pytest

from oracle_core.auth import AuthError, bearer_token, verify_token
from sandbox.human_app import TokenIssuer

WALLET = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer()


def test_a_worker_token_verifies_to_its_claims(issuer: TokenIssuer) -> None:
    claims = verify_token(issuer.issue(WALLET, qualifications=["audio"]), issuer.public_key_pem)
    assert claims.wallet_address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert claims.qualifications == ("audio",) and not claims.is_human_app


def test_a_human_app_listing_token_needs_no_wallet(issuer: TokenIssuer) -> None:
    claims = verify_token(issuer.listing_token(), issuer.public_key_pem)
    assert claims.is_human_app and claims.wallet_address is None


def test_expired_tokens_are_refused(issuer: TokenIssuer) -> None:
    with pytest.raises(AuthError, match="expired"):
        verify_token(issuer.issue(WALLET, ttl_s=-60), issuer.public_key_pem)


def test_another_key_is_refused(issuer: TokenIssuer) -> None:
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(TokenIssuer().issue(WALLET), issuer.public_key_pem)


def test_algorithm_confusion_is_refused(issuer: TokenIssuer) -> None:
    forged = jwt.encode(
        {"wallet_address": WALLET, "exp": int(time.time()) + 60},
        "a shared secret of thirty-two bytes",
        algorithm="HS256",
    )
    with pytest.raises(AuthError):
        verify_token(forged, issuer.public_key_pem)
    unsigned = jwt.encode(
        {"wallet_address": WALLET, "exp": int(time.time()) + 60}, None, algorithm="none"
    )
    with pytest.raises(AuthError):
        verify_token(unsigned, issuer.public_key_pem)


def test_missing_claims_are_refused(issuer: TokenIssuer) -> None:
    with pytest.raises(AuthError, match="'wallet_address'"):
        verify_token(issuer.issue(None), issuer.public_key_pem)
    with pytest.raises(AuthError, match="not an address"):
        verify_token(issuer.issue("0x1234"), issuer.public_key_pem)
    no_exp = jwt.encode({"wallet_address": WALLET}, issuer.key, algorithm="ES256")
    with pytest.raises(AuthError, match="'exp'"):
        verify_token(no_exp, issuer.public_key_pem)
    with pytest.raises(AuthError, match="qualifications"):
        verify_token(issuer.issue(WALLET, qualifications="audio"), issuer.public_key_pem)  # type: ignore[arg-type]


def test_tampered_tokens_are_refused(issuer: TokenIssuer) -> None:
    head, body, sig = issuer.issue(WALLET).split(".")
    with pytest.raises(AuthError):
        verify_token(f"{head}.{body}x.{sig}", issuer.public_key_pem)
    with pytest.raises(AuthError):
        verify_token("not-a-jwt", issuer.public_key_pem)


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    for bad in (None, "", "Basic abc", "abc"):
        with pytest.raises(AuthError, match="Bearer"):
            bearer_token(bad)

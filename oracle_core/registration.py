"""An oracle announces itself in KVStore, from its own key: where to reach it, its role, its
fee, and the PGP public key requesters encrypt manifests with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from oracle_core.chain import Chain
from oracle_core.storage import UrlPolicy

ROLES = ("exchange_oracle", "recording_oracle", "reputation_oracle", "job_launcher")
MAX_FEE = 25


@dataclass(frozen=True)
class Registration:
    url: str
    webhook_url: str
    role: str
    fee: int
    public_key: str = ""

    def validate(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not '{self.role}'")
        if not 0 <= self.fee <= MAX_FEE:
            raise ValueError(f"fee must be a whole percent from 0 to {MAX_FEE}, not {self.fee}")
        for name in ("url", "webhook_url"):
            value = getattr(self, name)
            if not value.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http(s) URL, not '{value}'")

    def entries(self) -> dict[str, str]:
        values = {
            "url": self.url,
            "webhook_url": self.webhook_url,
            "role": self.role,
            "fee": str(self.fee),
        }
        if self.public_key:
            values["public_key"] = self.public_key
        return values


def register(chain: Chain, registration: Registration) -> None:
    """Writes only the entries that differ from what KVStore already holds."""
    registration.validate()
    wanted = registration.entries()
    changed = {k: v for k, v in wanted.items() if chain.kv_get(chain.address, k) != v}
    if changed:
        chain.kv_set(changed)


def registered(chain: Chain, address: str) -> Registration | None:
    fee = chain.kv_get(address, "fee")
    role = chain.kv_get(address, "role")
    if not fee or not role:
        return None
    return Registration(
        url=chain.kv_get(address, "url"),
        webhook_url=chain.kv_get(address, "webhook_url"),
        role=role,
        fee=int(fee),
        public_key=chain.kv_get(address, "public_key"),
    )


def webhook_target(
    chain: Chain,
    address: str,
    overrides: Mapping[str, str] | None = None,
    policy: UrlPolicy | None = None,
) -> tuple[str, str | None]:
    """Where to send events for `address`, and the address to connect to: a settings
    override first (the operator's own), else its KVStore entry, which anyone with an
    account can publish: that one must pass `policy` (no loopback or private targets, else
    UnsafeUrlError), and the connection goes to the address the policy checked."""
    for key, url in (overrides or {}).items():
        if key.lower() == address.lower():
            return url, None
    url = chain.kv_get(address, "webhook_url")
    if not url:
        raise LookupError(f"{address} publishes no webhook_url in KVStore")
    return url, policy.check(url) if policy is not None else None


def webhook_url(
    chain: Chain,
    address: str,
    overrides: Mapping[str, str] | None = None,
    policy: UrlPolicy | None = None,
) -> str:
    return webhook_target(chain, address, overrides, policy)[0]

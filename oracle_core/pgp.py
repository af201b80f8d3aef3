"""PGP for results peers read: armored messages encrypted to their KVStore `public_key`s,
binary-safe (a zip stays byte for byte the same once decrypted), as HUMAN's reputation
oracle decrypts them (openpgp, binary format)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

BEGIN, END = b"-----BEGIN PGP MESSAGE-----", b"-----END PGP MESSAGE-----"


def is_encrypted(data: bytes) -> bool:
    """HUMAN's test: the markers of an armored message anywhere in the content."""
    return BEGIN in data and END in data


def encrypt(data: bytes, public_keys: Sequence[str]) -> bytes:
    """`data` as a binary literal, encrypted to every key (no signature)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgpy's deprecation noise
        from human_protocol_sdk.encryption import EncryptionUtils

        armored: str = EncryptionUtils.encrypt(data, list(public_keys))  # bytes: a binary literal
    return armored.encode()


def decrypt(data: bytes, private_key: str, passphrase: str | None = None) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from human_protocol_sdk.encryption import Encryption

        return Encryption(private_key, passphrase).decrypt(data.decode())

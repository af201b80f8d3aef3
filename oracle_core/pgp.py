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


MAX_PLAINTEXT_BYTES = 256 * 1024**2
DECRYPT_TIMEOUT_S = 60.0
_CHILD = (
    "import sys, warnings; warnings.simplefilter('ignore')\n"
    "from human_protocol_sdk.encryption import Encryption\n"
    "key, pw, msg = sys.stdin.buffer.read().decode().split('\\x00', 2)\n"
    "sys.stdout.buffer.write(Encryption(key, pw or None).decrypt(msg))\n"
)


def decrypt_bounded(
    data: str,
    private_key: str,
    passphrase: str | None = None,
    max_bytes: int = MAX_PLAINTEXT_BYTES,
    timeout_s: float = DECRYPT_TIMEOUT_S,
) -> bytes:
    """Decrypt in a child process whose memory and time are capped: a compressed message
    can inflate a thousandfold (0.7 MB to 512 MiB), and pgpy inflates it whole."""
    import resource
    import subprocess
    import sys

    def cap() -> None:
        limit = max_bytes + 192 * 1024**2  # the interpreter and pgpy themselves
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    payload = "\x00".join((private_key, passphrase or "", data)).encode()
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD], input=payload, capture_output=True,
            preexec_fn=cap, timeout=timeout_s, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ValueError(f"decryption took longer than {timeout_s:g} s") from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["failed"]
        if "allocate" in why[0] or "MemoryError" in why[0]:
            raise ValueError(f"the message inflates past {max_bytes} bytes")
        raise ValueError(why[0])
    if len(done.stdout) > max_bytes:
        raise ValueError(f"the message inflates past {max_bytes} bytes")
    return done.stdout

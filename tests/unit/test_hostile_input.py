"""Parsers that face the network, fed whatever hypothesis makes: each either reads its
input or refuses it with its own error, never anything else (a crash is a 500, or worse)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio_pipeline.segments import TsvFormatError, read_generic_tsv
from oracle_core.auth import AuthError, bearer_token
from oracle_core.body_guard import BodyRefused, json_depth, loads
from oracle_core.ground_truth import GroundTruthError, read_gt, read_regions
from oracle_core.manifest import ManifestError, parse_manifest
from oracle_core.storage import UnsafeUrlError, UrlPolicy

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)
tsv_text = st.lists(
    st.lists(
        st.sampled_from(
            [
                "filename",
                "start",
                "stop",
                "label",
                "text",
                "span_id",
                "transcription",
                "0:00:01",
                "1:2",
                "",
                "a.wav",
                "x\ty",
                '"q',
                "0:00:00.5",
                "-1",
            ]
        ),
        max_size=8,
    ).map("\t".join),
    max_size=6,
).map("\n".join)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_depth_is_the_documents_nesting(value: Any) -> None:
    assert json_depth(json.dumps(value).encode()) == depth(value)


def test_a_hundred_thousand_brackets_are_refused_without_parsing() -> None:
    with pytest.raises(BodyRefused, match="deeper than 64"):
        loads(b"[" * 100_000 + b"]" * 100_000)
    assert loads(b'{"a": "[[[[[[[[[["}') == {"a": "[[[[[[[[[["}  # brackets in strings


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_is_a_manifest_or_a_manifest_error(value: Any) -> None:
    with contextlib.suppress(ManifestError):
        parse_manifest(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_a_manifest_or_a_manifest_error(raw: bytes) -> None:
    with contextlib.suppress(ManifestError):
        parse_manifest(raw)


@settings(max_examples=400, deadline=None)
@given(tsv_text)
def test_any_tsv_is_read_or_refused_with_its_own_error(text: str) -> None:
    for reader, error in ((read_generic_tsv, TsvFormatError), (read_gt, GroundTruthError),
                          (read_regions, GroundTruthError)):  # fmt: skip
        with contextlib.suppress(error):
            reader(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60) | st.text(max_size=60).map("Bearer ".__add__))
def test_any_authorization_header_is_a_token_or_an_auth_error(header: str) -> None:
    try:
        token = bearer_token(header)
    except AuthError:
        return
    assert token.isascii()


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]/x",  # NAT64 form of 127.0.0.1
        "http://[2002:7f00:1::]/x",  # 6to4 around 127.0.0.1
        "http://[::127.0.0.1]/x",  # IPv4-compatible
        "http://[::ffff:10.0.0.1]/x",  # IPv4-mapped private
    ],
)
def test_ipv6_forms_that_wrap_private_ipv4_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        UrlPolicy().check(url)


def test_rows_short_of_the_header_are_refused_not_crashed_on() -> None:
    with pytest.raises(GroundTruthError, match="line 2"):
        read_gt("filename\tstart\tstop\tlabel\ttext\n a.wav\t0:00:01\n")
    with pytest.raises(GroundTruthError, match="line 2"):
        read_regions("filename\tstart\tstop\na.wav\n")


def test_a_non_ascii_bearer_token_is_an_auth_error() -> None:
    with pytest.raises(AuthError, match="ASCII"):
        bearer_token("Bearer eyJ\u00e9.x.y")


def test_audio_that_decodes_past_the_cap_is_refused(tmp_path: Any) -> None:
    import numpy as np

    from audio_pipeline import analyze
    from audio_pipeline.errors import TooLongAudioError
    from sandbox.speech import write_audio

    path = tmp_path / "two-seconds.wav"
    write_audio(path, np.zeros(32_000, dtype=np.int16), 16_000)
    with pytest.raises(TooLongAudioError):
        analyze(path, max_duration_s=1.0)
    assert analyze(path, max_duration_s=3.0).duration_s == pytest.approx(2.0, abs=0.01)


def test_production_refuses_default_credentials_naming_each_setting() -> None:
    from pydantic import ValidationError

    from exchange_oracle.config import ExchangeSettings

    with pytest.raises(ValidationError) as refused:
        ExchangeSettings(environment="production", _env_file=None)  # type: ignore[call-arg]
    text = str(refused.value)
    for setting in ("PRIVATE_KEY", "CVAT_PASSWORD", "HUMAN_APP_PUBLIC_KEY"):
        assert setting in text


def test_zip_members_never_leave_the_archive() -> None:
    from recording_oracle.results import member_name

    assert member_name("exports/native/../../etc/passwd") == "exports/native/__/__/etc/passwd"
    assert member_name("/abs/../x") == "abs/__/x"
    assert member_name("exports/ok/a.wav") == "exports/ok/a.wav"


def test_a_pgp_decompression_bomb_is_refused_with_memory_bounded() -> None:
    """A compressed message inflates a thousandfold; it is decrypted in a child process
    whose memory is capped, and refused, instead of swelling the oracle."""
    import warnings

    warnings.simplefilter("ignore")
    import pgpy
    from pgpy.constants import (
        CompressionAlgorithm,
        HashAlgorithm,
        KeyFlags,
        PubKeyAlgorithm,
        SymmetricKeyAlgorithm,
    )

    from oracle_core.pgp import decrypt_bounded

    key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048)
    key.add_uid(pgpy.PGPUID.new("oracle"), usage={KeyFlags.EncryptCommunications},
                hashes=[HashAlgorithm.SHA256], ciphers=[SymmetricKeyAlgorithm.AES256],
                compression=[CompressionAlgorithm.ZLIB])  # fmt: skip
    bomb = pgpy.PGPMessage.new(b"\0" * (256 * 1024**2), compression=CompressionAlgorithm.ZLIB)
    ciphertext = str(key.pubkey.encrypt(bomb))
    assert len(ciphertext) < 1024**2
    with pytest.raises(ValueError, match="inflates past"):
        decrypt_bounded(ciphertext, str(key), max_bytes=32 * 1024**2)
    small = str(key.pubkey.encrypt(pgpy.PGPMessage.new(b'{"version": 2}')))
    assert decrypt_bounded(small, str(key)) == b'{"version": 2}'

"""Manifests as HUMAN's job launcher and audio oracles write them are understood, field by
field (humanprotocol/human-protocol b5223363: the CVAT exchange oracle's
`core/manifest/v2.py` and `core/tasks/audio_transcription/spec.py`, its test fixture
`tests/assets/cloud/manifests/audio_manifest.json`, the job launcher's
`common/utils/storage.ts` URL forms and its PGP sign-and-encrypt)."""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from typing import Any

import pytest

from oracle_core.manifest import (
    ManifestError,
    check_hash,
    manifest_bytes,
    parse_manifest,
    pgp_decryptor,
)
from oracle_core.storage import BucketUrl, UrlPolicy


def human_fixture() -> dict[str, Any]:
    """HUMAN's audio manifest fixture, restated: placeholder URLs, one label given only by
    name, no shared attributes, WER target 0.5, and details with the peer's units (seconds,
    an integer percent of honeypot audio, no boundary_tolerance)."""
    return {
        "version": 2,
        "job_type": "audio_transcription",
        "data": {
            "media_url": "https://invalid/",
            "regions_url": "https://invalid/",
            "gt_url": "https://invalid/",
        },
        "annotation": {
            "description": "Audio transcription task",
            "user_guide_url": "https://invalid/audio-transcription-guide.md",
            "labels": [{"name": "speech"}],
            "validation": {"target_score": 0.5, "target_metric": "wer"},
            "details": {
                "max_time": 1800,
                "normalizer": "basic",
                "max_segment_duration": 120,
                "min_gt_span_duration": 20,
                "min_composition": {"gt": 2, "ds": 2},
                "validation_overhead": 20,
            },
        },
    }


def test_humans_own_audio_fixture_is_accepted_with_the_peers_meaning() -> None:
    details = parse_manifest(json.dumps(human_fixture())).annotation.details
    assert details.overhead == 0.2  # 20 means 20 %
    assert details.max_time == 1800 and details.boundary_tolerance == 200
    assert details.min_gt_span_duration == 20 and details.max_segment_duration == 120
    assert (details.min_composition.gt, details.min_composition.ds) == (2, 2)


def test_the_fixture_with_the_peer_tests_bucket_objects_is_accepted() -> None:
    doc = human_fixture()
    for field, path in (
        ("media_url", "audio_test/media"),
        ("regions_url", "audio_test/regions.tsv"),
        ("gt_url", "audio_test/gt.tsv"),
    ):
        doc["data"][field] = {
            "provider": "AWS",
            "host_url": "http://minio:9000",
            "bucket_name": "datasets",
            "path": path,
            "access_key": "",
            "secret_key": "",
        }
    m = parse_manifest(json.dumps(doc))
    assert m.data.bucket("regions_url") == BucketUrl(
        "AWS", "http://minio:9000", "datasets", "audio_test/regions.tsv"
    )


def test_what_the_peer_leaves_optional_may_be_absent_or_null() -> None:
    doc = human_fixture()
    del doc["annotation"]["description"]
    doc["annotation"]["labels"] = [{"name": "speech", "type": "plain"}]
    doc["annotation"]["shared_attributes"] = [
        {"name": "gender", "type": "select", "values": ["male", "female"]},
        {"name": "note", "type": ""},  # the peer's blank type is a text input
    ]
    doc["annotation"]["details"].update(
        normalizer=None, max_time=None, boundary_tolerance=None, validation_overhead=None
    )
    m = parse_manifest(json.dumps(doc))
    assert m.annotation.description == ""
    assert m.annotation.details.normalizer is None  # null: text compared as written
    assert m.validation_spec().normalizer == "none"
    assert (m.annotation.details.max_time, m.annotation.details.validation_overhead) == (3600, 20)
    # A label that lists no attributes gets every shared one, as HUMAN's oracles give it.
    assert m.annotation.attributes_of(m.annotation.labels[0]) == ("gender", "note")
    assert m.attribute("note").type == "text"


def test_a_manifest_without_details_or_metric_gets_defaults() -> None:
    doc = human_fixture()
    del doc["annotation"]["details"]
    del doc["annotation"]["validation"]["target_metric"]
    m = parse_manifest(json.dumps(doc))
    assert m.annotation.validation.target_metric == "wer"


@pytest.mark.parametrize("value", [20, 20.0, "20"])
def test_validation_overhead_is_an_integer_percent(value: Any) -> None:
    doc = human_fixture()
    doc["annotation"]["details"]["validation_overhead"] = value
    assert parse_manifest(json.dumps(doc)).annotation.details.validation_overhead == 20


@pytest.mark.parametrize("value", [0.2, 20.5])
def test_a_fraction_of_overhead_is_refused_with_the_unit(value: float) -> None:
    doc = human_fixture()
    doc["annotation"]["details"]["validation_overhead"] = value
    with pytest.raises(ManifestError, match="integer percent"):
        parse_manifest(json.dumps(doc))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # The job launcher's AWS form (storage.ts), regional, and the legacy global form.
        (
            "https://audio-jobs.s3.eu-west-2.amazonaws.com/job/7/media",
            ("AWS", "https://s3.eu-west-2.amazonaws.com", "audio-jobs", "job/7/media"),
        ),
        (
            "https://audio-jobs.s3.amazonaws.com/job/7/gt.tsv",
            ("AWS", "https://s3.amazonaws.com", "audio-jobs", "job/7/gt.tsv"),
        ),
        (
            "https://audio.jobs.s3-us-west-1.amazonaws.com/a",
            ("AWS", "https://s3.us-west-1.amazonaws.com", "audio.jobs", "a"),
        ),
        # The job launcher's GCS form, and path style on GCS, AWS and MinIO.
        (
            "https://audio-jobs.storage.googleapis.com/job/7/media/",
            ("GCS", "https://storage.googleapis.com", "audio-jobs", "job/7/media"),
        ),
        (
            "https://storage.googleapis.com/audio-jobs/job/7",
            ("GCS", "https://storage.googleapis.com", "audio-jobs", "job/7"),
        ),
        (
            "https://s3.eu-west-2.amazonaws.com/audio-jobs/job/7",
            ("AWS", "https://s3.eu-west-2.amazonaws.com", "audio-jobs", "job/7"),
        ),
        (
            "http://minio:9000/datasets/audio_test/media",
            ("AWS", "http://minio:9000", "datasets", "audio_test/media"),
        ),
    ],
)
def test_bucket_urls_in_every_form_the_peers_write(url: str, expected: tuple[str, ...]) -> None:
    assert BucketUrl.parse(url) == BucketUrl(*expected)


def test_a_gcs_bucket_object_needs_no_host() -> None:
    assert BucketUrl.parse({"provider": "GCS", "bucket_name": "b", "path": "p/"}) == BucketUrl(
        "GCS", "https://storage.googleapis.com", "b", "p"
    )


def test_a_manifest_stored_inline_on_the_escrow_is_read_as_it_is() -> None:
    text = json.dumps(human_fixture())
    raw = manifest_bytes(text, UrlPolicy())  # no fetch: it is the manifest itself
    assert parse_manifest(raw).annotation.description == "Audio transcription task"
    assert manifest_bytes("  -----BEGIN PGP MESSAGE-----\n...", UrlPolicy()).startswith(b"-----")


def test_the_launchers_sha1_and_our_sha256_hashes_are_both_checked() -> None:
    raw = json.dumps(human_fixture()).encode()
    check_hash(raw, hashlib.sha1(raw).hexdigest())
    check_hash(raw, hashlib.sha256(raw).hexdigest().upper())
    check_hash(raw, "")  # no hash on the escrow: nothing to compare
    for wrong in (hashlib.sha1(b"x").hexdigest(), hashlib.sha256(b"x").hexdigest()):
        with pytest.raises(ManifestError, match="does not match the hash"):
            check_hash(raw, wrong)


def test_a_manifest_signed_and_encrypted_like_the_launchers_decrypts() -> None:
    """The job launcher signs with its own key and encrypts to itself and every oracle that
    publishes a `public_key` (SDK `sign_and_encrypt`)."""
    warnings.simplefilter("ignore")
    import pgpy
    from human_protocol_sdk.encryption import Encryption
    from pgpy.constants import HashAlgorithm, KeyFlags, PubKeyAlgorithm, SymmetricKeyAlgorithm

    def new_key(name: str) -> pgpy.PGPKey:
        key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048)
        key.add_uid(
            pgpy.PGPUID.new(name),
            usage={KeyFlags.Sign, KeyFlags.EncryptCommunications},
            hashes=[HashAlgorithm.SHA256],
            ciphers=[SymmetricKeyAlgorithm.AES256],
        )
        return key

    launcher, ours, recording = new_key("launcher"), new_key("exchange"), new_key("recording")
    message = Encryption(str(launcher)).sign_and_encrypt(
        json.dumps(copy.deepcopy(human_fixture())),
        [str(k.pubkey) for k in (launcher, ours, recording)],
    )
    assert parse_manifest(message, pgp_decryptor(str(ours))).annotation.labels[0].name == "speech"

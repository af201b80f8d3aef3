"""The v2 audio manifest: accepted when sound, refused with field paths when not."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import pytest

from oracle_core.manifest import ManifestError, parse_manifest, pgp_decryptor

GOOD: dict[str, Any] = {
    "version": 2,
    "job_type": "audio_transcription",
    "data": {
        "media_url": {
            "provider": "AWS",
            "host_url": "http://127.0.0.1:9000",
            "bucket_name": "requester",
            "path": "jobs/1/media",
        },
        "gt_url": "http://127.0.0.1:9000/requester/jobs/1/gt.tsv",
    },
    "annotation": {
        "description": "Transcribe every utterance",
        "labels": ["speech", {"name": "noise", "transcription": False}],
        "shared_attributes": [
            {"name": "gender", "type": "select", "values": ["male", "female", "other"]},
            {
                "name": "emotion",
                "type": "select",
                "values": ["neutral", "happy"],
                "default_value": "neutral",
                "required": False,
            },
        ],
        "validation": {"target_score": 0.2, "target_metric": "wer"},
        "details": {"max_time": 900, "boundary_tolerance": 200, "language": "en"},
    },
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    *parents, leaf = path.split(".")
    node = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return doc


def test_a_sound_manifest_parses_with_defaults() -> None:
    m = parse_manifest(json.dumps(GOOD).encode())
    assert [label.name for label in m.annotation.labels] == ["speech", "noise"]
    assert m.annotation.labels[1].transcription is False
    assert m.annotation.details.max_time == 900
    assert m.annotation.details.validation_overhead == 20  # percent, as HUMAN writes it
    assert m.annotation.details.overhead == 0.2
    assert m.data.bucket("media_url").path == "jobs/1/media"
    assert m.data.bucket("gt_url").bucket_name == "requester"
    assert m.attribute("emotion").required is False


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("version", 1, "manifest field version: Input should be 2"),
        ("job_type", "image_boxes", "manifest field job_type"),
        ("data.gt_url", ..., "manifest field data.gt_url: required field is missing"),
        ("data.media_url", "ftp://x/y", "data.media_url: 'ftp://x/y' is not a bucket URL"),
        ("annotation.validation.target_metric", "bleu", "annotation.validation.target_metric"),
        ("annotation.validation.target_score", -1, "annotation.validation.target_score"),
        ("annotation.details.validation_overhead", 0.2, "integer percent"),
        ("annotation.details.validation_overhead", 20.5, "integer percent"),
        ("annotation.details.normalizer", "klingon!", "unknown normalizer"),
        ("annotation.user_guide_url", "javascript:alert(1)", "must be an http(s) URL"),
        ("annotation.labels", [{"name": "s", "type": "skeleton"}], "annotation.labels.0.type"),
        ("annotation.details.max_tim", 5, "annotation.details.max_tim: unknown field (misspelt?)"),
        ("annotation.details.max_time", -5, "annotation.details.max_time"),
        ("annotation.labels", [], "annotation.labels"),
        ("annotation.labels", ["a", "a"], "label names must be unique"),
        (
            "annotation.labels",
            [{"name": "s", "attributes": ["accent"]}],
            "asks for undefined attribute(s) ['accent']",
        ),
        ("annotation.labels", [{"name": "n", "transcription": False}], "wer needs a label"),
        (
            "annotation.validation",
            {"target_score": 1.5, "target_metric": "boundary_f1"},
            "a boundary_f1 target is a share",
        ),
        ("annotation.shared_attributes", [{"name": "age", "type": "select"}], "needs values"),
        (
            "annotation.shared_attributes",
            [{"name": "g", "values": ["m"], "default_value": "x"}],
            "is not one of its values",
        ),
    ],
)
def test_unsound_manifests_name_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifest(json.dumps(with_change(path, value)))
    assert any(message in p for p in err.value.problems), err.value.problems


def test_a_segmentation_job_needs_no_transcription() -> None:
    doc = with_change("annotation.labels", [{"name": "speech", "transcription": False}])
    doc["annotation"]["validation"] = {"target_score": 0.8, "target_metric": "boundary_f1"}
    parsed = parse_manifest(json.dumps(doc))
    assert parsed.validation_spec(clip_ms=60_000).metric == "boundary_f1"


def test_not_json_is_refused() -> None:
    with pytest.raises(ManifestError, match="not JSON"):
        parse_manifest(b"{version: 2")


def test_encrypted_manifests_decrypt_with_the_oracle_key() -> None:
    warnings.simplefilter("ignore")
    import pgpy
    from human_protocol_sdk.encryption import EncryptionUtils
    from pgpy.constants import HashAlgorithm, KeyFlags, PubKeyAlgorithm, SymmetricKeyAlgorithm

    def new_key() -> pgpy.PGPKey:
        key = pgpy.PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, 2048)
        key.add_uid(
            pgpy.PGPUID.new("oracle"),
            usage={KeyFlags.EncryptCommunications},
            hashes=[HashAlgorithm.SHA256],
            ciphers=[SymmetricKeyAlgorithm.AES256],
        )
        return key

    ours, theirs = new_key(), new_key()
    message = EncryptionUtils.encrypt(json.dumps(GOOD), [str(ours.pubkey)])
    assert parse_manifest(message, pgp_decryptor(str(ours))).version == 2
    with pytest.raises(ManifestError, match="could not be decrypted"):
        parse_manifest(message, pgp_decryptor(str(theirs)))
    with pytest.raises(ManifestError, match="no PGP key"):
        parse_manifest(message)


def test_per_segment_languages_become_a_language_attribute() -> None:
    doc = copy.deepcopy(GOOD)
    doc["annotation"]["details"]["languages"] = ["fr", "ar"]
    doc["annotation"]["labels"] = [{"name": "speech", "attributes": ["gender"]}, "noise"]
    parsed = parse_manifest(json.dumps(doc)).annotation
    (language,) = [a for a in parsed.shared_attributes if a.name == "language"]
    assert language.values == ["en", "fr", "ar"] and language.default_value == "en"
    assert not language.required
    assert list(parsed.attributes_of(parsed.labels[0])) == ["gender", "language"]
    again = parse_manifest(json.dumps({**doc, "annotation": parsed.model_dump(mode="json")}))
    assert [a.name for a in again.annotation.shared_attributes].count("language") == 1

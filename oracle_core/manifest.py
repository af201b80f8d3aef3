"""The job manifest (version 2, `audio_transcription`), read strictly.

Every problem is reported with the field's path, in words a requester can act on:
"manifest field annotation.validation.target_metric: must be one of wer, cer, accuracy".
Manifests may arrive PGP-encrypted to the oracle's key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.normalize import get_normalizer
from audio_pipeline.validation import AnnotationRules, AttributeRule, LabelRule, ValidationSpec
from oracle_core.storage import BucketUrl, StorageError, UnsafeUrlError, UrlPolicy, fetch_url

AttributeType = Literal["select", "radio", "checkbox", "text", "number"]
SPEAKER_ATTRIBUTES = ("gender", "age", "locale", "accent", "emotion")


class ManifestError(ValueError):
    """A manifest we cannot run; `problems` lists each field and what is wrong with it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DataUrl = str | dict[str, Any]


class Data(_Strict):
    media_url: DataUrl
    gt_url: DataUrl
    regions_url: DataUrl | None = None

    @field_validator("media_url", "gt_url", "regions_url")
    @classmethod
    def _bucket_or_url(cls, value: DataUrl | None) -> DataUrl | None:
        if value is not None:
            BucketUrl.parse(value)  # raises ValueError with the reason
        return value

    def bucket(self, name: str) -> BucketUrl:
        return BucketUrl.parse(getattr(self, name))


class SharedAttribute(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    type: AttributeType = "select"
    values: list[str] = Field(default_factory=list)
    default_value: str = ""
    required: bool = True

    @model_validator(mode="after")
    def _values_fit_type(self) -> SharedAttribute:
        if self.type in ("select", "radio") and not self.values:
            raise ValueError(f"attribute '{self.name}' of type {self.type} needs values")
        if self.default_value and self.values and self.default_value not in self.values:
            raise ValueError(f"default_value '{self.default_value}' is not one of its values")
        return self


class Label(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    transcription: bool = True  # segments with this label need a non-empty transcription
    attributes: list[str] = Field(default_factory=list)  # shared attributes this label asks for


class Validation(_Strict):
    target_score: Annotated[float, Field(ge=0, le=1)]
    target_metric: Literal["wer", "cer", "accuracy"]


class MinComposition(_Strict):
    gt: Annotated[int, Field(ge=0)] = 1
    ds: Annotated[int, Field(ge=0)] = 1


class Details(_Strict):
    max_time: Annotated[int, Field(gt=0, le=86_400)] = 3600
    clip_duration: Annotated[float, Field(ge=5, le=3600)] = 60.0
    normalizer: str = "basic"
    language: str = "en"
    max_segment_duration: Annotated[float, Field(gt=0, le=3600)] = 15.0
    min_gt_span_duration: Annotated[float, Field(ge=0)] = 0.5
    min_composition: MinComposition = MinComposition()
    validation_overhead: Annotated[float, Field(ge=0, lt=1)] = 0.2
    boundary_tolerance: Annotated[int, Field(ge=0, le=5000)] = 200
    pause_ms: Annotated[int, Field(ge=0, le=10_000)] = 700
    allow_overlap: bool = False
    export_formats: list[str] = Field(default_factory=lambda: ["native"])

    @field_validator("export_formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        from audio_pipeline.exporters import EXPORTERS

        unknown = [f for f in value if f not in EXPORTERS]
        if unknown:
            raise ValueError(f"unknown export format(s) {unknown}: use {', '.join(EXPORTERS)}")
        return value

    @field_validator("normalizer")
    @classmethod
    def _known_normalizer(cls, value: str) -> str:
        try:
            get_normalizer(value)
        except InvalidParameterError as exc:
            raise ValueError(str(exc)) from None
        return value


class Annotation(_Strict):
    description: Annotated[str, Field(min_length=1)]
    user_guide_url: str = ""
    labels: Annotated[list[Label], Field(min_length=1)]
    shared_attributes: list[SharedAttribute] = Field(default_factory=list)
    validation: Validation
    qualifications: list[str] = Field(default_factory=list)
    details: Details = Details()

    @field_validator("labels", mode="before")
    @classmethod
    def _plain_names(cls, value: Any) -> Any:
        """A label may be just its name."""
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> Annotation:
        names = [label.name for label in self.labels]
        if len(set(names)) != len(names):
            raise ValueError("label names must be unique")
        known = {a.name for a in self.shared_attributes}
        for label in self.labels:
            unknown = [a for a in label.attributes if a not in known]
            if unknown:
                raise ValueError(f"label '{label.name}' asks for undefined attribute(s) {unknown}")
        if self.validation.target_metric in ("wer", "cer") and not any(
            label.transcription for label in self.labels
        ):
            raise ValueError(f"{self.validation.target_metric} needs a label with transcription")
        return self

    def rules(self, clip_ms: int | None = None) -> AnnotationRules:
        """What a complete annotation of one clip looks like under this manifest."""
        return AnnotationRules(
            labels={
                lb.name: LabelRule(lb.name, lb.transcription, tuple(lb.attributes))
                for lb in self.labels
            },
            attributes={
                s.name: AttributeRule(
                    s.name, tuple(s.values) if s.type in ("select", "radio") else (), s.required
                )
                for s in self.shared_attributes
            },
            allow_overlap=self.details.allow_overlap,
            max_segment_ms=round(self.details.max_segment_duration * 1000),
            clip_ms=clip_ms,
        )

    def validation_spec(self, clip_ms: int | None = None) -> ValidationSpec:
        return ValidationSpec(
            metric=self.validation.target_metric,
            target=self.validation.target_score,
            rules=self.rules(clip_ms),
            normalizer=self.details.normalizer,
            tolerance_ms=self.details.boundary_tolerance,
        )


class Manifest(_Strict):
    version: Literal[2]
    job_type: Literal["audio_transcription"]
    data: Data
    annotation: Annotation

    def attribute(self, name: str) -> SharedAttribute:
        return next(a for a in self.annotation.shared_attributes if a.name == name)

    def validation_spec(self, clip_ms: int | None = None) -> ValidationSpec:
        return self.annotation.validation_spec(clip_ms)


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (misspelt?)"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(f"manifest field {path or '(top level)'}: {message}")
    return problems


def parse_manifest(raw: bytes | str, decrypt: Callable[[str], bytes] | None = None) -> Manifest:
    """JSON (or a PGP message, given `decrypt`) into a checked Manifest; ManifestError if not."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if text.lstrip().startswith("-----BEGIN PGP MESSAGE-----"):
        if decrypt is None:
            raise ManifestError(["manifest is PGP-encrypted but this oracle has no PGP key"])
        try:
            text = decrypt(text).decode("utf-8")
        except Exception as exc:  # pgpy raises many types for the wrong key or a damaged message
            raise ManifestError(
                [f"manifest could not be decrypted with this oracle's key: {exc}"]
            ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError([f"manifest is not JSON (line {exc.lineno}: {exc.msg})"]) from None
    try:
        return Manifest.model_validate(doc)
    except ValidationError as exc:
        raise ManifestError(_describe(exc)) from None


def load_manifest(
    url: str, manifest_hash: str, policy: UrlPolicy, decrypt: Callable[[str], bytes] | None
) -> Manifest:
    """Fetch (URL policy applied), check against the escrow's hash, decrypt, parse."""
    try:
        raw = fetch_url(url, policy)
    except (StorageError, UnsafeUrlError) as exc:
        raise ManifestError([f"manifest {url}: {exc}"]) from None
    if len(manifest_hash) == 64 and hashlib.sha256(raw).hexdigest() != manifest_hash.lower():
        raise ManifestError(["manifest does not match the hash stored on the escrow"])
    return parse_manifest(raw, decrypt)


def pgp_decryptor(
    private_key_armored: str, passphrase: str | None = None
) -> Callable[[str], bytes]:
    from human_protocol_sdk.encryption import Encryption

    encryption = Encryption(private_key_armored, passphrase)
    return encryption.decrypt

"""The job manifest (version 2, `audio_transcription`), read strictly.

Every problem is reported with the field's path, in words a requester can act on:
"manifest field annotation.validation.target_metric: must be one of wer, cer, accuracy".
Manifests may arrive PGP-encrypted (and signed) to the oracle's key, by URL or inline on
the escrow. Fields mean what HUMAN's own audio oracles read them as: `validation_overhead`
is an integer percent, `max_segment_duration` and `min_gt_span_duration` limit the input
regions and ground-truth spans (seconds), `null` leaves a field at its default (for
`normalizer`, no normalisation). Our extra fields all have defaults.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audio_pipeline.errors import InvalidParameterError
from audio_pipeline.normalize import get_normalizer
from audio_pipeline.validation import (
    AnnotationRules,
    AttributeRule,
    AttributeTarget,
    LabelRule,
    ValidationSpec,
)
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
    # Ours: a folder of existing annotations, one file per media file named after it
    # (talk.mp3 -> talk.srt / .vtt / .TextGrid / .rttm / .tsv), the job's starting segments.
    pre_annotations_url: DataUrl | None = None
    points_url: DataUrl | None = None  # image tasks' fields in HUMAN's schema: unused here
    boxes_url: DataUrl | None = None

    @field_validator("media_url", "gt_url", "regions_url", "pre_annotations_url")
    @classmethod
    def _bucket_or_url(cls, value: DataUrl | None) -> DataUrl | None:
        """A bucket object is checked whole here; a URL only for its form (HUMAN's own
        fixtures carry placeholders like `https://invalid/`): what it names is found out,
        and reported, when the escrow is built."""
        if isinstance(value, dict):
            BucketUrl.parse(value)  # raises ValueError with the reason
        elif value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"'{value}' is not a bucket URL (scheme://host/bucket/path)")
        return value

    def bucket(self, name: str) -> BucketUrl:
        return BucketUrl.parse(getattr(self, name))


class SharedAttribute(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    type: AttributeType = "select"
    values: list[str] = Field(default_factory=list)
    default_value: str = ""
    required: bool = True

    @field_validator("type", mode="before")
    @classmethod
    def _blank_is_text(cls, value: Any) -> Any:
        return "text" if value == "" else value  # HUMAN's oracles read "" as a text input

    @model_validator(mode="after")
    def _values_fit_type(self) -> SharedAttribute:
        if self.type in ("select", "radio") and not self.values:
            raise ValueError(f"attribute '{self.name}' of type {self.type} needs values")
        if self.default_value and self.values and self.default_value not in self.values:
            raise ValueError(f"default_value '{self.default_value}' is not one of its values")
        return self


class Label(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    type: Literal["plain", "interval"] = "plain"  # HUMAN's label type; both mean an interval
    transcription: bool = True  # segments with this label need a non-empty transcription
    # Shared attributes this label asks for; left out, every shared attribute (as HUMAN's
    # oracles give each label all of them).
    attributes: list[str] | None = None


class AttributeScoring(_Strict):
    """How one attribute is scored on the honeypots whose ground truth gives it a value:
    `exact` match, `adjacent` (a neighbour in the attribute's ordered values counts, as
    for age buckets), or `none`; the lowest accuracy accepted, and its weight in the
    assignment's quality beside the transcription's (1)."""

    scoring: Literal["exact", "adjacent", "none"] = "exact"
    target: Annotated[float, Field(ge=0, le=1)] = 0.7
    weight: Annotated[float, Field(ge=0)] = 1.0


class Validation(_Strict):
    # For wer/cer the highest error rate accepted; for accuracy (labels right, within the
    # tolerance) and boundary_f1 (segmentation only) the lowest share accepted.
    target_score: Annotated[float, Field(ge=0)]
    # HUMAN's exchange oracle defaults to accuracy, which its recording oracle cannot score
    # for audio; a transcription job missing the metric is scored by WER here.
    target_metric: Literal["wer", "cer", "accuracy", "boundary_f1"] = "wer"
    # Ours: attributes scored on honeypots (emotion, gender, age, ...), by attribute name.
    attributes: dict[str, AttributeScoring] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _accuracy_is_a_share(self) -> Validation:
        if self.target_metric in ("accuracy", "boundary_f1") and self.target_score > 1:
            raise ValueError(f"a {self.target_metric} target is a share between 0 and 1")
        return self


class MinComposition(_Strict):
    gt: Annotated[int, Field(ge=0)] = 1  # honeypots per clip, at least
    ds: Annotated[int, Field(ge=0)] = 1  # data regions per clip, at least (while data lasts)


def _whole_percent(value: Any) -> Any:
    """HUMAN's `validation_overhead`: an integer percent (20 = 20 %); 20.0 and "20" too."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value  # pydantic names the type error
    if not number.is_integer():
        raise ValueError(f"is an integer percent of honeypot audio (20 means 20 %), not {value!r}")
    return int(number)


class Practice(_Strict):
    """Ours: the practice clip made of the ground-truth spans marked `practice`. A worker's
    first job in the escrow starts with it, scored the moment it is submitted."""

    # True: a worker must pass it to work on the escrow (and is turned away after
    # `attempts` misses); False: it is offered, its feedback shown, and may be skipped.
    required: bool = False
    attempts: Annotated[int, Field(ge=1, le=5)] = 2
    target_score: Annotated[float, Field(ge=0)] | None = None  # default: validation's
    max_duration: Annotated[float, Field(ge=5, le=600)] = 60.0  # s of practice audio


class Details(_Strict):
    max_time: Annotated[int, Field(gt=0, le=86_400)] = 3600  # s per assignment
    clip_duration: Annotated[float, Field(ge=5, le=3600)] = 60.0
    normalizer: str | None = "basic"  # null: compare text as written
    language: str = "en"
    # Input regions and ground-truth spans longer than this (s) are not used, as in HUMAN's
    # oracles; annotated segments are limited by max_annotated_segment_duration (ours).
    max_segment_duration: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    max_annotated_segment_duration: Annotated[float, Field(gt=0, le=3600)] | None = None
    min_gt_span_duration: Annotated[float, Field(ge=0)] = 0.5  # s; shorter spans are dropped
    min_composition: MinComposition = MinComposition()
    validation_overhead: Annotated[int, Field(ge=0, le=90)] = 20  # percent of a clip's audio
    boundary_tolerance: Annotated[int, Field(ge=0, le=5000)] = 200  # ms
    pause_ms: Annotated[int, Field(ge=0, le=10_000)] = 700
    allow_overlap: bool = False
    export_formats: list[str] = Field(default_factory=lambda: ["native"])
    # Shares of the exported audio per split (by speaker); see audio_pipeline.exports.
    export_splits: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.8, "dev": 0.1, "test": 0.1}
    )
    practice: Practice = Practice()  # used when the ground truth marks practice spans
    # Ours: languages a segment may be in, for multilingual audio (each segment gets a
    # `language` attribute, defaulting to `language`); empty: the whole job is `language`.
    languages: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, value: Any) -> Any:
        """HUMAN's manifests write `null` for "the default" (except `normalizer`)."""
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None or k == "normalizer"}
        return value

    @field_validator("validation_overhead", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        return _whole_percent(value)

    @property
    def overhead(self) -> float:
        """validation_overhead as a fraction of a clip."""
        return self.validation_overhead / 100

    @field_validator("export_formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        from audio_pipeline.exports import EXPORTERS

        unknown = [f for f in value if f not in EXPORTERS]
        if unknown:
            raise ValueError(f"unknown export format(s) {unknown}: use {', '.join(EXPORTERS)}")
        return value

    @field_validator("export_splits")
    @classmethod
    def _split_shares(cls, value: dict[str, float]) -> dict[str, float]:
        from audio_pipeline.errors import InvalidParameterError
        from audio_pipeline.exports import ExportOptions

        try:
            ExportOptions(ratios=value)
        except InvalidParameterError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _formats_hold_the_language(self) -> Details:
        from audio_pipeline.exports import ENGLISH_ONLY
        from audio_pipeline.exports.common import ENGLISH_ONLY_ALTERNATIVES, language_of

        english = [f for f in self.export_formats if f in ENGLISH_ONLY]
        if english and language_of(self.language) != "en":
            raise ValueError(
                f"export format(s) {english} hold English only and the language is "
                f"'{self.language}': use {ENGLISH_ONLY_ALTERNATIVES}"
            )
        return self

    @field_validator("normalizer")
    @classmethod
    def _known_normalizer(cls, value: str | None) -> str | None:
        try:
            get_normalizer(value or "none")
        except InvalidParameterError as exc:
            raise ValueError(str(exc)) from None
        return value


LANGUAGE = "language"  # the per-segment language attribute (details.languages)


class Annotation(_Strict):
    description: str = ""
    user_guide_url: str = ""
    labels: Annotated[list[Label], Field(min_length=1)]
    shared_attributes: list[SharedAttribute] = Field(default_factory=list)
    validation: Validation
    qualifications: list[str] = Field(default_factory=list)
    details: Details = Details()

    @model_validator(mode="before")
    @classmethod
    def _segment_languages(cls, data: Any) -> Any:
        """`details.languages` as a `language` attribute of every transcription label (not
        required; the job's language is its default), unless the requester defined one."""
        if not isinstance(data, dict) or not isinstance(data.get("details"), dict):
            return data
        details = data["details"]
        languages = details.get("languages")
        shared = list(data.get("shared_attributes") or [])
        if not isinstance(languages, list) or not languages:
            return data
        if any(isinstance(a, dict) and a.get("name") == LANGUAGE for a in shared):
            return data
        default = str(details.get("language") or "en")
        values = list(dict.fromkeys([default, *map(str, languages)]))
        shared.append(
            {"name": LANGUAGE, "type": "select", "values": values, "default_value": default,
             "required": False}
        )  # fmt: skip
        labels = [
            {**lb, "attributes": [*lb["attributes"], LANGUAGE]}
            if isinstance(lb, dict)
            and lb.get("attributes") is not None
            and lb.get("transcription", True)
            and LANGUAGE not in lb["attributes"]
            else lb
            for lb in data.get("labels") or []
        ]
        return {**data, "shared_attributes": shared, "labels": labels}

    @field_validator("user_guide_url")
    @classmethod
    def _guide_is_a_web_page(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL (it becomes a link on the worker's page)")
        return value

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
            unknown = [a for a in label.attributes or [] if a not in known]
            if unknown:
                raise ValueError(f"label '{label.name}' asks for undefined attribute(s) {unknown}")
        if self.validation.target_metric in ("wer", "cer") and not any(
            label.transcription for label in self.labels
        ):
            raise ValueError(f"{self.validation.target_metric} needs a label with transcription")
        return self

    def attributes_of(self, label: Label) -> tuple[str, ...]:
        if label.attributes is None:
            return tuple(a.name for a in self.shared_attributes)
        return tuple(label.attributes)

    def rules(self, clip_ms: int | None = None) -> AnnotationRules:
        """What a complete annotation of one clip looks like under this manifest."""
        return AnnotationRules(
            labels={
                lb.name: LabelRule(lb.name, lb.transcription, self.attributes_of(lb))
                for lb in self.labels
            },
            attributes={
                s.name: AttributeRule(
                    s.name, tuple(s.values) if s.type in ("select", "radio") else (), s.required
                )
                for s in self.shared_attributes
            },
            allow_overlap=self.details.allow_overlap,
            max_segment_ms=(
                round(self.details.max_annotated_segment_duration * 1000)
                if self.details.max_annotated_segment_duration
                else None
            ),
            clip_ms=clip_ms,
        )

    def validation_spec(self, clip_ms: int | None = None) -> ValidationSpec:
        shared = {a.name: a for a in self.shared_attributes}
        return ValidationSpec(
            metric=self.validation.target_metric,
            target=self.validation.target_score,
            rules=self.rules(clip_ms),
            normalizer=self.details.normalizer or "none",
            tolerance_ms=self.details.boundary_tolerance,
            attributes=tuple(
                AttributeTarget(
                    name, how.scoring, how.target, how.weight, tuple(shared[name].values)
                )
                for name, how in sorted(self.validation.attributes.items())
                if how.scoring != "none"
            ),
        )

    @model_validator(mode="after")
    def _scored_attributes_exist(self) -> Annotation:
        known = {a.name for a in self.shared_attributes}
        unknown = sorted(set(self.validation.attributes) - known)
        if unknown:
            raise ValueError(
                f"validation.attributes names {unknown}, which are not among the "
                f"shared_attributes {sorted(known)}"
            )
        for name, how in self.validation.attributes.items():
            attribute = next(a for a in self.shared_attributes if a.name == name)
            if how.scoring == "adjacent" and len(attribute.values) < 3:
                raise ValueError(f"attribute {name}: adjacent scoring needs ordered values")
        return self


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


def manifest_bytes(reference: str, policy: UrlPolicy) -> bytes:
    """The manifest an escrow names: fetched when `reference` is a URL, else the manifest
    itself (HUMAN's oracles accept JSON or a PGP message stored on the escrow)."""
    text = reference.strip()
    if text.startswith("{") or text.startswith("-----BEGIN PGP"):
        return text.encode()
    try:
        return fetch_url(reference, policy)
    except (StorageError, UnsafeUrlError) as exc:
        raise ManifestError([f"manifest {reference}: {exc}"]) from None


def check_hash(raw: bytes, manifest_hash: str) -> None:
    """The escrow's manifest hash: sha256 (ours) or sha1 (HUMAN's job launcher) in hex; any
    other form is not a digest we can check."""
    digest = manifest_hash.lower().removeprefix("0x")
    algorithm = {64: hashlib.sha256, 40: hashlib.sha1}.get(len(digest))
    if algorithm is not None and algorithm(raw).hexdigest() != digest:
        raise ManifestError(["manifest does not match the hash stored on the escrow"])


def load_manifest(
    url: str, manifest_hash: str, policy: UrlPolicy, decrypt: Callable[[str], bytes] | None
) -> Manifest:
    """Fetch (URL policy applied) or read inline, check against the escrow's hash, decrypt,
    parse."""
    raw = manifest_bytes(url, policy)
    check_hash(raw, manifest_hash)
    return parse_manifest(raw, decrypt)


def pgp_decryptor(
    private_key_armored: str, passphrase: str | None = None
) -> Callable[[str], bytes]:
    """Decrypts with this oracle's key, in a child process with bounded memory and time
    (`oracle_core.pgp.decrypt_bounded`): a manifest is never a decompression bomb."""
    from oracle_core.pgp import decrypt_bounded

    return lambda message: decrypt_bounded(message, private_key_armored, passphrase)

"""What an escrow is built from: its manifest, the requester's media listing, ground truth
and regions, all read through the URL policy; and which parts of the media are annotated.
Every problem the requester can fix is a BuildFailed with words they can act on."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from exchange_oracle.packing import HONEYPOT_CONTEXT_MS, SourceFile, subtract
from oracle_core.ground_truth import (
    DataRegion,
    GroundTruthError,
    GtSpan,
    read_regions,
)
from oracle_core.ground_truth import read_gt as read_ground_truth
from oracle_core.manifest import Manifest, ManifestError, load_manifest
from oracle_core.storage import ObjectStorage, StorageError, UnsafeUrlError

if TYPE_CHECKING:
    from exchange_oracle.build import BuildContext

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".webm"}
MAX_FILE_BYTES = 2 * 1024**3


class BuildFailed(Exception):
    """The escrow cannot be built as it stands; the reason is for the requester."""


def read_gt(text: str, attributes: Collection[str] | None = None) -> list[GtSpan]:
    try:
        return read_ground_truth(text, attributes)
    except GroundTruthError as exc:
        raise BuildFailed(str(exc)) from None


def fetch_manifest(ctx: BuildContext, url: str, manifest_hash: str) -> Manifest:
    try:
        return load_manifest(url, manifest_hash, ctx.policy, ctx.settings.manifest_decryptor())
    except ManifestError as exc:
        raise BuildFailed(str(exc)) from None


@dataclass(frozen=True)
class MediaFile:
    name: str  # relative to media_url, as ground truth names it
    key: str
    size: int


def read_text(ctx: BuildContext, manifest: Manifest, field: str) -> str:
    """A TSV the manifest names (gt_url, regions_url), through the URL policy."""
    where = manifest.data.bucket(field)
    try:
        store = ObjectStorage.for_bucket(where, ctx.policy)
        return store.get(where.bucket_name, where.path).decode("utf-8")
    except (StorageError, UnsafeUrlError, ValueError) as exc:
        raise BuildFailed(f"data.{field}: {exc}") from None


def regions_of(text: str | None) -> list[DataRegion] | None:
    if not text:
        return None
    try:
        return read_regions(text)
    except GroundTruthError as exc:
        raise BuildFailed(str(exc)) from None


def list_media(ctx: BuildContext, manifest: Manifest) -> tuple[list[MediaFile], str]:
    """The audio files under media_url, and the ground truth text."""
    try:
        media = manifest.data.bucket("media_url")
        source = ObjectStorage.for_bucket(media, ctx.policy)
        files = []
        for key, size in source.list(media.bucket_name, media.path):
            name = (
                PurePosixPath(key).relative_to(media.path or ".").as_posix() if media.path else key
            )
            if PurePosixPath(key).suffix.lower() not in AUDIO_SUFFIXES:
                continue
            if size > MAX_FILE_BYTES:
                raise BuildFailed(f"media file {name} is {size} bytes, over the limit")
            files.append(MediaFile(name, key, size))
    except (StorageError, UnsafeUrlError, ValueError) as exc:
        raise BuildFailed(f"data.media_url: {exc}") from None
    gt_text = read_text(ctx, manifest, "gt_url")
    if not files:
        raise BuildFailed(f"no audio files under {media.url}")
    s = ctx.settings
    if len(files) > s.max_escrow_files:
        raise BuildFailed(
            f"{len(files)} media files: this oracle takes at most {s.max_escrow_files} per "
            "escrow (MAX_ESCROW_FILES)"
        )
    total = sum(f.size for f in files)
    if total > s.max_escrow_bytes:
        raise BuildFailed(
            f"{total} bytes of media: this oracle takes at most {s.max_escrow_bytes} per "
            "escrow (MAX_ESCROW_BYTES)"
        )
    return files, gt_text


def download(ctx: BuildContext, manifest: Manifest, key: str, path: Path) -> Path:
    media = manifest.data.bucket("media_url")
    try:
        return ObjectStorage.for_bucket(media, ctx.policy).download(media.bucket_name, key, path)
    except UnsafeUrlError as exc:
        raise BuildFailed(f"data: {exc}") from None


def data_sources(
    files: Sequence[Any], regions: list[DataRegion] | None, gt: list[GtSpan]
) -> list[SourceFile]:
    """What is annotated: with no regions file, every file that holds no ground truth;
    with one, exactly its regions, less every ground-truth span (with the context a
    honeypot carries) in the same recording, so no answer is ever cut into a data clip."""
    speech = {f.name: tuple((a, b) for a, b in f.speech) for f in files}
    if regions is None:
        return [
            SourceFile(f.name, f.duration_ms, speech[f.name]) for f in files if not f.ground_truth
        ]
    out = []
    for f in files:
        parts = [
            (r.start_ms, min(r.end_ms, f.duration_ms)) for r in regions if r.filename == f.name
        ]
        holes = [
            (s.start_ms - HONEYPOT_CONTEXT_MS, s.end_ms + HONEYPOT_CONTEXT_MS)
            for s in gt
            if s.filename == f.name
        ]
        kept = tuple(subtract([p for p in parts if p[1] > p[0]], holes))
        if kept:
            out.append(SourceFile(f.name, f.duration_ms, speech[f.name], kept))
    return out

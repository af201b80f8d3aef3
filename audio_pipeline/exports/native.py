"""Ours, with every field: segments.json, segments.tsv (attributes as JSON) and clips/<id>.wav,
plus metadata.jsonl so that HuggingFace `datasets` (audiofolder) loads it as it is."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from audio_pipeline.exports.common import (
    Exported,
    ExportOptions,
    ExportSegment,
    OpenAudio,
    iter_encoded,
    one_line,
    segment_language,
    tsv,
)

NATIVE_FIELDS = ["id", "file", "start_ms", "end_ms", "label", "transcription", "attributes",
                 "annotator", "audio"]  # fmt: skip


def native(
    segments: Sequence[ExportSegment], open_audio: OpenAudio, out_dir: Path, options: ExportOptions
) -> Exported:
    out = Exported("native", out_dir)
    docs: list[dict[str, object]] = [{} for _ in segments]
    for i, data in iter_encoded(segments, open_audio, 16_000, "wav"):
        seg, uid = segments[i], f"{i + 1:06d}"
        out.write(f"clips/{uid}.wav", data)
        docs[i] = {
            "id": uid, "file": seg.file, "start_ms": seg.start_ms, "end_ms": seg.end_ms,
            "label": seg.label, "transcription": seg.transcription,
            "attributes": dict(seg.attributes), "annotator": seg.annotator,
            "audio": f"clips/{uid}.wav",
        }  # fmt: skip
    out.write("segments.json", json.dumps(docs, indent=1, ensure_ascii=False) + "\n")
    out.write(
        "segments.tsv",
        tsv(NATIVE_FIELDS, [
            [json.dumps(d[f], sort_keys=True, ensure_ascii=False) if f == "attributes"
             else one_line(str(d[f])) for f in NATIVE_FIELDS]
            for d in docs
        ]),
    )  # fmt: skip
    flat = []
    for seg, d in zip(segments, docs, strict=True):
        row = {"file_name": d["audio"], "id": d["id"], "source": seg.file,
               "start_s": seg.start_ms / 1000, "end_s": seg.end_ms / 1000, "label": seg.label,
               "transcription": seg.transcription, "speaker": seg.speaker,
               "locale": segment_language(seg, options)}  # fmt: skip
        row.update({k: v for k, v in seg.attributes.items() if k not in row})
        flat.append(json.dumps(row, ensure_ascii=False))
    out.write("metadata.jsonl", "\n".join(flat) + "\n")
    out.readme(
        "Layout: segments.json, segments.tsv (attributes as JSON; text made one line), "
        "clips/<id>.wav (16 kHz), and metadata.jsonl (file_name plus flat fields): "
        "datasets.load_dataset('audiofolder', data_dir=this folder)."
    )
    return out

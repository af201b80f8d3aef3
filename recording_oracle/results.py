"""The final results of an escrow, assembled from accepted work: annotations in source time
with honeypots removed, `validation_meta.json`, `payouts.json`, packed in a zip whose bytes
depend only on its contents (so a rebuilt archive has the same sha256)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audio_pipeline.clips import TimeMap
from audio_pipeline.segments import Segment, write_generic_tsv
from audio_pipeline.validation import Interval

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class FinalJob:
    """A job's last accepted assignment."""

    job_id: int
    clip: str
    assignment_id: str
    wallet: str
    intervals: Sequence[Interval]
    time_map: TimeMap
    honeypots: Sequence[tuple[int, int]] = ()  # clip ranges of the honeypot pieces


def source_rows(final: Sequence[FinalJob]) -> list[dict[str, Any]]:
    """Every accepted segment placed in its source file; segments on honeypots and in the
    pauses between regions are left out (data cut from a ground-truth recording stays)."""
    rows = []
    for job in final:
        for iv in job.intervals:
            placed = job.time_map.place(iv.start_ms, iv.end_ms)
            on_honeypot = any(iv.start_ms < b and a < iv.end_ms for a, b in job.honeypots)
            if placed is None or on_honeypot:
                continue
            rows.append(
                {
                    "file": placed.source,
                    "start_ms": placed.start_ms,
                    "end_ms": placed.end_ms,
                    "label": iv.label,
                    "transcription": iv.transcription,
                    "attributes": dict(sorted(iv.attributes.items())),
                    "source": iv.source,
                    "job_id": job.job_id,
                    "assignment_id": job.assignment_id,
                    "annotator_wallet_address": job.wallet,
                }
            )
    rows.sort(key=lambda r: (r["file"], r["start_ms"], r["end_ms"]))
    return rows


def generic_tsv(rows: Sequence[Mapping[str, Any]]) -> str:
    return write_generic_tsv(
        Segment(
            start=r["start_ms"] / 1000,
            end=r["end_ms"] / 1000,
            label=r["label"],
            transcription=r["transcription"],
            attributes=dict(r["attributes"]),
            filename=r["file"],
            source=r.get("source", "manual"),
        )
        for r in rows
    )


def payouts(
    final: Sequence[FinalJob], remaining_funds: int, jobs_total: int
) -> tuple[int, list[dict[str, Any]]]:
    """Each accepted job earns an equal share of the escrow's remaining funds; shares are
    summed per wallet. The total never exceeds the remaining funds."""
    share = remaining_funds // max(1, jobs_total)
    per_wallet: dict[str, dict[str, Any]] = {}
    for job in final:
        entry = per_wallet.setdefault(job.wallet, {"wallet": job.wallet, "amount": 0, "jobs": 0})
        entry["amount"] += share
        entry["jobs"] += 1
    rows = [
        {**e, "amount": str(e["amount"])}
        for e in sorted(per_wallet.values(), key=lambda e: e["wallet"])
    ]
    return share, rows


def validation_meta(scored: Sequence[Any], final: Mapping[int, Any]) -> dict[str, Any]:
    """`validation_meta.json` as HUMAN's reputation oracle reads it: `jobs[].final_result_id`
    pointing at `results[].id` (integers), each result with `annotator_wallet_address` and
    `annotation_quality` (the error rate for WER/CER, as HUMAN's recording oracle writes
    it). It pays `reserved funds / matched jobs` to each job's final result, whatever its
    quality, so only accepted jobs are listed in `jobs`. Our fields ride along."""
    ids = {row.assignment_id: n for n, row in enumerate(scored)}
    return {
        "jobs": [
            {
                "job_id": job_id,
                "final_result_id": ids[final[job_id].assignment_id],
                "final_assignment_id": final[job_id].assignment_id,
            }
            for job_id in sorted(final)
        ],
        "results": [
            {
                "id": ids[r.assignment_id],
                "job_id": r.job_id,
                "annotator_wallet_address": r.wallet_address,
                "annotation_quality": round(
                    r.value if r.metric in ("wer", "cer") and r.value is not None else r.quality,
                    6,
                ),
                "assignment_id": r.assignment_id,
                "quality": round(r.quality, 6),
                "metric": r.metric,
                "value": None if r.value is None else round(r.value, 6),
                "passed": r.passed,
                "reasons": list(r.reasons),
                "honeypots": r.honeypots,
                "attributes": list(r.attributes or []),
                "iteration": r.iteration,
            }
            for r in scored
        ],
    }


def dump(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def member_name(name: str) -> str:
    """A zip member inside the archive: no absolute path, no `..` (a requester names the
    source files, and those names reach the exports)."""
    parts = [
        p if p != ".." else "__" for p in name.replace("\\", "/").split("/") if p not in ("", ".")
    ]
    return "/".join(parts) or "_"


def archive(files: Mapping[str, bytes]) -> bytes:
    """A zip of `files` with fixed timestamps and order: same contents, same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(member_name(name), date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name], compresslevel=6)
    return buf.getvalue()

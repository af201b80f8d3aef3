"""The bucket layout HUMAN's CVAT audio oracles hand each other, so that either of ours can
pair with HUMAN's other one (humanprotocol/human-protocol b5223363: the exchange oracle's
`core/tasks/audio_transcription/meta.py`, `handlers/job_completion/validators/audio.py`,
`core/annotation_meta.py`; the recording oracle's `quality_checkers/audio.py`).

In the exchange oracle's bucket:
- `{escrow}@{chain}/gt.tsv`: the requester's ground truth, verbatim. A row's id is
  `{filename}:{row}` (row counted from 0 over the whole file).
- `{escrow}@{chain}/assignments.json`: one entry per clip, `{id, clip_filename, clip_dur,
  placed: [{index, source_filename, source_start, source_stop, clip_start, clip_stop,
  kind: "gt" | "ds", input_ids}]}`, times in seconds; a `gt` piece names the ground-truth
  rows it holds.
- `{escrow}@{chain}/task_clips.json`: `{"<cvat task id>": "<clip id>"}`.
- `{escrow}@{chain}-results/assignments/{cvat job id}-{assignment id}.tsv`: the job's
  annotation (CVAT Generic TSV, clip time; `start stop label transcription` is enough).
- `{escrow}@{chain}-results/annotation_meta.json`: `{jobs: [{job_id (CVAT job), task_id
  (CVAT task), annotator_wallet_address, assignment_id, start_frame, stop_frame,
  assignment_bounty}]}`.
`job_finished` carries no data: the recording oracle reads these files.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from audio_pipeline.clips import Piece, TimeMap
from audio_pipeline.segments import parse_time


def data_dir(chain_id: int, escrow: str) -> str:
    return f"{escrow}@{chain_id}"


def results_dir(chain_id: int, escrow: str) -> str:
    return f"{escrow}@{chain_id}-results"


def annotation_key(chain_id: int, escrow: str, cvat_job_id: int, assignment_id: str) -> str:
    return f"{results_dir(chain_id, escrow)}/assignments/{cvat_job_id}-{assignment_id}.tsv"


def gt_row_ids(gt_text: str) -> list[tuple[str, int, int, str]]:
    """(id, start_ms, end_ms, filename) of every ground-truth row, as HUMAN numbers them."""
    rows = csv.DictReader(io.StringIO(gt_text), delimiter="\t")
    out = []
    for n, row in enumerate(rows):
        name = (row.get("filename") or "").strip()
        start = round(parse_time(row["start"].strip()) * 1000)
        end = round(parse_time(row["stop"].strip()) * 1000)
        out.append((f"{name}:{n}", start, end, name))
    return out


def clip_entry(
    clip_id: str,
    time_map: TimeMap,
    honeypots: Sequence[Mapping[str, Any]],
    gt_rows: Sequence[tuple[str, int, int, str]],
) -> dict[str, Any]:
    """One clip of `assignments.json` from our time map; a piece is `gt` when it is one of
    the clip's honeypot regions, and names the ground-truth rows lying inside it."""
    spots = {(h["source"], int(h["start_ms"]), int(h["end_ms"])) for h in honeypots}
    placed = []
    for index, p in enumerate(time_map.pieces):
        end = p.source_start_ms + p.length_ms
        kind = "gt" if (p.source, p.source_start_ms, end) in spots else "ds"
        inside = [
            row_id
            for row_id, a, b, name in gt_rows
            if kind == "gt" and name == p.source and p.source_start_ms <= a < b <= end
        ]
        placed.append(
            {
                "index": index,
                "source_filename": p.source,
                "source_start": p.source_start_ms / 1000,
                "source_stop": end / 1000,
                "clip_start": p.clip_start_ms / 1000,
                "clip_stop": p.clip_end_ms / 1000,
                "kind": kind,
                "input_ids": inside,
            }
        )
    return {
        "id": clip_id,
        "clip_filename": f"{clip_id}.mp3",
        "clip_dur": time_map.duration_ms / 1000,
        "placed": placed,
    }


@dataclass(frozen=True)
class PeerJob:
    """One job as HUMAN's exchange oracle reports it, made ready for our scoring."""

    job_id: int
    assignment_id: str
    wallet: str
    time_map: TimeMap
    annotation_key: str
    clip: str


def time_map_of(clip: Mapping[str, Any]) -> TimeMap:
    """Our time map from a clip of `assignments.json` (seconds, with float noise such as
    13.399999999999999, to whole milliseconds)."""
    pieces = [
        Piece(
            round(float(p["clip_start"]) * 1000),
            str(p["source_filename"]),
            round(float(p["source_start"]) * 1000),
            round((float(p["clip_stop"]) - float(p["clip_start"])) * 1000),
        )
        for p in sorted(clip["placed"], key=lambda p: float(p["clip_start"]))
    ]
    return TimeMap(tuple(pieces), round(float(clip["clip_dur"]) * 1000))


def read_jobs(
    chain_id: int,
    escrow: str,
    assignments_json: bytes,
    task_clips_json: bytes,
    annotation_meta_json: bytes,
) -> list[PeerJob]:
    """The jobs to score, from the three files HUMAN's exchange oracle writes."""
    clips = {str(c["id"]): c for c in json.loads(assignments_json)}
    task_clips = {int(k): str(v) for k, v in json.loads(task_clips_json).items()}
    jobs = []
    for job in json.loads(annotation_meta_json)["jobs"]:
        clip = clips[task_clips[int(job["task_id"])]]
        jobs.append(
            PeerJob(
                int(job["job_id"]),
                str(job["assignment_id"]),
                str(job["annotator_wallet_address"]),
                time_map_of(clip),
                annotation_key(chain_id, escrow, int(job["job_id"]), str(job["assignment_id"])),
                str(clip["clip_filename"]),
            )
        )
    return jobs

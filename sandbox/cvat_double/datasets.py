"""Generic TSV 1.0 export and import (CVAT's dataset views), for tasks and jobs. As CVAT
2.73 writes it: `id filename start stop label source score` then every attribute column
sorted by name, defaults filled, times as `str(timedelta)`, CRLF line ends. Exporting media
with an audio dataset fails, and so does any project-level export on 2.73 (a CVAT bug)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from audio_pipeline.segments import TsvFormatError, read_generic_tsv
from sandbox.cvat_double import job_annotations, permissions, requests
from sandbox.cvat_double.core import CvatJSON, Double, invalid

FORMAT = "Generic TSV 1.0"
MEDIA_REFUSED = (
    "rest_framework.exceptions.ValidationError: [ErrorDetail(string='Media export as dataset "
    "is not supported for audio tasks', code='invalid')]\n"
)
PROJECT_BUG = "AttributeError: 'ProjectData' object has no attribute 'db_data'\n"


def _time(ms: int | None) -> str:
    return "" if ms is None else str(timedelta(milliseconds=ms))


def generic_tsv(cvat: Double, job: dict[str, Any]) -> str:
    labels = {lb["id"]: lb for lb in cvat.store.all("labels", project_id=job["project_id"])}
    specs = {a["id"]: a["name"] for lb in labels.values() for a in lb["attributes"]}
    names = sorted(set(specs.values()))
    task = cvat.need("tasks", job["task_id"])
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\r\n")
    writer.writerow(["id", "filename", "start", "stop", "label", "source", "score", *names])
    for i in sorted(job_annotations.read(cvat, job)["intervals"], key=lambda i: i["start"]):
        values = {specs[a["spec_id"]]: a["value"] for a in i["attributes"]}
        writer.writerow([i["id"], task["files"][0], _time(i["start"]), _time(i["stop"]),
                         labels[i["label_id"]]["name"], i["source"], float(i["score"]),
                         *(values.get(n, "") for n in names)])  # fmt: skip
    return out.getvalue()


def routes(cvat: Double) -> APIRouter:
    router = APIRouter()

    def export(request: Request, target: str, ident: int, job: dict[str, Any] | None,
               project_id: int | None, task_id: int | None) -> CvatJSON:  # fmt: skip
        user = cvat.user_of(request)
        fmt = request.query_params.get("format", FORMAT)
        media = request.query_params.get("save_images", "False").lower() == "true"
        message = ""
        if fmt != FORMAT:
            raise invalid({"format": [f"Unknown format specified for the request: {fmt}"]})
        if target == "project":
            message = PROJECT_BUG
        elif media:
            message = MEDIA_REFUSED
        rq = requests.rq_id("export", target, ident, user_id=user["id"],
                            format=requests.format_token(fmt),
                            subresource="dataset" if media else "annotations")  # fmt: skip
        with cvat.store.write():
            requests.record(
                cvat, rq, "export:annotations" if not media else "export:dataset", user,
                target=target, project_id=project_id, task_id=task_id,
                job_id=job["id"] if job else None, fmt=fmt, message=message,
                result_path=f"/api/{target}s/{ident}/dataset/download",
            )  # fmt: skip
        return CvatJSON({"rq_id": rq}, status_code=202)

    @router.post("/api/tasks/{tid}/dataset/export")
    def export_task(tid: int, request: Request) -> CvatJSON:
        task = cvat.need("tasks", tid)
        return export(request, "task", tid, None, task["project_id"], tid)

    @router.post("/api/jobs/{jid}/dataset/export")
    def export_job(jid: int, request: Request) -> CvatJSON:
        job = cvat.need("jobs", jid)
        permissions.need_job(cvat, cvat.user_of(request), job)
        return export(request, "job", jid, job, job["project_id"], job["task_id"])

    @router.post("/api/projects/{pid}/dataset/export")
    def export_project(pid: int, request: Request) -> CvatJSON:
        cvat.need("projects", pid)
        return export(request, "project", pid, None, pid, None)

    def download(request: Request, job: dict[str, Any]) -> Response:
        cvat.user_of(request)
        requests.find(cvat, request.query_params.get("rq_id", ""))
        return Response(generic_tsv(cvat, job), media_type="text/tab-separated-values")

    @router.get("/api/tasks/{tid}/dataset/download")
    def download_task(tid: int, request: Request) -> Response:
        (job,) = cvat.store.all("jobs", task_id=tid, type="annotation")
        return download(request, job)

    @router.get("/api/jobs/{jid}/dataset/download")
    def download_job(jid: int, request: Request) -> Response:
        return download(request, cvat.need("jobs", jid))

    @router.post("/api/jobs/{jid}/annotations")
    async def import_job(jid: int, request: Request) -> CvatJSON:
        """Generic TSV rows come in with source `file`; an empty stop becomes null."""
        user = cvat.user_of(request)
        job = cvat.need("jobs", jid)
        permissions.need_job(cvat, user, job)
        form = await request.form()
        upload = form.get("annotation_file")
        if upload is None or isinstance(upload, str):
            raise invalid({"annotation_file": ["No file was submitted."]})
        text = (await upload.read()).decode("utf-8")
        labels = {lb["name"]: lb for lb in cvat.store.all("labels", project_id=job["project_id"])}
        try:
            rows = read_generic_tsv(text)
        except TsvFormatError as exc:
            raise invalid([str(exc)]) from None
        items = []
        for seg in rows:
            label = labels.get(seg.label)
            if label is None:
                raise invalid([f"Label '{seg.label}' is not registered for this task"])
            specs = {a["name"]: a["id"] for a in label["attributes"]}
            values = {**seg.attributes, "transcription": seg.transcription}
            items.append({
                "label_id": label["id"], "start": round(seg.start * 1000),
                "stop": None if seg.end is None else round(seg.end * 1000),
                "source": "file", "score": seg.score,
                "attributes": [{"spec_id": specs[k], "value": v} for k, v in values.items()
                               if k in specs and v != ""],
            })  # fmt: skip
        rq = requests.rq_id("import", "job", jid, subresource="annotations")
        with cvat.store.write():
            job_annotations.replace(cvat, job, {"intervals": items}, user)
            requests.record(
                cvat, rq, "import:annotations", user, target="job",
                project_id=job["project_id"], task_id=job["task_id"], job_id=jid,
            )  # fmt: skip
        return CvatJSON({"rq_id": rq}, status_code=202)

    return router

"""Audio tasks and their data (CVAT's task and data views). One file per task, one job,
one frame per millisecond. The size is what CVAT 2.73 reports: the audio stream's duration
less its start time (4252 for an MP3 that decodes to 4302.5 ms), not a decode's length.
Before its data arrives a task has no `size` or chunk fields at all."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import av
import numpy as np
from fastapi import APIRouter, Request, Response

from audio_pipeline import AudioError, PcmReader, encode_mp3
from sandbox.cvat_double import permissions, requests, webhooks
from sandbox.cvat_double.core import CvatError, CvatJSON, Double, invalid, now, page

SEGMENT_SIZE_REFUSED = (
    "rest_framework.exceptions.ValidationError: [ErrorDetail(string=\"The 'segment_size' "
    "parameter cannot be used in audio tasks\", code='invalid')]\n"
)
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a4c50000000049454e44ae426082"
)


def task_read(cvat: Double, t: dict[str, Any]) -> dict[str, Any]:
    jobs = cvat.store.all("jobs", task_id=t["id"])
    project = cvat.store.get("projects", t["project_id"]) if t["project_id"] else None
    has_data = bool(t.get("size"))
    doc: dict[str, Any] = {
        "url": cvat.url(f"/api/tasks/{t['id']}"),
        "id": t["id"],
        "name": t["name"],
        "project_id": t["project_id"],
        "project_name": project["name"] if project else None,
        "owner": cvat.basic_user(t["owner_id"]),
        "assignee": None,
        "bug_tracker": "",
        "created_date": t["created_date"],
        "updated_date": t["updated_date"],
        "overlap": 0 if has_data else None,
        "segment_size": t["size"] if has_data else (t.get("segment_size") or 0),
        "status": "annotation",
    }
    if has_data:
        doc.update(
            data_chunk_size=t["size"],
            data_original_chunk_type="audio_mp3",
            data_compressed_chunk_type="audio_mp3",
            data_cloud_storage_id=None,
        )
    doc["guide_id"] = None
    if has_data:
        doc["size"] = t["size"]
    doc.update(
        data=t.get("data_id"),
        dimension="1d" if has_data else "",
        mode="interpolation" if has_data else "",
        media_type="audio" if has_data else "",
        subset="",
        organization_id=None,
        organization=None,
        target_storage=None,
        source_storage=None,
        jobs={
            "count": len(jobs),
            "completed": sum(j["state"] == "completed" for j in jobs),
            "validation": sum(j["stage"] == "validation" for j in jobs),
            "url": cvat.url(f"/api/jobs?task_id={t['id']}"),
        },
        labels={"url": cvat.url(f"/api/labels?task_id={t['id']}")},
        assignee_updated_date=None,
        validation_mode=None,
        consensus_enabled=False,
    )
    return doc


def stream_size_ms(path: Path) -> int:
    """CVAT's frame count for an audio file: the stream's duration less its start time."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            start = stream.start_time or 0
            return int((stream.duration - start) * stream.time_base * 1000)
        return int((container.duration or 0) / 1000)


def meta_read(task: dict[str, Any]) -> dict[str, Any]:
    size = task["size"]
    return {
        "chapters": None,
        "chunks_updated_date": task["updated_date"],
        "chunk_size": size,
        "size": size,
        "start_frame": 0,
        "stop_frame": size - 1,
        "frame_filter": "",
        "frames": [
            {"name": name, "related_files": 0, "has_related_context": False}
            for name in task["files"]
        ],
        "deleted_frames": [],
        "included_frames": None,
        "storage": "local",
        "cloud_storage_id": None,
    }


def chunk(cvat: Double, task: dict[str, Any], request: Request) -> Response:
    """One chunk per quality, re-encoded from the upload as CVAT does (so neither is the
    uploaded file); numbers outside [0, chunks - 1] are refused in CVAT's words."""
    q = request.query_params
    count = 1  # chunk_size == size: an audio task is one chunk
    number = q.get("number", "0")
    if not number.isdigit() or not 0 <= int(number) < count:
        raise invalid(
            f"Invalid chunk number '{number}'. The chunk number should be in the "
            f"[0, {count - 1}] range"
        )
    quality = q.get("quality", "compressed")
    key = f"task/{task['id']}/chunk-{quality}"
    data = cvat.store.blob(key)
    if data is None:
        source = cvat.store.blob(f"task/{task['id']}/upload") or b""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload"
            path.write_bytes(source)
            with PcmReader(path, rate=16_000) as reader:
                pcm = np.concatenate(list(reader))
        data = encode_mp3(pcm, 16_000, 96_000 if quality == "original" else 48_000)
        cvat.store.put_blob(key, data)
    return Response(data, media_type="audio/mpeg")


def delete_task(cvat: Double, tid: int) -> None:
    for job in cvat.store.all("jobs", task_id=tid):
        cvat.store.delete("annotations", job["id"])
        cvat.store.delete("jobs", job["id"])
    cvat.store.delete_blobs(f"task/{tid}/")
    cvat.store.delete("tasks", tid)


def finish_upload(cvat: Double, owner: dict[str, Any], task: dict[str, Any]) -> str:
    files = cvat.pending_uploads.pop(task["id"], [])
    ident = requests.rq_id("create", "task", task["id"])
    message = ""
    size = 0
    try:
        if task.get("segment_size"):
            raise ValueError(SEGMENT_SIZE_REFUSED)
        if len(files) != 1:
            raise ValueError(f"an audio task takes exactly one file, got {len(files)}\n")
        name, data = files[0]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(name).name
            path.write_bytes(data)
            size = stream_size_ms(path)
        if size < 2:
            raise ValueError("audio is too short\n")
    except (ValueError, AudioError, av.FFmpegError) as exc:
        message = str(exc)
    if not message:
        cvat.store.put_blob(f"task/{task['id']}/upload", data)
        task.update(size=size, files=[Path(name).name], updated_date=now(),
                    data_id=cvat.store.next_id("data"))  # fmt: skip
        cvat.store.put("tasks", task)
        cvat.store.insert(
            "jobs",
            {"task_id": task["id"], "project_id": task["project_id"], "assignee_id": None,
             "state": "new", "stage": "annotation", "type": "annotation", "start_frame": 0,
             "stop_frame": size - 1, "created_date": now(), "updated_date": now(),
             "assignee_updated_date": None},
        )  # fmt: skip
    requests.record(cvat, ident, "create:task", owner, target="task",
                    project_id=task["project_id"], task_id=task["id"], message=message)  # fmt: skip
    return ident


def routes(cvat: Double) -> APIRouter:
    router = APIRouter()

    @router.post("/api/tasks", status_code=201)
    async def create(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        body = await request.json()
        project_id = body.get("project_id")
        if project_id is not None and not cvat.store.get("projects", project_id):
            raise invalid({"project_id": [f'Invalid pk "{project_id}" - object does not exist.']})
        with cvat.store.write():
            task = cvat.store.insert(
                "tasks",
                {"name": str(body.get("name") or "task"), "project_id": project_id,
                 "owner_id": user["id"], "segment_size": body.get("segment_size"),
                 "created_date": now(), "updated_date": now(), "files": []},
            )  # fmt: skip
        read = task_read(cvat, task)
        webhooks.fire(cvat, "create:task", project_id, ("task", read), user)
        return read

    @router.get("/api/tasks")
    def listing(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        q = request.query_params
        match: dict[str, Any] = {"project_id": int(q["project_id"])} if q.get("project_id") else {}
        if q.get("name"):
            match["name"] = q["name"]
        found = [task_read(cvat, t) for t in reversed(cvat.store.all("tasks", **match))]
        return page(request, found)

    @router.get("/api/tasks/{tid}")
    def retrieve(tid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        task = cvat.need("tasks", tid)
        permissions.need_task_data(cvat, user, task)
        return task_read(cvat, task)

    @router.delete("/api/tasks/{tid}", status_code=204)
    def destroy(tid: int, request: Request) -> Response:
        user = cvat.user_of(request)
        task = cvat.need("tasks", tid)
        permissions.need_task_data(cvat, user, task)
        with cvat.store.write():
            delete_task(cvat, tid)
        return Response(status_code=204)

    @router.get("/api/tasks/{tid}/status")
    def status(tid: int, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        task = cvat.need("tasks", tid)
        return {"state": "Finished" if task.get("size") else "Queued", "message": "",
                "progress": 0.0}  # fmt: skip

    @router.get("/api/tasks/{tid}/preview")
    def preview(tid: int, request: Request) -> Response:
        cvat.user_of(request)
        cvat.need("tasks", tid)
        return Response(PNG_1PX, media_type="image/png")

    @router.post("/api/tasks/{tid}/data/")
    @router.post("/api/tasks/{tid}/data")
    async def upload(tid: int, request: Request) -> Response:
        user = cvat.user_of(request)
        task = cvat.need("tasks", tid)
        if task.get("size"):
            raise invalid(["Adding more data is not supported"])
        headers = request.headers
        if "upload-start" in headers:
            cvat.pending_uploads[tid] = []
            return Response(status_code=202)
        if "upload-multiple" in headers:
            form = await request.form()
            for key, value in form.multi_items():
                if key.startswith("client_files") and not isinstance(value, str):
                    cvat.pending_uploads.setdefault(tid, []).append(
                        (value.filename or key, await value.read())
                    )
            return Response(status_code=200)
        if "upload-finish" in headers:
            kind = headers.get("content-type", "")
            if not kind.startswith("application/json"):
                raise CvatError(415, {"detail": f'Unsupported media type "{kind}" in request.'})
            with cvat.store.write():
                ident = finish_upload(cvat, user, task)
            return CvatJSON({"rq_id": ident}, status_code=202)
        raise invalid(["This double takes local uploads (Upload-Start, -Multiple, -Finish)"])

    @router.get("/api/tasks/{tid}/data/")
    @router.get("/api/tasks/{tid}/data")
    def task_data(tid: int, request: Request) -> Response:
        user = cvat.user_of(request)
        task = cvat.need("tasks", tid)
        permissions.need_task_data(cvat, user, task)
        return chunk(cvat, task, request)

    @router.get("/api/tasks/{tid}/data/meta")
    def task_meta(tid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        task = cvat.need("tasks", tid)
        permissions.need_task_data(cvat, user, task)
        return meta_read(task)

    @router.get("/api/jobs/{jid}/data/")
    @router.get("/api/jobs/{jid}/data")
    def job_data(jid: int, request: Request) -> Response:
        user = cvat.user_of(request)
        job = cvat.need("jobs", jid)
        permissions.need_job(cvat, user, job)
        return chunk(cvat, cvat.need("tasks", job["task_id"]), request)

    @router.get("/api/jobs/{jid}/data/meta")
    def job_meta(jid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        job = cvat.need("jobs", jid)
        permissions.need_job(cvat, user, job)
        return meta_read(cvat.need("tasks", job["task_id"]))

    return router


__all__ = ["delete_task", "routes", "task_read"]

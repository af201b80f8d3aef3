"""Jobs (CVAT's job views): lists newest first and only a non-staff user's own; a change
of stage resets the state to `new`; ground-truth jobs made with `POST /api/jobs`. Each save
sends `update:job` with `before_update` and `changes`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sandbox.cvat_double import permissions, webhooks
from sandbox.cvat_double.core import FORBIDDEN, CvatError, Double, invalid, now, page

STATES = ("new", "in progress", "completed", "rejected")
STAGES = ("annotation", "validation", "acceptance")
STATUS_OF_STAGE = {"annotation": "annotation", "validation": "validation",
                   "acceptance": "completed"}  # fmt: skip


def job_read(
    cvat: Double, j: dict[str, Any], viewer: dict[str, Any] | None = None
) -> dict[str, Any]:
    task = cvat.store.get("tasks", j["task_id"]) or {}
    project = cvat.store.get("projects", j["project_id"]) or {}
    named = viewer is None or permissions.sees_names(cvat, viewer, j)
    frames = j["stop_frame"] - j["start_frame"] + 1
    return {
        "url": cvat.url(f"/api/jobs/{j['id']}"),
        "id": j["id"],
        "task_id": j["task_id"],
        "task_name": task.get("name") if named else None,
        "project_id": j["project_id"],
        "project_name": project.get("name") if named else None,
        "assignee": cvat.basic_user(j["assignee_id"]),
        "guide_id": None,
        "dimension": "1d",
        "mode": "interpolation",
        "media_type": "audio",
        "bug_tracker": "",
        "status": STATUS_OF_STAGE[j["stage"]],
        "stage": j["stage"],
        "state": j["state"],
        "frame_count": frames,
        "start_frame": j["start_frame"],
        "stop_frame": j["stop_frame"],
        "data_chunk_size": task.get("size", frames),
        "data_compressed_chunk_type": "audio_mp3",
        "data_original_chunk_type": "audio_mp3",
        "created_date": j["created_date"],
        "updated_date": j["updated_date"],
        "issues": {"url": cvat.url(f"/api/issues?job_id={j['id']}"), "count": 0},
        "labels": {"url": cvat.url(f"/api/labels?job_id={j['id']}")},
        "type": j.get("type", "annotation"),
        "organization": None,
        "target_storage": None,
        "source_storage": None,
        "assignee_updated_date": j["assignee_updated_date"],
        "parent_job_id": None,
        "replicas_count": 0,
        "consensus_replicas": 0,
    }


def touched(cvat: Double, job: dict[str, Any], user: dict[str, Any]) -> None:
    """An annotation save: the job's `updated_date` moves and `update:job` goes out."""
    before = {"updated_date": job["updated_date"]}
    job["updated_date"] = now()
    cvat.store.put("jobs", job)
    changes = {"updated_date": {"from": before["updated_date"], "to": job["updated_date"]}}
    webhooks.fire(cvat, "update:job", job["project_id"], ("job", job_read(cvat, job)), user,
                  before, changes)  # fmt: skip


def routes(cvat: Double) -> APIRouter:
    router = APIRouter()

    @router.get("/api/jobs")
    def listing(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        q = request.query_params
        match: dict[str, Any] = {k: int(q[k]) for k in ("task_id", "project_id") if q.get(k)}
        for key in ("type", "state", "stage"):
            if q.get(key):
                match[key] = q[key]
        if q.get("assignee"):
            match["assignee_id"] = next(
                (u["id"] for u in cvat.store.all("users", username=q["assignee"])), -1
            )
        found = [
            job_read(cvat, j, user)
            for j in reversed(cvat.store.all("jobs", **match))  # newest first
            if permissions.sees_job(cvat, user, j)
        ]
        return page(request, found)

    @router.post("/api/jobs", status_code=201)
    async def create(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        body = await request.json()
        extra = [k for k in body if k not in ("type", "task_id")]
        if extra:
            fields = ", ".join(f'"{k}"' for k in extra)
            raise invalid([f"Fields {fields} specified, but not used."])
        if body.get("type") != "ground_truth":
            raise invalid({"type": ['"annotation" jobs are made with their task']})
        task = cvat.need("tasks", int(body.get("task_id") or 0))
        permissions.need_staff_or_owner(cvat, user, task["project_id"])
        if cvat.store.all("jobs", task_id=task["id"], type="ground_truth"):
            raise invalid(["A task can have only 1 ground truth job"])
        with cvat.store.write():
            job = cvat.store.insert(
                "jobs",
                {"task_id": task["id"], "project_id": task["project_id"], "assignee_id": None,
                 "state": "new", "stage": "annotation", "type": "ground_truth",
                 "start_frame": 0, "stop_frame": task["size"] - 1, "created_date": now(),
                 "updated_date": now(), "assignee_updated_date": None},
            )  # fmt: skip
        return job_read(cvat, job, user)

    @router.get("/api/jobs/{jid}")
    def retrieve(jid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        job = cvat.need("jobs", jid)
        permissions.need_job(cvat, user, job)
        return job_read(cvat, job, user)

    @router.patch("/api/jobs/{jid}")
    async def update(jid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        body = await request.json()
        with cvat.store.write():
            job = cvat.need("jobs", jid)
            permissions.need_job(cvat, user, job)
            before: dict[str, Any] = {"updated_date": job["updated_date"]}
            changes: dict[str, Any] = {}

            def change(field: str, value: Any) -> None:
                before[field] = job[field]
                if job[field] != value:
                    changes[field] = {"from": job[field], "to": value}
                job[field] = value

            for field, allowed in (("state", STATES), ("stage", STAGES)):
                if field in body and body[field] not in allowed:
                    raise invalid({field: [f'"{body[field]}" is not a valid choice.']})
            if "assignee" in body:
                assignee = body["assignee"]
                if assignee is not None and cvat.store.get("users", assignee) is None:
                    raise invalid(
                        {"assignee": [f'Invalid pk "{assignee}" - object does not exist.']}
                    )
                manager = permissions.is_staff(user) or permissions.owns(
                    cvat, user, job["project_id"]
                )
                if not manager and assignee != job["assignee_id"]:
                    raise CvatError(403, FORBIDDEN)  # an assignee cannot hand the job on
                change("assignee_id", assignee)
                change("assignee_updated_date", now())
            if "stage" in body:
                status = STATUS_OF_STAGE[body["stage"]]
                before["status"] = STATUS_OF_STAGE[job["stage"]]
                if before["status"] != status:
                    changes["status"] = {"from": before["status"], "to": status}
                if body["stage"] != job["stage"]:
                    change("stage", body["stage"])
                    change("state", "new")  # CVAT resets the state with the stage
            if "state" in body:
                change("state", body["state"])
            job["updated_date"] = now()
            changes = {"updated_date": {"from": before["updated_date"], "to": job["updated_date"]},
                       **changes}  # fmt: skip
            cvat.store.put("jobs", job)
        read = job_read(cvat, job, user)
        webhooks.fire(cvat, "update:job", job["project_id"], ("job", job_read(cvat, job)), user,
                      before, changes)  # fmt: skip
        return read

    return router

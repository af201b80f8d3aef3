"""Projects and their labels (CVAT's project and label views). A text attribute created
with `values: []` reads back `[""]`; attribute ids come from one global sequence; any
label type is stored, as CVAT stores a rectangle label in an audio project."""

from __future__ import annotations

import random
from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.cvat_double import permissions
from sandbox.cvat_double.core import CvatError, Double, invalid, now, page

INPUT_TYPES = ("checkbox", "radio", "number", "text", "select")
LABEL_TYPES = ("any", "cuboid", "ellipse", "mask", "points", "polygon", "polyline",
               "rectangle", "skeleton", "tag", "interval")  # fmt: skip


def create_label(cvat: Double, project_id: int, spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec.get("type", "any")
    if kind not in LABEL_TYPES:
        raise invalid({"labels": [{"type": [f'"{kind}" is not a valid choice.']}]})
    attrs = []
    for attr in spec.get("attributes") or []:
        if attr.get("input_type") not in INPUT_TYPES:
            raise invalid(
                {"labels": [{"attributes": [{"input_type": [
                    f'"{attr.get("input_type")}" is not a valid choice.']}]}]}
            )  # fmt: skip
        values = [str(v) for v in attr.get("values") or []] or [""]
        default = attr.get("default_value")
        if default in (None, ""):
            default = "" if attr["input_type"] == "text" else values[0]
        attrs.append(
            {
                "id": cvat.store.next_id("attribute_specs"),
                "name": attr["name"],
                "mutable": bool(attr.get("mutable", False)),
                "input_type": attr["input_type"],
                "default_value": str(default),
                "values": values,
            }
        )
    return cvat.store.insert(
        "labels",
        {
            "name": spec["name"],
            "color": spec.get("color") or f"#{random.randrange(0x1000000):06x}",
            "type": kind,
            "project_id": project_id,
            "attributes": attrs,
        },
    )


def label_read(label: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": label["id"],
        "name": label["name"],
        "color": label["color"],
        "attributes": label["attributes"],
        "type": label["type"],
        "sublabels": [],
        "project_id": label["project_id"],
        "parent_id": None,
        "has_parent": False,
    }


def project_read(cvat: Double, p: dict[str, Any]) -> dict[str, Any]:
    tasks = cvat.store.all("tasks", project_id=p["id"])
    return {
        "url": cvat.url(f"/api/projects/{p['id']}"),
        "id": p["id"],
        "name": p["name"],
        "owner": cvat.basic_user(p["owner_id"]),
        "assignee": None,
        "guide_id": None,
        "bug_tracker": p["bug_tracker"],
        "created_date": p["created_date"],
        "updated_date": p["updated_date"],
        "status": "annotation",
        "dimension": "1d" if any(t.get("size") for t in tasks) else None,
        "organization": None,
        "organization_id": None,
        "target_storage": None,
        "source_storage": None,
        "tasks": {"count": len(tasks), "url": cvat.url(f"/api/tasks?project_id={p['id']}")},
        "labels": {"url": cvat.url(f"/api/labels?project_id={p['id']}")},
        "assignee_updated_date": None,
        "task_subsets": [],
    }


def delete_project(cvat: Double, pid: int, delete_task: Any) -> None:
    for task in cvat.store.all("tasks", project_id=pid):
        delete_task(task["id"])
    for kind in ("labels", "webhooks"):
        for doc in cvat.store.all(kind, project_id=pid):
            cvat.store.delete(kind, doc["id"])
    cvat.store.delete("projects", pid)


def routes(cvat: Double, delete_task: Any) -> APIRouter:
    router = APIRouter()

    @router.post("/api/projects", status_code=201)
    async def create(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        body = await request.json()
        name = str(body.get("name") or "").strip()
        if not name:
            raise invalid({"name": ["This field may not be blank."]})
        with cvat.store.write():
            project = cvat.store.insert(
                "projects",
                {"name": name, "owner_id": user["id"], "created_date": now(),
                 "updated_date": now(), "bug_tracker": body.get("bug_tracker", "")},
            )  # fmt: skip
            for spec in body.get("labels") or []:
                create_label(cvat, project["id"], spec)
        return project_read(cvat, project)

    @router.get("/api/projects")
    def listing(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        search = request.query_params.get("search", "")
        found = []
        for p in reversed(cvat.store.all("projects")):  # newest first
            if search not in p["name"]:
                continue
            try:
                permissions.need_project(cvat, user, p)
            except CvatError:
                continue
            found.append(project_read(cvat, p))
        return page(request, found)

    @router.get("/api/projects/{pid}")
    def retrieve(pid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        project = cvat.need("projects", pid)
        permissions.need_project(cvat, user, project)
        return project_read(cvat, project)

    @router.delete("/api/projects/{pid}", status_code=204)
    def destroy(pid: int, request: Request) -> Response:
        user = cvat.user_of(request)
        cvat.need("projects", pid)
        permissions.need_staff_or_owner(cvat, user, pid)
        with cvat.store.write():
            delete_project(cvat, pid, delete_task)
        return Response(status_code=204)

    @router.get("/api/labels")
    def labels(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        q = request.query_params
        project_id = int(q["project_id"]) if q.get("project_id") else None
        if q.get("task_id"):
            project_id = cvat.need("tasks", int(q["task_id"]))["project_id"]
        if q.get("job_id"):
            project_id = cvat.need("jobs", int(q["job_id"]))["project_id"]
        found = [
            label_read(lb)
            for lb in cvat.store.all("labels")
            if project_id is None or lb["project_id"] == project_id
        ]
        return page(request, found)

    return router

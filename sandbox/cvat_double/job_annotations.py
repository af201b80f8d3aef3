"""Job annotations (CVAT's annotation views), as CVAT 2.73 keeps an audio job's document:
`version` always 0; every created interval or shape gets a new id from one global sequence;
start within [0, size - 1] and stop within [0, size] (or null); read back with every
attribute of the label, the missing ones at their default."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.cvat_double import permissions
from sandbox.cvat_double.core import CvatError, Double, invalid
from sandbox.cvat_double.jobs import touched

SOURCES = ("auto", "semi-auto", "manual", "file", "consensus")
EMPTY = {"version": 0, "tags": [], "shapes": [], "tracks": [], "intervals": []}


def stored(cvat: Double, job_id: int) -> dict[str, Any]:
    doc = cvat.store.get("annotations", job_id)
    return doc["data"] if doc else {**EMPTY, "intervals": [], "shapes": []}


def _specs(cvat: Double, project_id: int) -> dict[int, dict[str, Any]]:
    return {lb["id"]: lb for lb in cvat.store.all("labels", project_id=project_id)}


def read(cvat: Double, job: dict[str, Any]) -> dict[str, Any]:
    """The document as GET answers it: attributes filled with the label's defaults."""
    labels = _specs(cvat, job["project_id"])
    doc = stored(cvat, job["id"])
    intervals = []
    for i in doc["intervals"]:
        given = list(i["attributes"])
        have = {a["spec_id"] for a in given}
        label = labels.get(i["label_id"], {"attributes": []})
        filled = given + [
            {"spec_id": a["id"], "value": a["default_value"]}
            for a in label["attributes"]
            if a["id"] not in have
        ]
        intervals.append({"id": i["id"], "label_id": i["label_id"], "start": i["start"],
                          "stop": i["stop"], "group": i["group"], "source": i["source"],
                          "score": float(i["score"]), "attributes": filled})  # fmt: skip
    return {"version": 0, "tags": [], "shapes": doc["shapes"], "tracks": [],
            "intervals": intervals}  # fmt: skip


def check(
    cvat: Double, job: dict[str, Any], items: list[dict[str, Any]], *, whole: bool = True
) -> list[dict[str, Any]]:
    """Intervals as CVAT would store them, or a 400 in CVAT's words."""
    task = cvat.need("tasks", job["task_id"])
    size = task["size"]
    labels = _specs(cvat, job["project_id"])
    out = []
    for n, item in enumerate(items):

        def field_error(body: dict[str, list[str]], n: int = n) -> CvatError:
            return invalid({"intervals": [{} for _ in range(n)] + [body]})

        missing = [f for f in ("label_id", "start", "stop") if f not in item]
        if missing and whole:
            raise field_error({f: ["This field is required."] for f in missing})
        start, stop = item.get("start"), item.get("stop")
        if not isinstance(start, int) or start < 0:
            raise field_error({"start": ["Ensure this value is greater than or equal to 0."]})
        source = item.get("source", "manual")
        if source not in SOURCES:
            allowed = ", ".join(f"'{s}'" for s in SOURCES)
            raise field_error({"source": [f"must be one of {allowed}, got '{source}'"]})
        if stop is not None and stop < start:
            raise invalid([f"Interval start must be <= stop, got [{start}, {stop}]"])
        if start > size - 1 or (stop is not None and stop > size):
            raise invalid(
                [f"Interval start must be within [0, {size - 1}] and stop must be within "
                 f"[0, {size}], got [{start}, {stop}]"]
            )  # fmt: skip
        label = labels.get(int(item.get("label_id") or 0))
        if label is None:
            raise field_error({"label_id": [f"{item.get('label_id')} is not a label of this job"]})
        specs = {a["id"]: a for a in label["attributes"]}
        attributes = []
        for attr in item.get("attributes") or []:
            spec = specs.get(attr.get("spec_id"))
            if spec is None:
                raise field_error(
                    {"attributes": [f"spec {attr.get('spec_id')} is not on the label"]}
                )
            value = str(attr.get("value", ""))
            if spec["input_type"] in ("select", "radio") and value not in spec["values"]:
                raise field_error({"attributes": [f"'{value}' is not a value of {spec['name']}"]})
            attributes.append({"spec_id": spec["id"], "value": value})
        out.append({"id": item.get("id"), "label_id": label["id"], "group": item.get("group") or 0,
                    "source": source, "score": item.get("score", 1), "start": start,
                    "stop": stop, "attributes": attributes})  # fmt: skip
    return out


def _shapes(cvat: Double, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": s.get("type", "rectangle"), "occluded": False, "outside": False, "z_order": 0,
         "rotation": 0, "points": s.get("points", []), "id": cvat.store.next_id("shapes"),
         "label_id": s.get("label_id"), "group": s.get("group") or 0,
         "source": s.get("source", "manual"), "frame": s.get("frame", 0), "score": 1,
         "attributes": s.get("attributes") or [], "elements": []}
        for s in items
    ]  # fmt: skip


def save(cvat: Double, job: dict[str, Any], intervals: list[dict[str, Any]],
         shapes: list[dict[str, Any]]) -> None:  # fmt: skip
    cvat.store.put("annotations", {"id": job["id"], "data": {**EMPTY, "intervals": intervals,
                                                              "shapes": shapes}})  # fmt: skip


def replace(
    cvat: Double, job: dict[str, Any], doc: dict[str, Any], user: dict[str, Any]
) -> dict[str, Any]:
    """PUT: the whole document replaced; every item made anew, with a new id."""
    intervals = check(cvat, job, doc.get("intervals") or [])
    for item in intervals:
        item["id"] = cvat.store.next_id("intervals")
    shapes = _shapes(cvat, doc.get("shapes") or [])
    save(cvat, job, intervals, shapes)
    touched(cvat, job, user)
    return {"version": 0, "tags": [], "shapes": shapes, "tracks": [], "intervals": intervals}


def routes(cvat: Double) -> APIRouter:
    router = APIRouter()

    def editable(request: Request, jid: int) -> tuple[dict[str, Any], dict[str, Any]]:
        user = cvat.user_of(request)
        job = cvat.need("jobs", jid)
        permissions.need_job(cvat, user, job)
        return user, job

    @router.get("/api/jobs/{jid}/annotations")
    def get_job(jid: int, request: Request) -> dict[str, Any]:
        _, job = editable(request, jid)
        return read(cvat, job)

    @router.put("/api/jobs/{jid}/annotations")
    async def put_job(jid: int, request: Request) -> dict[str, Any]:
        body = await request.json()
        with cvat.store.write():
            user, job = editable(request, jid)
            return replace(cvat, job, body, user)

    @router.patch("/api/jobs/{jid}/annotations")
    async def patch_job(jid: int, request: Request) -> dict[str, Any]:
        action = request.query_params.get("action")
        if action not in ("create", "update", "delete"):
            raise invalid({"action": ["must be one of create, update, delete"]})
        body = await request.json()
        with cvat.store.write():
            user, job = editable(request, jid)
            doc = stored(cvat, jid)
            current = {i["id"]: i for i in doc["intervals"]}
            items = check(cvat, job, body.get("intervals") or [])
            if action == "create":
                for item in items:
                    item["id"] = cvat.store.next_id("intervals")
                    current[item["id"]] = item
            elif action == "update":
                for item in items:
                    if item["id"] not in current:
                        raise invalid({"intervals": [f"interval {item['id']} does not exist"]})
                    current[item["id"]] = item
            else:
                for item in items:
                    current.pop(item["id"], None)
            save(cvat, job, list(current.values()), doc["shapes"])
            if action != "delete":
                touched(cvat, job, user)
        return {"version": 0, "tags": [], "shapes": [], "tracks": [], "intervals": items}

    @router.get("/api/tasks/{tid}/annotations", response_model=None)
    def get_task(tid: int, request: Request) -> Response | dict[str, Any]:
        user = cvat.user_of(request)
        task = cvat.need("tasks", tid)
        permissions.need_task_data(cvat, user, task)
        if request.query_params.get("format"):
            return Response(
                "This endpoint is no longer supported.\nTo initiate the export process, use "
                f"POST /api/tasks/{tid}/dataset/export?save_images=False.",
                status_code=410,
                media_type="text/html; charset=utf-8",
            )
        jobs = cvat.store.all("jobs", task_id=tid, type="annotation")
        return read(cvat, jobs[0]) if jobs else dict(EMPTY)

    return router

"""Background requests (CVAT's `apps/redis_handler` request views): task creation, dataset
export and annotation import run as requests polled at `/api/requests/{rq_id}`. Here they
finish at once; ids and shapes are CVAT 2.73's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request

from sandbox.cvat_double.core import NOT_FOUND, CvatError, Double, now

KEEP = {"create:task": timedelta(seconds=500), "export:annotations": timedelta(days=1),
        "import:annotations": timedelta(days=1)}  # fmt: skip


def rq_id(action: str, target: str, target_id: int, **extra: Any) -> str:
    parts = [f"action={action}", f"target={target}", f"target_id={target_id}"]
    parts += [f"{k}={v}" for k, v in extra.items()]
    return "&".join(parts)


def format_token(name: str) -> str:
    """How a format name sits in a request id: "Generic TSV 1.0" -> "Generic_TSV_1~0"."""
    return name.replace(" ", "_").replace(".", "~")


def record(
    cvat: Double,
    ident: str,
    kind: str,
    owner: dict[str, Any],
    *,
    target: str,
    project_id: int | None,
    task_id: int | None,
    job_id: int | None = None,
    fmt: str | None = None,
    message: str = "",
    result_path: str | None = None,
) -> dict[str, Any]:
    failed = bool(message)
    created = now()
    finished = datetime.now(UTC)
    keep = timedelta(days=365) if failed and kind == "create:task" else KEEP[kind]
    doc = {
        "rq_id": ident,
        "status": "failed" if failed else "finished",
        "message": message,
        "operation": {
            "type": kind,
            "target": target,
            "project_id": project_id,
            "task_id": task_id,
            "job_id": job_id,
            "org_id": None,
            "format": fmt,
            "lightweight": None,
        },
        "created_date": created,
        "finished_date": finished.isoformat().replace("+00:00", "Z"),
        "expiry_date": (finished + keep).isoformat().replace("+00:00", "Z"),
        "owner": {"id": owner["id"], "username": owner["username"]},
        "result_url": (
            cvat.url(f"{result_path}?rq_id={quote(ident, safe='~')}")
            if result_path and not failed
            else None
        ),
    }
    for old in cvat.store.all("requests", rq_id=ident):  # a repeated export replaces it
        cvat.store.delete("requests", old["id"])
    return cvat.store.insert("requests", doc)


def find(cvat: Double, ident: str) -> dict[str, Any]:
    found = cvat.store.all("requests", rq_id=ident)
    if not found:
        raise CvatError(404, NOT_FOUND)
    return found[-1]


def routes(cvat: Double) -> APIRouter:
    router = APIRouter()

    @router.get("/api/requests/{ident:path}")
    def retrieve(ident: str, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        rq = find(cvat, ident)
        return {
            "status": rq["status"],
            "message": rq["message"],
            "id": rq["rq_id"],
            "operation": rq["operation"],
            "progress": 0.0,
            "created_date": rq["created_date"],
            "started_date": rq["created_date"],
            "finished_date": rq["finished_date"],
            "expiry_date": rq["expiry_date"],
            "owner": rq["owner"],
            "result_url": rq["result_url"],
            "result_id": None,
        }

    return router

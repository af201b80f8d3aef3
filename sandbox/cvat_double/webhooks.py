"""Project webhooks (CVAT's `apps/webhooks`): signed deliveries of `create:task` and
`update:job`, the latter also on every annotation save (its `before_update` then holds only
`updated_date`). Every payload carries `changes: {field: {from, to}}`; the assignee appears
there as `assignee_id`."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from typing import Any

import httpx
from fastapi import APIRouter, Request

from sandbox.cvat_double.core import VERSION, Double, invalid, now, page

EVENTS = ("create:task", "update:job", "create:job", "delete:task", "update:task",
          "create:issue", "update:project", "delete:project")  # fmt: skip


def webhook_read(cvat: Double, w: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": w["id"],
        "url": cvat.url(f"/api/webhooks/{w['id']}"),
        "target_url": w["target_url"],
        "description": w.get("description", ""),
        "type": "project",
        "content_type": "application/json",
        "is_active": w["is_active"],
        "enable_ssl": w.get("enable_ssl", True),
        "created_date": w["created_date"],
        "updated_date": w["updated_date"],
        "owner": cvat.basic_user(w["owner_id"]),
        "project_id": w["project_id"],
        "organization": None,
        "events": sorted(w["events"]),
    }


def fire(
    cvat: Double,
    event: str,
    project_id: int | None,
    resource: tuple[str, dict[str, Any]],
    sender: dict[str, Any],
    before: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    """Deliver `event` to the project's hooks that ask for it, in CVAT's key order."""
    for hook in cvat.store.all("webhooks", project_id=project_id):
        if not hook["is_active"] or event not in hook["events"]:
            continue
        doc: dict[str, Any] = {"event": event, "webhook_id": hook["id"], resource[0]: resource[1],
                               "sender": cvat.basic_user(sender["id"])}  # fmt: skip
        if before is not None:
            doc["before_update"] = before
            doc["changes"] = changes or {}
        body = json.dumps(doc).encode()
        digest = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        threading.Thread(
            target=_deliver, args=(cvat, hook, event, body, digest), daemon=True
        ).start()


def _deliver(cvat: Double, hook: dict[str, Any], event: str, body: bytes, digest: str) -> None:
    try:
        reply = httpx.post(
            hook["target_url"],
            content=body,
            timeout=10,
            headers={"Content-Type": "application/json", "X-Signature-256": f"sha256={digest}",
                     "User-Agent": f"CVAT/{VERSION} python-requests/2.33.1"},
        )  # fmt: skip
        status, text = reply.status_code, reply.text[:1000]
    except httpx.HTTPError:
        status, text = 0, ""
    with cvat.store.write():
        cvat.store.insert(
            "deliveries",
            {"webhook_id": hook["id"], "event": event, "status_code": status,
             "redelivery": False, "attempt": 1, "created_date": now(), "updated_date": now(),
             "request": json.loads(body), "response": text},
        )  # fmt: skip


def routes(cvat: Double) -> APIRouter:
    router = APIRouter()

    @router.post("/api/webhooks", status_code=201)
    async def create(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        body = await request.json()
        if body.get("type") != "project" or not cvat.store.get(
            "projects", body.get("project_id") or 0
        ):
            raise invalid({"project_id": ["This field is required for a project webhook."]})
        unknown = [e for e in body.get("events") or [] if e not in EVENTS]
        if unknown:
            raise invalid({"events": [f"Events {unknown} are not supported"]})
        with cvat.store.write():
            hook = cvat.store.insert(
                "webhooks",
                {"target_url": body["target_url"], "secret": body.get("secret", ""),
                 "events": list(body.get("events") or []), "project_id": body["project_id"],
                 "is_active": body.get("is_active", True),
                 "enable_ssl": body.get("enable_ssl", True),
                 "description": body.get("description", ""), "owner_id": user["id"],
                 "created_date": now(), "updated_date": now()},
            )  # fmt: skip
        return webhook_read(cvat, hook)

    @router.get("/api/webhooks")
    def listing(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        q = request.query_params
        match = {"project_id": int(q["project_id"])} if q.get("project_id") else {}
        return page(request, [webhook_read(cvat, w) for w in cvat.store.all("webhooks", **match)])

    @router.get("/api/webhooks/{wid}/deliveries")
    def deliveries(wid: int, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        cvat.need("webhooks", wid)
        found = [
            {"id": d["id"], "webhook_id": wid, "event": d["event"],
             "status_code": d["status_code"], "redelivery": False, "attempt": 1,
             "request_duration": 0, "created_date": d["created_date"],
             "updated_date": d["updated_date"], "changed_fields": "", "request": d["request"],
             "response": d["response"]}
            for d in reversed(cvat.store.all("deliveries", webhook_id=wid))
        ]  # fmt: skip
        return page(request, found)

    return router

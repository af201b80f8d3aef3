"""Routes of the CVAT test double. Shapes follow cvat-sdk 2.80's models (the contract test
deserializes every response through them); rules follow CVAT's audio support."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from audio_pipeline import AudioError, PcmReader
from sandbox.cvat_double.store import Store

VERSION = "2.80.0"
INPUT_TYPES = ("checkbox", "radio", "number", "text", "select")
SOURCES = ("auto", "semi-auto", "manual", "file", "consensus")
JOB_STATES = ("new", "in progress", "completed", "rejected")
JOB_STAGES = ("annotation", "validation", "acceptance")


# Fields CVAT's schema lets be null; any other field is left out rather than sent as null.
NULLABLE = {
    "project": {
        "guide_id",
        "status",
        "dimension",
        "organization",
        "organization_id",
        "assignee_updated_date",
    },
    "task": {
        "project_id",
        "project_name",
        "overlap",
        "status",
        "data_chunk_size",
        "data_original_chunk_type",
        "data_compressed_chunk_type",
        "data_cloud_storage_id",
        "guide_id",
        "data",
        "organization_id",
        "organization",
        "assignee_updated_date",
        "validation_mode",
    },
    "job": {
        "task_name",
        "project_id",
        "project_name",
        "guide_id",
        "bug_tracker",
        "status",
        "stage",
        "state",
        "data_chunk_size",
        "data_compressed_chunk_type",
        "data_original_chunk_type",
        "type",
        "organization",
        "assignee_updated_date",
        "parent_job_id",
    },
    "meta": {"frames", "chapters", "chunk_size", "included_frames", "storage", "cloud_storage_id"},
    "label": {"type", "project_id", "task_id", "parent_id"},
    "webhook": {"project_id", "organization"},
    "request": {
        "progress",
        "started_date",
        "finished_date",
        "expiry_date",
        "result_url",
        "result_id",
    },
    "operation": {"project_id", "task_id", "job_id", "org_id", "format", "function_id"},
    "user": {"last_login", "has_analytics_access", "email_verified"},
}
# Nested user objects and storages are nullable wherever they appear.
ALWAYS_NULLABLE = {"owner", "assignee", "target_storage", "source_storage"}


def compact(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    keep = NULLABLE[kind] | ALWAYS_NULLABLE
    return {k: v for k, v in doc.items() if v is not None or k in keep}


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def fail(status: int, detail: Any) -> HTTPException:
    return HTTPException(status, detail)


class Double:
    """State and rules; the FastAPI routes below are thin."""

    def __init__(self, store: Store, base_url: str, admin: tuple[str, str]) -> None:
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.sessions: dict[str, int] = {}
        self.pending_uploads: dict[int, list[tuple[str, bytes]]] = {}
        if not store.all("users", username=admin[0]):
            self.add_user(admin[0], admin[1], email=f"{admin[0]}@cvat.test", staff=True)

    def project_read(self, doc: dict[str, Any]) -> dict[str, Any]:
        return compact("project", self._project_read(doc))

    def task_read(self, doc: dict[str, Any]) -> dict[str, Any]:
        return compact("task", self._task_read(doc))

    def job_read(self, doc: dict[str, Any]) -> dict[str, Any]:
        return compact("job", self._job_read(doc))

    def label_read(self, doc: dict[str, Any]) -> dict[str, Any]:
        return compact("label", self._label_read(doc))

    def webhook_read(self, doc: dict[str, Any]) -> dict[str, Any]:
        return compact("webhook", self._webhook_read(doc))

    def meta_user(self, doc: dict[str, Any]) -> dict[str, Any]:
        return compact("user", self._meta_user(doc))

    # -- users and auth -------------------------------------------------------------------
    def add_user(
        self, username: str, password: str, email: str, staff: bool = False
    ) -> dict[str, Any]:
        return self.store.insert(
            "users",
            {
                "username": username,
                "password": password,
                "email": email,
                "is_staff": staff,
                "is_superuser": staff,
                "token": secrets.token_hex(20),
                "date_joined": now(),
            },
        )

    def user_of(self, request: Request) -> dict[str, Any]:
        auth = request.headers.get("authorization", "")
        session = request.cookies.get("sessionid")
        user_id: int | None = None
        if session and session in self.sessions:
            user_id = self.sessions[session]
        elif auth.startswith(("Token ", "Bearer ")):
            token = auth.split(" ", 1)[1]
            user_id = next((u["id"] for u in self.store.all("users") if u["token"] == token), None)
        user = self.store.get("users", user_id) if user_id else None
        if user is None:
            raise fail(401, {"detail": "Authentication credentials were not provided."})
        return user

    def basic_user(self, user_id: int | None) -> dict[str, Any] | None:
        user = self.store.get("users", user_id) if user_id else None
        if user is None:
            return None
        return {
            "url": f"{self.base_url}/api/users/{user['id']}",
            "id": user["id"],
            "username": user["username"],
            "first_name": "",
            "last_name": "",
        }

    def _meta_user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            **(self.basic_user(user["id"]) or {}),
            "email": user["email"],
            "groups": ["admin" if user["is_staff"] else "user"],
            "is_staff": user["is_staff"],
            "is_superuser": user["is_superuser"],
            "is_active": True,
            "last_login": None,
            "date_joined": user["date_joined"],
            "has_analytics_access": False,
        }

    # -- projects and labels ----------------------------------------------------------------
    def create_project(self, owner: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        name = str(body.get("name") or "").strip()
        if not name:
            raise fail(400, {"name": ["This field is required."]})
        project = self.store.insert(
            "projects",
            {
                "name": name,
                "owner_id": owner["id"],
                "created_date": now(),
                "updated_date": now(),
                "bug_tracker": body.get("bug_tracker", ""),
            },
        )
        for spec in body.get("labels") or []:
            self.create_label(project["id"], spec)
        return project

    def create_label(self, project_id: int, spec: dict[str, Any]) -> dict[str, Any]:
        if spec.get("type", "any") not in ("interval", "any", "tag"):
            raise fail(400, {"labels": [f"label type {spec.get('type')} is not for audio"]})
        attrs = []
        for attr in spec.get("attributes") or []:
            if attr.get("input_type") not in INPUT_TYPES:
                raise fail(400, {"attributes": [f"input_type must be one of {INPUT_TYPES}"]})
            attrs.append(
                {
                    "id": None,
                    "name": attr["name"],
                    "mutable": bool(attr.get("mutable", False)),
                    "input_type": attr["input_type"],
                    "default_value": attr.get("default_value", ""),
                    "values": list(attr.get("values") or []),
                }
            )
        label = self.store.insert(
            "labels",
            {
                "name": spec["name"],
                "color": spec.get("color", "#33ddff"),
                "type": spec.get("type", "interval"),
                "project_id": project_id,
                "attributes": attrs,
            },
        )
        for i, attr in enumerate(label["attributes"]):
            attr["id"] = label["id"] * 1000 + i + 1
        return self.store.put("labels", label)

    def _project_read(self, p: dict[str, Any]) -> dict[str, Any]:
        tasks = self.store.all("tasks", project_id=p["id"])
        return {
            "url": f"{self.base_url}/api/projects/{p['id']}",
            "id": p["id"],
            "name": p["name"],
            "owner": self.basic_user(p["owner_id"]),
            "assignee": None,
            "guide_id": None,
            "bug_tracker": p["bug_tracker"],
            "task_subsets": [],
            "created_date": p["created_date"],
            "updated_date": p["updated_date"],
            "status": "annotation",
            "dimension": "1d" if tasks else None,
            "organization": None,
            "organization_id": None,
            "target_storage": None,
            "source_storage": None,
            "assignee_updated_date": None,
            "tasks": {
                "count": len(tasks),
                "url": f"{self.base_url}/api/tasks?project_id={p['id']}",
            },
            "labels": {"url": f"{self.base_url}/api/labels?project_id={p['id']}"},
        }

    def _label_read(self, label: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": label["id"],
            "name": label["name"],
            "color": label["color"],
            "attributes": label["attributes"],
            "type": label["type"],
            "svg": "",
            "sublabels": [],
            "project_id": label["project_id"],
            "task_id": None,
            "parent_id": None,
            "has_parent": False,
        }

    # -- tasks, data and jobs -------------------------------------------------------------------
    def create_task(self, owner: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        project_id = body.get("project_id")
        if not project_id or not self.store.get("projects", project_id):
            raise fail(400, {"project_id": ["audio tasks in this double live in a project"]})
        return self.store.insert(
            "tasks",
            {
                "name": str(body.get("name") or "task"),
                "project_id": project_id,
                "owner_id": owner["id"],
                "segment_size": body.get("segment_size"),
                "overlap": body.get("overlap"),
                "size": 0,
                "status": "annotation",
                "created_date": now(),
                "updated_date": now(),
                "files": [],
            },
        )

    def _task_read(self, t: dict[str, Any]) -> dict[str, Any]:
        jobs = self.store.all("jobs", task_id=t["id"])
        project = self.store.get("projects", t["project_id"])
        return {
            "url": f"{self.base_url}/api/tasks/{t['id']}",
            "id": t["id"],
            "name": t["name"],
            "project_id": t["project_id"],
            "project_name": project["name"] if project else None,
            "mode": "interpolation" if t["size"] else "",
            "owner": self.basic_user(t["owner_id"]),
            "assignee": None,
            "bug_tracker": "",
            "created_date": t["created_date"],
            "updated_date": t["updated_date"],
            "overlap": None,
            "segment_size": t["size"],
            "status": t["status"],
            "data_chunk_size": t["size"] or None,
            "data_compressed_chunk_type": "audio_mp3" if t["size"] else None,
            "data_original_chunk_type": "audio_mp3" if t["size"] else None,
            "data_cloud_storage_id": None,
            "guide_id": None,
            "size": t["size"],
            "image_quality": 70,
            "data": t["id"] if t["size"] else None,
            "dimension": "1d" if t["size"] else None,
            "media_type": "audio" if t["size"] else None,
            "subset": "",
            "organization": None,
            "organization_id": None,
            "target_storage": None,
            "source_storage": None,
            "assignee_updated_date": None,
            "validation_mode": None,
            "consensus_enabled": False,
            "jobs": {
                "count": len(jobs),
                "completed": sum(j["state"] == "completed" for j in jobs),
                "validation": sum(j["stage"] == "validation" for j in jobs),
                "url": f"{self.base_url}/api/jobs?task_id={t['id']}",
            },
            "labels": {"url": f"{self.base_url}/api/labels?task_id={t['id']}"},
        }

    def finish_upload(self, owner: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        files = self.pending_uploads.pop(task["id"], [])
        rq = {
            "rq_id": f"create:task-{task['id']}",
            "task_id": task["id"],
            "project_id": task["project_id"],
            "owner_id": owner["id"],
            "created_date": now(),
            "status": "finished",
            "message": "",
        }
        try:
            if task.get("segment_size"):
                raise ValueError("'segment_size' parameter cannot be used in audio tasks")
            if len(files) != 1:
                raise ValueError(f"an audio task takes exactly one file, got {len(files)}")
            name, data = files[0]
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / Path(name).name
                path.write_bytes(data)
                with PcmReader(path, rate=8000) as reader:
                    for _ in reader:
                        pass
                    size_ms = int(reader.duration_s * 1000)
            if size_ms < 2:
                raise ValueError("audio is too short")
        except (ValueError, AudioError) as exc:
            rq.update(status="failed", message=str(exc))
            self.store.insert("requests", rq)
            return rq
        self.store.put_blob(f"task/{task['id']}/chunk", data)
        task.update(size=size_ms, files=[Path(name).name], updated_date=now())
        self.store.put("tasks", task)
        self.store.insert(
            "jobs",
            {
                "task_id": task["id"],
                "project_id": task["project_id"],
                "assignee_id": None,
                "state": "new",
                "stage": "annotation",
                "start_frame": 0,
                "stop_frame": size_ms - 1,
                "created_date": now(),
                "updated_date": now(),
                "assignee_updated_date": None,
            },
        )
        self.store.insert("requests", rq)
        return rq

    def _job_read(self, j: dict[str, Any]) -> dict[str, Any]:
        task = self.store.get("tasks", j["task_id"]) or {}
        project = self.store.get("projects", j["project_id"]) or {}
        frames = j["stop_frame"] - j["start_frame"] + 1
        return {
            "url": f"{self.base_url}/api/jobs/{j['id']}",
            "id": j["id"],
            "task_id": j["task_id"],
            "task_name": task.get("name"),
            "project_id": j["project_id"],
            "project_name": project.get("name"),
            "assignee": self.basic_user(j["assignee_id"]),
            "guide_id": None,
            "dimension": "1d",
            "mode": "interpolation",
            "media_type": "audio",
            "bug_tracker": None,
            "status": "annotation",
            "stage": j["stage"],
            "state": j["state"],
            "frame_count": frames,
            "start_frame": j["start_frame"],
            "stop_frame": j["stop_frame"],
            "data_chunk_size": frames,
            "data_compressed_chunk_type": "audio_mp3",
            "data_original_chunk_type": "audio_mp3",
            "created_date": j["created_date"],
            "updated_date": j["updated_date"],
            "type": "annotation",
            "organization": None,
            "target_storage": None,
            "source_storage": None,
            "assignee_updated_date": j["assignee_updated_date"],
            "parent_job_id": None,
            "consensus_replicas": 0,
            "issues": {"count": 0, "url": f"{self.base_url}/api/issues?job_id={j['id']}"},
            "labels": {"url": f"{self.base_url}/api/labels?job_id={j['id']}"},
        }

    def may_edit(self, user: dict[str, Any], job: dict[str, Any]) -> bool:
        project = self.store.get("projects", job["project_id"]) or {}
        return bool(
            user["is_staff"]
            or user["id"] == project.get("owner_id")
            or user["id"] == job["assignee_id"]
        )

    # -- annotations ------------------------------------------------------------------------------
    def annotations(self, job_id: int) -> dict[str, Any]:
        doc = self.store.get("annotations", job_id)
        return (
            doc["data"]
            if doc
            else {"version": 0, "tags": [], "shapes": [], "tracks": [], "intervals": []}
        )

    def check_intervals(
        self, job: dict[str, Any], intervals: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        labels = {lb["id"]: lb for lb in self.store.all("labels", project_id=job["project_id"])}
        checked = []
        for n, item in enumerate(intervals):
            where = f"intervals[{n}]"
            label = labels.get(item.get("label_id"))
            if label is None:
                raise fail(
                    400, {where: [f"label_id {item.get('label_id')} is not in this project"]}
                )
            start, stop = item.get("start"), item.get("stop")
            if not isinstance(start, int) or start < job["start_frame"]:
                raise fail(400, {where: [f"start {start} is outside the job's frames"]})
            if stop is not None and (
                not isinstance(stop, int) or stop <= start or stop > job["stop_frame"]
            ):
                raise fail(
                    400, {where: [f"stop {stop} must be after start and <= {job['stop_frame']}"]}
                )
            if item.get("source", "manual") not in SOURCES:
                raise fail(400, {where: [f"source must be one of {SOURCES}"]})
            specs = {a["id"]: a for a in label["attributes"]}
            attributes = []
            for attr in item.get("attributes") or []:
                spec = specs.get(attr.get("spec_id"))
                if spec is None:
                    raise fail(
                        400,
                        {
                            where: [
                                f"attribute spec {attr.get('spec_id')} is not on "
                                f"label {label['name']}"
                            ]
                        },
                    )
                if (
                    spec["input_type"] in ("select", "radio")
                    and attr["value"] not in spec["values"]
                ):
                    raise fail(
                        400, {where: [f"'{attr['value']}' is not a value of {spec['name']}"]}
                    )
                attributes.append({"spec_id": spec["id"], "value": str(attr.get("value", ""))})
            checked.append(
                {
                    "id": item.get("id"),
                    "label_id": label["id"],
                    "start": start,
                    "stop": stop,
                    "group": item.get("group") or 0,
                    "source": item.get("source", "manual"),
                    "score": float(item.get("score", 1.0)),
                    "attributes": attributes,
                }
            )
        return checked

    def save_annotations(self, job: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        intervals = self.check_intervals(job, doc.get("intervals") or [])
        next_id = max((i["id"] or 0 for i in intervals), default=0)
        for item in intervals:
            if not item["id"]:
                next_id += 1
                item["id"] = next_id
        current = self.annotations(job["id"])
        data = {
            "version": current["version"] + 1,
            "tags": [],
            "shapes": [],
            "tracks": [],
            "intervals": intervals,
        }
        self.store.put("annotations", {"id": job["id"], "data": data})
        return data

    # -- webhooks ----------------------------------------------------------------------------------
    def _webhook_read(self, w: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": w["id"],
            "url": f"{self.base_url}/api/webhooks/{w['id']}",
            "target_url": w["target_url"],
            "description": w.get("description", ""),
            "type": "project",
            "content_type": "application/json",
            "is_active": w["is_active"],
            "enable_ssl": w.get("enable_ssl", True),
            "created_date": w["created_date"],
            "updated_date": w["created_date"],
            "owner": self.basic_user(w["owner_id"]),
            "project_id": w["project_id"],
            "organization": None,
            "events": w["events"],
            "last_status": w.get("last_status", 0),
            "last_delivery_date": w.get("last_delivery_date"),
        }

    def fire(
        self, event: str, project_id: int, payload: dict[str, Any], sender: dict[str, Any]
    ) -> None:
        for hook in self.store.all("webhooks", project_id=project_id):
            if not hook["is_active"] or event not in hook["events"]:
                continue
            body = json.dumps(
                {
                    "event": event,
                    **payload,
                    "sender": self.basic_user(sender["id"]),
                    "webhook_id": hook["id"],
                }
            ).encode()
            digest = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
            threading.Thread(target=self._deliver, args=(hook, body, digest), daemon=True).start()

    def _deliver(self, hook: dict[str, Any], body: bytes, digest: str) -> None:
        try:
            reply = httpx.post(
                hook["target_url"],
                content=body,
                timeout=10,
                headers={"Content-Type": "application/json", "X-Signature-256": f"sha256={digest}"},
            )
            status = reply.status_code
        except httpx.HTTPError:
            status = 0
        with self.store.write():
            current = self.store.get("webhooks", hook["id"])
            if current:
                current.update(last_status=status, last_delivery_date=now())
                self.store.put("webhooks", current)


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    page = int(request.query_params.get("page", 1))
    size = int(request.query_params.get("page_size", 10))
    chunk = items[(page - 1) * size : page * size]
    more = page * size < len(items)
    base = str(request.url.remove_query_params("page"))
    return {
        "count": len(items),
        "results": chunk,
        "next": f"{base}&page={page + 1}"
        if more and "?" in base
        else (f"{base}?page={page + 1}" if more else None),
        "previous": None,
    }


@dataclass
class Fault:
    method: str
    path: str  # a regular expression matched against the request path
    status: int = 500  # 0: answer normally after the delay
    delay_s: float = 0.0
    skip: int = 0  # let this many matching requests through first
    times: int = 1


class Faults:
    """Failures to inject, for tests of what the oracle does when CVAT misbehaves."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times <= 0 or fault.method != method or not re.search(fault.path, path):
                    continue
                if fault.skip:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                return fault
        return None


def create_app(
    db_path: str | Path = ":memory:",
    base_url: str = "http://127.0.0.1:8080",
    admin: tuple[str, str] = ("admin", "admin-password"),
) -> FastAPI:
    app = FastAPI(
        title="CVAT test double",
        version=VERSION,
        description="A test double of CVAT's REST API for audio tasks. Not CVAT.",
    )
    cvat = Double(Store(db_path), base_url, admin)
    app.state.cvat = cvat
    app.state.faults = Faults()

    @app.middleware("http")
    async def inject_faults(request: Request, call_next: Any) -> Response:
        """Tests make CVAT fail or stall on chosen requests (see Faults)."""
        fault = app.state.faults.take(request.method, request.url.path)
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.status:
                return JSONResponse({"detail": "injected fault"}, status_code=fault.status)
        response: Response = await call_next(request)
        return response

    def need(kind: str, ident: int) -> dict[str, Any]:
        doc = cvat.store.get(kind, ident)
        if doc is None:
            raise fail(404, {"detail": "Not found."})
        return doc

    @app.get("/api/server/about")
    def about() -> dict[str, Any]:
        return {
            "name": "CVAT test double",
            "description": "audio subset of CVAT's API, for tests",
            "version": VERSION,
            "logo_url": "",
            "subtitle": "test double",
        }

    @app.post("/api/auth/login")
    async def login(request: Request) -> Response:
        body = await request.json()
        user = next(
            (
                u
                for u in cvat.store.all("users")
                if body.get("username") in (u["username"], u["email"])
                and u["password"] == body.get("password")
            ),
            None,
        )
        if user is None:
            raise fail(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
        session = secrets.token_hex(16)
        cvat.sessions[session] = user["id"]
        reply = JSONResponse({"key": user["token"]})
        reply.set_cookie("sessionid", session)
        reply.set_cookie("csrftoken", secrets.token_hex(16))
        return reply

    @app.post("/api/auth/register", status_code=201)
    async def register(request: Request) -> dict[str, Any]:
        body = await request.json()
        if body.get("password1") != body.get("password2") or not body.get("password1"):
            raise fail(400, {"password2": ["The two password fields didn't match."]})
        username, email = body.get("username"), body.get("email")
        if any(u["username"] == username or u["email"] == email for u in cvat.store.all("users")):
            raise fail(400, {"username": ["A user with that username or email already exists."]})
        with cvat.store.write():
            user = cvat.add_user(username, body["password1"], email)
        return {
            "id": user["id"],
            "username": username,
            "email": email,
            "first_name": "",
            "last_name": "",
            "email_verification_required": False,
            "key": None,
        }

    @app.post("/api/auth/logout")
    def logout(request: Request) -> dict[str, Any]:
        cvat.sessions.pop(request.cookies.get("sessionid", ""), None)
        return {"detail": "Successfully logged out."}

    @app.get("/api/users/self")
    def users_self(request: Request) -> dict[str, Any]:
        return cvat.meta_user(cvat.user_of(request))

    @app.get("/api/users")
    def users(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        search = request.query_params.get("search", "")
        found = [
            cvat.meta_user(u)
            for u in cvat.store.all("users")
            if search in u["username"] or search in u["email"]
        ]
        return _page(request, found)

    @app.post("/api/projects", status_code=201)
    async def create_project(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        with cvat.store.write():
            project = cvat.create_project(user, await request.json())
        return cvat.project_read(project)

    @app.get("/api/projects")
    def list_projects(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        search = request.query_params.get("search", "")
        found = [cvat.project_read(p) for p in cvat.store.all("projects") if search in p["name"]]
        return _page(request, found)

    @app.get("/api/tasks")
    def list_tasks(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        q = request.query_params
        match: dict[str, Any] = {"project_id": int(q["project_id"])} if q.get("project_id") else {}
        if q.get("name"):
            match["name"] = q["name"]
        return _page(request, [cvat.task_read(t) for t in cvat.store.all("tasks", **match)])

    @app.get("/api/projects/{pid}")
    def get_project(pid: int, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        return cvat.project_read(need("projects", pid))

    @app.delete("/api/projects/{pid}", status_code=204)
    def delete_project(pid: int, request: Request) -> Response:
        cvat.user_of(request)
        need("projects", pid)
        with cvat.store.write():
            for task in cvat.store.all("tasks", project_id=pid):
                _delete_task(task["id"])
            for kind in ("labels", "webhooks"):
                for doc in cvat.store.all(kind, project_id=pid):
                    cvat.store.delete(kind, doc["id"])
            cvat.store.delete("projects", pid)
        return Response(status_code=204)

    @app.get("/api/labels")
    def labels(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        q = request.query_params
        project_id = q.get("project_id")
        if q.get("task_id"):
            project_id = str(need("tasks", int(q["task_id"]))["project_id"])
        if q.get("job_id"):
            project_id = str(need("jobs", int(q["job_id"]))["project_id"])
        found = [
            cvat.label_read(lb)
            for lb in cvat.store.all("labels")
            if project_id is None or lb["project_id"] == int(project_id)
        ]
        return _page(request, found)

    @app.post("/api/tasks", status_code=201)
    async def create_task(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        with cvat.store.write():
            return cvat.task_read(cvat.create_task(user, await request.json()))

    @app.get("/api/tasks/{tid}")
    def get_task(tid: int, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        return cvat.task_read(need("tasks", tid))

    def _delete_task(tid: int) -> None:
        for job in cvat.store.all("jobs", task_id=tid):
            cvat.store.delete("annotations", job["id"])
            cvat.store.delete("jobs", job["id"])
        cvat.store.delete_blobs(f"task/{tid}/")
        cvat.store.delete("tasks", tid)

    @app.delete("/api/tasks/{tid}", status_code=204)
    def delete_task(tid: int, request: Request) -> Response:
        cvat.user_of(request)
        need("tasks", tid)
        with cvat.store.write():
            _delete_task(tid)
        return Response(status_code=204)

    @app.post("/api/tasks/{tid}/data/")
    @app.post("/api/tasks/{tid}/data")
    async def task_data(tid: int, request: Request) -> Response:
        user = cvat.user_of(request)
        task = need("tasks", tid)
        if task["size"]:
            raise fail(400, {"detail": "this task already has data"})
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
            with cvat.store.write():
                rq = cvat.finish_upload(user, task)
            return JSONResponse({"rq_id": rq["rq_id"]}, status_code=202)
        raise fail(
            400, {"detail": "this double accepts local uploads (Upload-Start/Multiple/Finish)"}
        )

    @app.get("/api/tasks/{tid}/data/")
    @app.get("/api/tasks/{tid}/data")
    def task_chunk(tid: int, request: Request) -> Response:
        cvat.user_of(request)
        need("tasks", tid)
        q = request.query_params
        if q.get("type") != "chunk" or q.get("number", "0") != "0":
            raise fail(400, {"detail": "audio tasks have one chunk: type=chunk&number=0"})
        data = cvat.store.blob(f"task/{tid}/chunk")
        if data is None:
            raise fail(404, {"detail": "no data"})
        return Response(data, media_type="audio/mpeg")

    @app.get("/api/tasks/{tid}/data/meta")
    def task_meta(tid: int, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        task = need("tasks", tid)
        return compact(
            "meta",
            {
                "chunks_updated_date": task["updated_date"],
                "chunk_size": task["size"],
                "size": task["size"],
                "image_quality": 70,
                "start_frame": 0,
                "stop_frame": max(0, task["size"] - 1),
                "frame_filter": "",
                "frames": [],
                "deleted_frames": [],
                "included_frames": None,
                "chapters": None,
                "storage": "db",
                "cloud_storage_id": None,
            },
        )

    @app.get("/api/requests/{rq_id}")
    def get_request(rq_id: str, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        rq = next((r for r in cvat.store.all("requests") if r["rq_id"] == rq_id), None)
        if rq is None:
            raise fail(404, {"detail": "Not found."})
        return compact(
            "request",
            {
                "id": rq["rq_id"],
                "status": rq["status"],
                "message": rq["message"],
                "progress": 1.0,
                "created_date": rq["created_date"],
                "started_date": rq["created_date"],
                "finished_date": rq["created_date"],
                "expiry_date": None,
                "owner": cvat.basic_user(rq["owner_id"]),
                "result_url": None,
                "result_id": rq["task_id"],
                "operation": compact(
                    "operation",
                    {
                        "type": "create:task",
                        "target": "task",
                        "project_id": rq["project_id"],
                        "task_id": rq["task_id"],
                        "job_id": None,
                        "format": None,
                        "function_id": None,
                    },
                ),
            },
        )

    @app.get("/api/jobs")
    def jobs(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        q = request.query_params
        match = {k: int(q[k]) for k in ("task_id", "project_id") if q.get(k)}
        return _page(request, [cvat.job_read(j) for j in cvat.store.all("jobs", **match)])

    @app.get("/api/jobs/{jid}")
    def get_job(jid: int, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        return cvat.job_read(need("jobs", jid))

    @app.patch("/api/jobs/{jid}")
    async def patch_job(jid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        body = await request.json()
        with cvat.store.write():
            job = need("jobs", jid)
            if not cvat.may_edit(user, job):
                raise fail(403, {"detail": "You do not have permission to perform this action."})
            before: dict[str, Any] = {}
            if "assignee" in body:
                assignee = body["assignee"]
                if assignee is not None and cvat.store.get("users", assignee) is None:
                    raise fail(400, {"assignee": [f"user {assignee} does not exist"]})
                if (
                    user["id"] == job["assignee_id"]
                    and not user["is_staff"]
                    and assignee != job["assignee_id"]
                ):
                    raise fail(403, {"detail": "an annotator cannot reassign a job"})
                before["assignee"] = cvat.basic_user(job["assignee_id"])
                job.update(assignee_id=assignee, assignee_updated_date=now())
            for field, allowed in (("state", JOB_STATES), ("stage", JOB_STAGES)):
                if field in body:
                    if body[field] not in allowed:
                        raise fail(400, {field: [f"must be one of {allowed}"]})
                    before[field] = job[field]
                    job[field] = body[field]
            job["updated_date"] = now()
            cvat.store.put("jobs", job)
        read = cvat.job_read(job)
        if before:
            cvat.fire("update:job", job["project_id"], {"job": read, "before_update": before}, user)
        return read

    @app.get("/api/jobs/{jid}/annotations")
    def get_annotations(jid: int, request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        need("jobs", jid)
        return cvat.annotations(jid)

    @app.put("/api/jobs/{jid}/annotations")
    async def put_annotations(jid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        body = await request.json()
        with cvat.store.write():
            job = need("jobs", jid)
            if not cvat.may_edit(user, job):
                raise fail(403, {"detail": "You do not have permission to perform this action."})
            return cvat.save_annotations(job, body)

    @app.patch("/api/jobs/{jid}/annotations")
    async def patch_annotations(jid: int, request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        action = request.query_params.get("action")
        if action not in ("create", "update", "delete"):
            raise fail(400, {"action": ["must be create, update or delete"]})
        body = await request.json()
        with cvat.store.write():
            job = need("jobs", jid)
            if not cvat.may_edit(user, job):
                raise fail(403, {"detail": "You do not have permission to perform this action."})
            current = {i["id"]: i for i in cvat.annotations(jid)["intervals"]}
            items = body.get("intervals") or []
            if action == "delete":
                for item in items:
                    current.pop(item.get("id"), None)
            else:
                for item in items:
                    if action == "update" and item.get("id") not in current:
                        raise fail(
                            400, {"intervals": [f"interval {item.get('id')} does not exist"]}
                        )
                    key = item.get("id") if action == "update" else None
                    current[key if key is not None else f"new{len(current)}"] = {**item, "id": key}
            cvat.save_annotations(job, {"intervals": list(current.values())})
            return {
                "version": 0,
                "tags": [],
                "shapes": [],
                "tracks": [],
                "intervals": cvat.check_intervals(job, items) if action != "delete" else items,
            }

    @app.post("/api/webhooks", status_code=201)
    async def create_webhook(request: Request) -> dict[str, Any]:
        user = cvat.user_of(request)
        body = await request.json()
        if body.get("type") != "project" or not cvat.store.get(
            "projects", body.get("project_id") or 0
        ):
            raise fail(400, {"project_id": ["a project webhook needs an existing project_id"]})
        with cvat.store.write():
            hook = cvat.store.insert(
                "webhooks",
                {
                    "target_url": body["target_url"],
                    "secret": body.get("secret", ""),
                    "events": list(body.get("events") or []),
                    "project_id": body["project_id"],
                    "is_active": body.get("is_active", True),
                    "enable_ssl": body.get("enable_ssl", True),
                    "description": body.get("description", ""),
                    "owner_id": user["id"],
                    "created_date": now(),
                },
            )
        return cvat.webhook_read(hook)

    @app.get("/api/webhooks")
    def list_webhooks(request: Request) -> dict[str, Any]:
        cvat.user_of(request)
        q = request.query_params
        match = {"project_id": int(q["project_id"])} if q.get("project_id") else {}
        return _page(request, [cvat.webhook_read(w) for w in cvat.store.all("webhooks", **match)])

    return app

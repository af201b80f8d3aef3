"""The exchange oracle's one CVAT client, over cvat-sdk. Every create is preceded by a lookup
by name, so a build that is retried after a crash finds what it made instead of making it
twice.

Checked against a real CVAT 2.73.0 (recorded exchanges) and CVAT's server code: worker
accounts are made with names and found by username (CVAT's user search ignores e-mail);
a task's size is CVAT's own (its audio stream's duration less its start time), never our
decode; intervals may stop at `size`; read back, every attribute comes with its default
(so a select attribute nobody chose is given an empty first value that reads as "unset");
jobs are listed by type, since a ground-truth job lists first."""

from __future__ import annotations

import contextlib
import logging
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvat_sdk import Client, Config, models
from cvat_sdk.api_client.exceptions import ServiceException
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, NewConnectionError

from oracle_core.manifest import Annotation

log = logging.getLogger(__name__)
TRANSCRIPTION = "transcription"
UNSET = ""  # the first value of a select attribute: nothing chosen yet
CHECKED_VERSIONS = ("2.73.0",)  # CVAT releases this client was checked against
_versions_seen: set[str] = set()


@dataclass(frozen=True)
class LabelSpec:
    """CVAT ids of one label and its attributes, by name."""

    id: int
    name: str
    attributes: dict[str, int]


def project_labels(annotation: Annotation) -> list[models.PatchedLabelRequest]:
    shared = {a.name: a for a in annotation.shared_attributes}
    labels = []
    for label in annotation.labels:
        attrs = []
        if label.transcription:
            attrs.append(
                models.AttributeRequest(
                    name=TRANSCRIPTION, mutable=True, input_type="text", values=[]
                )
            )
        for name in annotation.attributes_of(label):
            a = shared[name]
            values = list(a.values)
            if a.type in ("select", "radio") and not a.default_value:
                # CVAT fills every attribute with its default when it is read back: an
                # empty first value keeps "not chosen" apart from a real choice.
                values = [UNSET, *values]
            attrs.append(
                models.AttributeRequest(
                    name=a.name,
                    mutable=True,
                    input_type=a.type,
                    values=values,
                    default_value=a.default_value or (values[0] if values else ""),
                )
            )
        labels.append(
            models.PatchedLabelRequest(name=label.name, type="interval", attributes=attrs)
        )
    return labels


RETRY_WAITS_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # each jittered by +-50 %
IDEMPOTENT = ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE")


class Cvat:
    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        timeout_s: float = 60.0,
        retry_deadline_s: float = 60.0,
    ) -> None:
        # cvat-sdk polls a task's creation every 5 s by default; real CVAT takes a few.
        self.client = Client(url, config=Config(status_check_period=0.5))
        rest = self.client.api_client.rest_client
        send = rest.request

        def patient(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            """Every request gets a read deadline (a stalled CVAT must not hold a worker),
            and a 5xx, a timeout or a dropped connection is retried per request, with
            jittered backoff, until `retry_deadline_s`: requests that change nothing twice
            (GET, PUT, PATCH, DELETE) always, a POST only when it never reached CVAT."""
            if kwargs.get("_request_timeout") is None:
                kwargs["_request_timeout"] = (10.0, timeout_s)
            deadline = time.monotonic() + retry_deadline_s
            waits = list(RETRY_WAITS_S)
            while True:
                try:
                    return send(method, url, *args, **kwargs)
                except (ServiceException, Urllib3Error) as exc:
                    unsent = isinstance(exc, NewConnectionError) or (
                        isinstance(exc, MaxRetryError)
                        and isinstance(exc.reason, NewConnectionError)
                    )
                    wait = waits.pop(0) * random.uniform(0.5, 1.5) if waits else None
                    if wait is None or time.monotonic() + wait > deadline:
                        raise
                    if method.upper() not in IDEMPOTENT and not unsent:
                        raise
                    log.warning("CVAT %s %s: %s; again in %.1f s", method, url, exc, wait)
                    time.sleep(wait)

        rest.request = patient
        self.client.login((username, password))
        if url not in _versions_seen:
            _versions_seen.add(url)
            version = str(self.client.api_client.server_api.retrieve_about()[0].version)
            checked = "checked" if version in CHECKED_VERSIONS else "not checked"
            log.info("CVAT at %s is version %s (%s with this oracle)", url, version, checked)

    def close(self) -> None:
        self.client.close()

    def ensure_project(self, name: str, annotation: Annotation) -> int:
        page, _ = self.client.api_client.projects_api.list(search=name, page_size=100)
        for project in page.results:
            if project.name == name:
                return int(project.id)
        project = self.client.projects.create(
            models.ProjectWriteRequest(name=name, labels=project_labels(annotation))
        )
        return int(project.id)

    def labels(self, project_id: int) -> dict[str, LabelSpec]:
        project = self.client.projects.retrieve(project_id)
        return {
            lb.name: LabelSpec(lb.id, lb.name, {a.name: a.id for a in lb.attributes})
            for lb in project.get_labels()
        }

    def ensure_webhook(self, project_id: int, target_url: str, secret: str) -> int:
        page, _ = self.client.api_client.webhooks_api.list(project_id=project_id, page_size=100)
        for hook in page.results:
            if hook.target_url == target_url:
                return int(hook.id)
        hook, _ = self.client.api_client.webhooks_api.create(
            models.WebhookWriteRequest(
                target_url=target_url,
                type="project",
                content_type="application/json",
                secret=secret,
                events=["update:job"],  # also sent on every annotation save: see lifecycle
                project_id=project_id,
                enable_ssl=False,
            )
        )
        return int(hook.id)

    def ensure_task(self, project_id: int, name: str, mp3: bytes) -> tuple[int, int, int]:
        """(task id, job id, size in ms as CVAT counts it) of the task holding this clip;
        creates it if it is not there."""
        page, _ = self.client.api_client.tasks_api.list(
            project_id=project_id, name=name, page_size=100
        )
        for existing in page.results:
            if existing.name != name:
                continue
            size = existing.get("size")  # absent until the task's data has arrived
            if size:
                return int(existing.id), self.annotation_job(int(existing.id)), int(size)
            # Created, but its data never arrived (a crash mid-upload): start it again.
            self.client.tasks.remove_by_ids([existing.id])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.mp3"
            path.write_bytes(mp3)
            task = self.client.tasks.create_from_data(
                models.TaskWriteRequest(name=name, project_id=project_id), resources=[path]
            )
        task.fetch()
        return int(task.id), self.annotation_job(int(task.id)), int(task.size)

    def annotation_job(self, task_id: int) -> int:
        """The task's annotation job (a ground-truth job, when there is one, lists first)."""
        page, _ = self.client.api_client.jobs_api.list(task_id=task_id, type="annotation")
        return int(page.results[0].id)

    def put_intervals(self, job_id: int, intervals: Sequence[dict[str, Any]]) -> None:
        self.client.api_client.jobs_api.update_annotations(
            job_id,
            labeled_data_request=models.LabeledDataRequest(
                intervals=[
                    models.LabeledIntervalRequest(
                        label_id=i["label_id"],
                        start=i["start"],
                        stop=i["stop"],
                        source=i.get("source", "manual"),
                        attributes=[
                            models.AttributeValRequest(spec_id=a["spec_id"], value=a["value"])
                            for a in i.get("attributes", [])
                        ],
                    )
                    for i in intervals
                ]
            ),
        )

    def put_segments(
        self, job_id: int, project_id: int, segments: Sequence[dict[str, Any]]
    ) -> None:
        """Save segments given by names ({start, stop, label, transcription, attributes})
        as the job's intervals, translating names to this project's label and spec ids."""
        labels = self.labels(project_id)
        intervals = []
        for seg in segments:
            spec = labels.get(seg["label"])
            if spec is None:
                raise ValueError(f"label '{seg['label']}' is not in project {project_id}")
            values = dict(seg.get("attributes") or {})
            if seg.get("transcription") is not None and TRANSCRIPTION in spec.attributes:
                values[TRANSCRIPTION] = seg["transcription"]
            intervals.append(
                {
                    "label_id": spec.id,
                    "start": int(seg["start"]),
                    "stop": int(seg["stop"]),
                    "source": seg.get("source", "manual"),
                    "attributes": [
                        {"spec_id": spec.attributes[name], "value": str(value)}
                        for name, value in values.items()
                        if name in spec.attributes
                    ],
                }
            )
        self.put_intervals(job_id, intervals)

    def intervals(self, job_id: int) -> list[dict[str, Any]]:
        """The job's intervals as CVAT stores them (clip ms, label and attribute spec ids)."""
        data, _ = self.client.api_client.jobs_api.retrieve_annotations(job_id)
        return [
            {
                "label_id": int(i.label_id),
                "start": int(i.start),
                "stop": None if i.stop is None else int(i.stop),
                "source": str(getattr(i, "source", "manual") or "manual"),
                "score": 1.0 if getattr(i, "score", None) is None else float(i.score),
                # CVAT returns every attribute, unset ones at their default: "" is unset.
                "attributes": [
                    {"spec_id": int(a.spec_id), "value": str(a.value)}
                    for a in i.attributes
                    if str(a.value) != UNSET
                ],
            }
            for i in (data.intervals or [])
        ]

    def assign(self, job_id: int, user_id: int | None) -> None:
        self.client.api_client.jobs_api.partial_update(
            job_id, patched_job_write_request=models.PatchedJobWriteRequest(assignee=user_id)
        )

    def set_state(self, job_id: int, state: str) -> None:
        self.client.api_client.jobs_api.partial_update(
            job_id, patched_job_write_request=models.PatchedJobWriteRequest(state=state)
        )

    def job_state(self, job_id: int) -> str:
        job, _ = self.client.api_client.jobs_api.retrieve(job_id)
        return str(job.state)

    def register_user(self, username: str, email: str, password: str) -> int:
        """A CVAT account for a worker, through CVAT's sign-up endpoint. CVAT refuses blank
        names and answers without the new user's id, so the id is looked up by username."""
        self.client.api_client.rest_client.POST(
            f"{self.client.api_map.host}/api/auth/register",
            body={
                "username": username,
                "email": email,
                "password1": password,
                "password2": password,
                "first_name": "HUMAN",
                "last_name": "worker",
            },
            headers={"Content-Type": "application/json"},
        )  # 201 without an id; anything but 2xx raises ApiException
        found = self.find_user(username)
        if found is None:
            raise LookupError(f"CVAT registered {username} but does not list it")
        return found

    def find_user(self, username: str) -> int | None:
        """A user by exact username (CVAT searches usernames and names, not e-mails)."""
        page, _ = self.client.api_client.users_api.list(search=username, page_size=100)
        for user in page.results:
            if user.username == username:
                return int(user.id)
        return None

    def delete_project(self, project_id: int) -> None:
        """Idempotent: a project already gone is fine (a retried cleanup)."""
        from cvat_sdk.api_client.exceptions import NotFoundException

        with contextlib.suppress(NotFoundException):
            self.client.api_client.projects_api.destroy(project_id)

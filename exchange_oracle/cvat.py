"""The exchange oracle's one CVAT client, over cvat-sdk. Every create is preceded by a lookup
by name, so a build that is retried after a crash finds what it made instead of making it
twice."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvat_sdk import Client, models

from oracle_core.manifest import Annotation

TRANSCRIPTION = "transcription"


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
            attrs.append(
                models.AttributeRequest(
                    name=a.name,
                    mutable=True,
                    input_type=a.type,
                    values=list(a.values),
                    default_value=a.default_value or (a.values[0] if a.values else ""),
                )
            )
        labels.append(
            models.PatchedLabelRequest(name=label.name, type="interval", attributes=attrs)
        )
    return labels


class Cvat:
    def __init__(self, url: str, username: str, password: str, timeout_s: float = 60.0) -> None:
        self.client = Client(url)
        # A CVAT that stalls must not hold a worker forever: every request gets a deadline,
        # and the read timeout surfaces as a retryable error.
        rest = self.client.api_client.rest_client
        send = rest.request

        def with_deadline(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("_request_timeout") is None:
                kwargs["_request_timeout"] = (10.0, timeout_s)
            return send(*args, **kwargs)

        rest.request = with_deadline
        self.client.login((username, password))

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
                events=["update:job"],
                project_id=project_id,
                enable_ssl=False,
            )
        )
        return int(hook.id)

    def ensure_task(self, project_id: int, name: str, mp3: bytes) -> tuple[int, int]:
        """(task id, job id) of the task holding this clip; creates it if it is not there."""
        page, _ = self.client.api_client.tasks_api.list(
            project_id=project_id, name=name, page_size=100
        )
        for existing in page.results:
            if existing.name != name:
                continue
            if existing.size:
                jobs, _ = self.client.api_client.jobs_api.list(task_id=existing.id)
                return int(existing.id), int(jobs.results[0].id)
            # Created, but its data never arrived (a crash mid-upload): start it again.
            self.client.tasks.remove_by_ids([existing.id])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.mp3"
            path.write_bytes(mp3)
            task = self.client.tasks.create_from_data(
                models.TaskWriteRequest(name=name, project_id=project_id), resources=[path]
            )
        (job,) = task.get_jobs()
        return int(task.id), int(job.id)

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
                "score": float(getattr(i, "score", 1.0) or 1.0),
                "attributes": [
                    {"spec_id": int(a.spec_id), "value": str(a.value)} for a in i.attributes
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
        """A CVAT account for a worker (CVAT's own sign-up endpoint)."""
        import json

        reply = self.client.api_client.rest_client.POST(
            f"{self.client.api_map.host}/api/auth/register",
            body={
                "username": username,
                "email": email,
                "password1": password,
                "password2": password,
                "first_name": "",
                "last_name": "",
            },
            headers={"Content-Type": "application/json"},
        )
        return int(json.loads(reply.data)["id"])

    def find_user(self, email: str) -> int | None:
        page, _ = self.client.api_client.users_api.list(search=email, page_size=10)
        for user in page.results:
            if getattr(user, "email", None) == email:
                return int(user.id)
        return None

    def delete_project(self, project_id: int) -> None:
        """Idempotent: a project already gone is fine (a retried cleanup)."""
        from cvat_sdk.api_client.exceptions import NotFoundException

        with contextlib.suppress(NotFoundException):
            self.client.api_client.projects_api.destroy(project_id)

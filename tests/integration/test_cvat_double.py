"""Contract tests of the CVAT test double against what a real CVAT 2.73.0 server answered
to the same requests (recorded 2026-12-02; the facts are restated here in our words, the
recordings are not read). cvat-sdk 2.80's own client and models talk to the double where
the oracle uses them, so a shape CVAT would not send fails its type checks too."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from cvat_sdk import Client, models
from cvat_sdk.core.exceptions import BackgroundRequestException
from fastapi import FastAPI, Request

from audio_pipeline import decode, encode_mp3
from tests.integration.conftest import free_port, serve, wait_for

pytestmark = pytest.mark.integration
CVAT_JSON = "application/vnd.cvat+json"


@pytest.fixture(scope="module")
def cvat_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from sandbox.cvat_double import create_app

    port = free_port()
    app = create_app(tmp_path_factory.mktemp("cvat") / "cvat.db", f"http://127.0.0.1:{port}")
    with serve(app, port=port) as url:
        yield url


@pytest.fixture
def client(cvat_url: str) -> Iterator[Client]:
    with Client(cvat_url) as c:
        c.login(("admin", "admin-password"))
        yield c


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = np.arange(16_000 * 3) / 16_000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8_000).astype(np.int16)
    path = tmp_path_factory.mktemp("clip") / "clip.mp3"
    path.write_bytes(encode_mp3(pcm))
    return path


class Raw:
    """Plain HTTP with a user's token, for what cvat-sdk would refuse to send."""

    def __init__(self, url: str, username: str = "admin", password: str = "admin-password"):
        self.url = url
        key = httpx.post(f"{url}/api/auth/login", json={"username": username, "password": password})
        self.headers = {"Authorization": f"Token {key.json()['key']}"}

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)


def project_spec(name: str) -> models.ProjectWriteRequest:
    return models.ProjectWriteRequest(
        name=name,
        labels=[
            models.PatchedLabelRequest(
                name="speech",
                type="interval",
                attributes=[
                    models.AttributeRequest(
                        name="transcription", mutable=True, input_type="text", values=[]
                    ),
                    models.AttributeRequest(
                        name="quality",
                        mutable=True,
                        input_type="select",
                        values=["clean", "noisy"],
                        default_value="clean",
                    ),
                ],
            ),
        ],
    )


def new_task(client: Client, clip: Path, name: str) -> tuple[Any, Any, Any]:
    project = client.projects.create(project_spec(name))
    task = client.tasks.create_from_data(
        models.TaskWriteRequest(name=name, project_id=project.id), resources=[clip]
    )
    (job,) = task.get_jobs()
    return project, task, job


def register(cvat_url: str, name: str) -> Raw:
    reply = httpx.post(
        f"{cvat_url}/api/auth/register",
        json={"username": name, "email": f"{name}@w.test", "password1": f"pw-{name}1!",
              "password2": f"pw-{name}1!", "first_name": "W", "last_name": "Orker"},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    return Raw(cvat_url, name, f"pw-{name}1!")


def user_id(raw: Raw, username: str) -> int:
    found = raw("GET", "/api/users", params={"search": username}).json()["results"]
    return int(next(u["id"] for u in found if u["username"] == username))


def test_server_answers_as_cvat_2_73_in_its_media_type(cvat_url: str) -> None:
    about = httpx.get(f"{cvat_url}/api/server/about")  # anonymous
    assert about.headers["content-type"] == CVAT_JSON
    assert about.json()["version"] == "2.73.0"
    assert httpx.get(f"{cvat_url}/api/jobs").json() == {
        "detail": "Authentication credentials were not provided."
    }


def test_sign_up_refuses_blank_names_answers_without_an_id_and_search_ignores_email(
    cvat_url: str,
) -> None:
    blank = httpx.post(
        f"{cvat_url}/api/auth/register",
        json={"username": "nobody", "email": "n@w.test", "password1": "Pw-12345!",
              "password2": "Pw-12345!", "first_name": "", "last_name": ""},
    )  # fmt: skip
    assert blank.status_code == 400
    assert blank.json() == {
        "first_name": ["This field may not be blank."],
        "last_name": ["This field may not be blank."],
    }
    made = httpx.post(
        f"{cvat_url}/api/auth/register",
        json={"username": "wsearch", "email": "wsearch@w.test", "password1": "Pw-12345!",
              "password2": "Pw-12345!", "first_name": "W", "last_name": "Orker"},
    ).json()  # fmt: skip
    assert "id" not in made and made["key"] and made["first_name"] == "W"
    raw = Raw(cvat_url)
    assert raw("GET", "/api/users", params={"search": "wsearch@w.test"}).json()["count"] == 0
    assert user_id(raw, "wsearch") > 1


def test_the_size_is_the_streams_duration_less_its_start_not_a_decode(
    client: Client, clip: Path
) -> None:
    _, task, job = new_task(client, clip, "size")
    with av.open(str(clip)) as container:
        stream = container.streams.audio[0]
        expected = int((stream.duration - (stream.start_time or 0)) * stream.time_base * 1000)
    decoded_ms = len(decode(clip)) // 16
    assert task.size == expected < decoded_ms  # CVAT counts short of the decoded length
    assert (task.media_type, task.dimension, task.mode) == ("audio", "1d", "interpolation")
    assert (job.start_frame, job.stop_frame, job.state) == (0, task.size - 1, "new")
    meta = task.get_meta()
    assert meta.storage == "local" and [f.name for f in meta.frames] == ["clip.mp3"]


def test_bounds_allow_stop_at_size_and_refuse_the_rest_in_cvats_words(
    client: Client, clip: Path, cvat_url: str
) -> None:
    project, task, job = new_task(client, clip, "bounds")
    label = project.get_labels()[0]
    raw, size = Raw(cvat_url), task.size

    def put(start: int, stop: int | None, **extra: Any) -> httpx.Response:
        body = {"intervals": [{"label_id": label.id, "start": start, "stop": stop, **extra}]}
        return raw("PUT", f"/api/jobs/{job.id}/annotations", json=body)

    assert put(0, size).status_code == 200 and put(0, None).status_code == 200
    assert put(2000, 1000).json() == ["Interval start must be <= stop, got [2000, 1000]"]
    assert put(-5, 10).json() == {
        "intervals": [{"start": ["Ensure this value is greater than or equal to 0."]}]
    }
    assert put(0, size + 48).json() == [
        f"Interval start must be within [0, {size - 1}] and stop must be within [0, {size}], "
        f"got [0, {size + 48}]"
    ]
    assert "got 'bogus'" in put(0, 10, source="bogus").json()["intervals"][0]["source"][0]


def test_annotations_read_back_with_every_attribute_and_new_ids_each_time(
    client: Client, clip: Path, cvat_url: str
) -> None:
    project, _, job = new_task(client, clip, "attrs")
    label = project.get_labels()[0]
    specs = {a.name: a for a in label.attributes}
    assert specs["transcription"].values == [""]  # sent as []
    raw = Raw(cvat_url)
    one = {"label_id": label.id, "start": 0, "stop": 100,
           "attributes": [{"spec_id": specs["transcription"].id, "value": "hi"}]}  # fmt: skip
    first = raw("PUT", f"/api/jobs/{job.id}/annotations", json={"intervals": [one]}).json()
    again = raw("PUT", f"/api/jobs/{job.id}/annotations", json={"intervals": [one]}).json()
    assert first["version"] == again["version"] == 0
    assert again["intervals"][0]["id"] > first["intervals"][0]["id"]
    read = client.jobs.retrieve(job.id).get_annotations()  # LabeledData, type-checked
    (interval,) = read.intervals
    assert [(a.spec_id, a.value) for a in interval.attributes] == [
        (specs["transcription"].id, "hi"),
        (specs["quality"].id, "clean"),  # not sent: its default
    ]
    created = raw("PATCH", f"/api/jobs/{job.id}/annotations", params={"action": "create"},
                  json={"intervals": [{**one, "start": 200, "stop": 300}]}).json()  # fmt: skip
    assert created["intervals"][0]["id"] > again["intervals"][0]["id"]
    by_id_only = raw("PATCH", f"/api/jobs/{job.id}/annotations", params={"action": "delete"},
                     json={"intervals": [{"id": created["intervals"][0]["id"]}]})  # fmt: skip
    assert by_id_only.status_code == 400 and "label_id" in by_id_only.json()["intervals"][0]


def test_update_job_is_sent_on_every_save_with_what_changed(client: Client, clip: Path) -> None:
    received: list[tuple[bytes, str]] = []
    receiver = FastAPI()

    @receiver.post("/cvat-webhook")
    async def hook(request: Request) -> dict[str, Any]:
        received.append((await request.body(), request.headers["x-signature-256"]))
        return {}

    project, _, job = new_task(client, clip, "hooks")
    label = project.get_labels()[0]
    with serve(receiver) as url:
        webhook, _ = client.api_client.webhooks_api.create(
            models.WebhookWriteRequest(
                target_url=f"{url}/cvat-webhook", type="project",
                content_type="application/json", secret="s3cret",
                events=["update:job", "create:task"], project_id=project.id,
            )
        )  # fmt: skip
        assert [str(e.value) for e in webhook.events] == ["create:task", "update:job"]
        client.api_client.jobs_api.update_annotations(
            job.id,
            labeled_data_request=models.LabeledDataRequest(
                intervals=[models.LabeledIntervalRequest(label_id=label.id, start=0, stop=10)]
            ),
        )
        wait_for(lambda: len(received) == 1, what="the save's update:job")
        client.api_client.jobs_api.partial_update(
            job.id, patched_job_write_request=models.PatchedJobWriteRequest(state="completed")
        )
        wait_for(lambda: len(received) == 2, what="the state's update:job")
    docs = [json.loads(body) for body, _ in received]
    for body, signature in received:
        assert signature == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    save, done = docs
    assert list(save) == ["event", "webhook_id", "job", "sender", "before_update", "changes"]
    assert set(save["before_update"]) == {"updated_date"} and set(save["changes"]) == {
        "updated_date"
    }
    assert done["changes"]["state"] == {"from": "new", "to": "completed"}
    assert done["before_update"]["state"] == "new"


def test_a_new_stage_resets_the_state_and_assignment_is_reported_as_assignee_id(
    client: Client, clip: Path, cvat_url: str
) -> None:
    _, _, job = new_task(client, clip, "stage")
    raw = Raw(cvat_url)
    worker = register(cvat_url, "wstage")
    assigned = raw("PATCH", f"/api/jobs/{job.id}", json={"assignee": user_id(raw, "wstage")})
    assert assigned.json()["assignee"]["username"] == "wstage"
    assert worker("PATCH", f"/api/jobs/{job.id}", json={"state": "completed"}).status_code == 200
    moved = raw("PATCH", f"/api/jobs/{job.id}", json={"stage": "validation"}).json()
    assert (moved["stage"], moved["status"], moved["state"]) == ("validation", "validation", "new")
    bad = raw("PATCH", f"/api/jobs/{job.id}", json={"state": "bogus"})
    assert bad.json() == {"state": ['"bogus" is not a valid choice.']}


def test_a_ground_truth_job_lists_first_and_jobs_filter_by_type(
    client: Client, clip: Path, cvat_url: str
) -> None:
    _, task, job = new_task(client, clip, "gt")
    raw = Raw(cvat_url)
    extra = raw("POST", "/api/jobs", json={"type": "ground_truth", "task_id": task.id,
                                            "frame_selection_method": "random_uniform",
                                            "frame_count": 5})  # fmt: skip
    assert extra.json() == [
        'Fields "frame_selection_method", "frame_count" specified, but not used.'
    ]
    gt = raw("POST", "/api/jobs", json={"type": "ground_truth", "task_id": task.id})
    assert gt.status_code == 201
    listed = raw("GET", "/api/jobs", params={"task_id": task.id}).json()["results"]
    assert [j["type"] for j in listed] == ["ground_truth", "annotation"]  # newest first
    page, _ = client.api_client.jobs_api.list(task_id=task.id, type="annotation")
    assert [j.id for j in page.results] == [job.id]


def test_ids_are_never_given_again_after_a_delete(client: Client, clip: Path) -> None:
    first, _, _ = new_task(client, clip, "ids-a")
    client.api_client.projects_api.destroy(first.id)
    second = client.projects.create(project_spec("ids-b"))
    assert second.id > first.id


def test_uploads_requests_and_chunks_behave_as_cvat(
    client: Client, clip: Path, cvat_url: str
) -> None:
    project = client.projects.create(project_spec("data"))
    raw = Raw(cvat_url)
    task = raw("POST", "/api/tasks", json={"name": "t", "project_id": project.id}).json()
    assert "size" not in task and task["dimension"] == "" and task["data"] is None
    path = f"/api/tasks/{task['id']}/data/"
    assert raw("POST", path, headers={"Upload-Start": "true"}).status_code == 202
    raw("POST", path, headers={"Upload-Multiple": "true"},
        files={"client_files[0]": ("clip.mp3", clip.read_bytes())})  # fmt: skip
    form = raw("POST", path, headers={"Upload-Finish": "true"},
               data={"image_quality": "70"})  # fmt: skip
    assert form.status_code == 415
    finish = raw("POST", path, headers={"Upload-Finish": "true"},
                 json={"image_quality": 70})  # fmt: skip
    rq = finish.json()["rq_id"]
    assert rq == f"action=create&target=task&target_id={task['id']}"
    status = raw("GET", f"/api/requests/{rq}").json()
    assert (status["status"], status["progress"]) == ("finished", 0.0) and status["expiry_date"]
    wrong = raw("GET", path, params={"type": "chunk", "number": 1, "quality": "original"})
    assert (
        wrong.json() == "Invalid chunk number '1'. The chunk number should be in the [0, 0] range"
    )
    chunk = raw("GET", path, params={"type": "chunk", "number": 0, "quality": "original"})
    assert chunk.headers["content-type"] == "audio/mpeg" and chunk.content != clip.read_bytes()
    with pytest.raises(BackgroundRequestException, match="segment_size"):
        client.tasks.create_from_data(
            models.TaskWriteRequest(name="s", project_id=project.id, segment_size=500),
            resources=[clip],
        )


def test_generic_tsv_export_and_import_as_cvat_writes_and_reads_them(
    client: Client, clip: Path, cvat_url: str
) -> None:
    project, task, job = new_task(client, clip, "tsv")
    label = project.get_labels()[0]
    specs = {a.name: a.id for a in label.attributes}
    raw = Raw(cvat_url)
    raw("PUT", f"/api/jobs/{job.id}/annotations", json={"intervals": [
        {"label_id": label.id, "start": 0, "stop": 1200,
         "attributes": [{"spec_id": specs["transcription"], "value": "hello world!"}]},
    ]})  # fmt: skip
    export = raw("POST", f"/api/tasks/{task.id}/dataset/export",
                 params={"format": "Generic TSV 1.0", "save_images": "False"}).json()  # fmt: skip
    assert export["rq_id"].endswith("&format=Generic_TSV_1~0&subresource=annotations")
    done = raw("GET", f"/api/requests/{export['rq_id']}").json()
    tsv = httpx.get(done["result_url"], headers=raw.headers).text
    header, row, end = tsv.split("\r\n")  # CRLF line ends
    assert header == "id\tfilename\tstart\tstop\tlabel\tsource\tscore\tquality\ttranscription"
    assert row.split("\t")[1:] == ["clip.mp3", "0:00:00", "0:00:01.200000", "speech", "manual",
                                   "1.0", "clean", "hello world!"] and end == ""  # fmt: skip
    project_export = raw("POST", f"/api/projects/{project.id}/dataset/export",
                         params={"format": "Generic TSV 1.0"}).json()  # fmt: skip
    failed = raw("GET", f"/api/requests/{project_export['rq_id']}").json()
    assert failed["status"] == "failed" and "ProjectData" in failed["message"]
    imported = raw("POST", f"/api/jobs/{job.id}/annotations",
                   params={"format": "Generic TSV 1.0"},
                   files={"annotation_file": ("a.tsv", "start\tstop\tlabel\tscore\n"
                                              "0:00:00.250\t\tspeech\t0.5\n")})  # fmt: skip
    assert imported.json()["rq_id"].startswith("action=import&target=job")
    (row,) = raw("GET", f"/api/jobs/{job.id}/annotations").json()["intervals"]
    assert (row["source"], row["start"], row["stop"], row["score"]) == ("file", 250, None, 0.5)


def test_cvats_rules_for_assignees_and_everyone_else(
    client: Client, clip: Path, cvat_url: str
) -> None:
    project, task, job = new_task(client, clip, "rights")
    admin = Raw(cvat_url)
    worker, other = register(cvat_url, "wright1"), register(cvat_url, "wright2")
    admin("PATCH", f"/api/jobs/{job.id}", json={"assignee": user_id(admin, "wright1")})
    label = project.get_labels()[0]
    body = {"intervals": [{"label_id": label.id, "start": 0, "stop": 10}]}
    mine = worker("GET", f"/api/jobs/{job.id}").json()
    assert mine["task_name"] is None and mine["project_name"] is None
    assert worker("PUT", f"/api/jobs/{job.id}/annotations", json=body).status_code == 200
    assert worker("GET", "/api/jobs").json()["count"] == 1
    media = {"type": "chunk", "number": 0, "quality": "compressed"}
    assert worker("GET", f"/api/tasks/{task.id}/data", params=media).status_code == 403
    assert worker("GET", f"/api/jobs/{job.id}/data", params=media).status_code == 200
    away = worker("PATCH", f"/api/jobs/{job.id}", json={"assignee": None})
    assert away.status_code == 403
    assert away.json() == {"detail": "You do not have permission to perform this action."}
    for method, path in (("GET", f"/api/jobs/{job.id}"), ("GET", f"/api/projects/{project.id}"),
                         ("PUT", f"/api/jobs/{job.id}/annotations")):  # fmt: skip
        assert other(method, path, json=body).status_code == 403, path
    assert other("GET", "/api/jobs").json()["count"] == 0

"""The annotator's page in Debian's Chromium (Playwright), against the exchange oracle over
HTTP on PostgreSQL, S3 and the CVAT double: keyboard editing, autosave to CVAT as intervals,
completeness blocking Submit, the job completed, and clear refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from exchange_oracle.app import create_app
from exchange_oracle.config import ExchangeSettings
from exchange_oracle.context import ExchangeContext
from exchange_oracle.cvat import Cvat
from exchange_oracle.db import assignments, jobs, metadata
from oracle_core.manifest import Annotation
from sandbox.accounts import account
from sandbox.browser import launch
from sandbox.clip_job import seed_clip_job, take_job
from sandbox.cvat_double import create_app as create_cvat
from sandbox.human_app import TokenIssuer
from sandbox.speech import Utterance, compose
from tests.integration.conftest import free_port, serve, wait_for

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ESCROW = "0x" + "A7" * 20
ANNOTATION = Annotation.model_validate(
    {
        "description": "Transcribe each utterance and say who speaks",
        "labels": [
            {"name": "speech", "attributes": ["gender"]},
            {"name": "noise", "transcription": False},
        ],
        "shared_attributes": [{"name": "gender", "values": ["female", "male", "other"]}],
        "validation": {"target_score": 0.2, "target_metric": "wer"},
    }
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def speech() -> Any:
    return compose(
        [Utterance("hello world", "en-us"), Utterance("good morning", "en-gb")],
        pauses_s=2.0,
        lead_s=1.0,
        tail_s=2.5,
    )


@pytest.fixture
def world(pg_url: str, s3_url: str, speech: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    issuer = TokenIssuer()
    port = free_port()
    with serve(create_cvat(tmp_path / "cvat.db", f"http://127.0.0.1:{port}"), port=port) as cvat:
        settings = ExchangeSettings(
            database_url=pg_url,
            cvat_url=cvat,
            human_app_public_key=issuer.public_key_pem,
            storage_endpoint_url=s3_url,
            storage_access_key="sandbox",
            storage_secret_key="sandbox-secret",
            storage_bucket="annotator-page",
        )
        ctx = ExchangeContext(settings)
        metadata.drop_all(ctx.engine)
        metadata.create_all(ctx.engine)
        exported: list[int] = []
        app = create_app(ctx, on_event=lambda _: None, on_export=exported.append)
        with serve(app) as url:
            seed_clip_job(
                ctx, ESCROW, speech.pcm, speech.rate, ANNOTATION, webhook_url=f"{url}/cvat-webhook"
            )
            yield {"url": url, "ctx": ctx, "issuer": issuer, "cvat": cvat, "exported": exported}
        metadata.drop_all(ctx.engine)
        ctx.engine.dispose()


def take(world: dict[str, Any], wallet_index: int) -> tuple[str, str]:
    """A worker registers and takes the job through the worker API: (assignment id, token)."""
    token = world["issuer"].issue(account(wallet_index).address)
    return take_job(world["url"], token, ESCROW), token


def cvat_job(world: dict[str, Any], assignment_id: str) -> tuple[Cvat, int]:
    with world["ctx"].sessions() as s:
        job_id = s.execute(
            select(jobs.c.cvat_job_id)
            .join(assignments, assignments.c.job_id == jobs.c.id)
            .where(assignments.c.id == assignment_id)
        ).scalar_one()
    return Cvat(world["cvat"], "admin", "admin-password"), job_id


def open_page(browser: Any, url: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.errors = errors
    return page


def type_transcription(page: Any, text: str, gender_key: str) -> None:
    """Enter opens the transcription, Tab reaches the gender select, Escape goes back."""
    page.keyboard.press("Enter")
    page.keyboard.type(text)
    page.keyboard.press("Tab")
    page.keyboard.press(gender_key)
    page.keyboard.press("Escape")


def test_an_annotator_edits_with_the_keyboard_autosaves_to_cvat_and_submits(
    browser: Any, world: dict[str, Any]
) -> None:
    assignment_id, token = take(world, 600)
    cvat, job_id = cvat_job(world, assignment_id)
    with world["ctx"].sessions() as s:
        pre = s.execute(select(jobs.c.pre_segments, jobs.c.duration_ms)).one()
    vad = [tuple(p) for p in pre.pre_segments]
    assert len(vad) == 2  # two utterances, two VAD pre-segments
    clip_ms = pre.duration_ms

    page = open_page(browser, f"{world['url']}/annotate/{assignment_id}#token={token}")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    assert "token" not in page.url  # the sign-in left the address bar
    # The pre-segments are shown on load, in the list and as regions on the waveform.
    rows = page.locator("#segments li")
    assert rows.count() == 2
    assert page.locator("#waveform [part~='region']").count() == 2
    assert "2 of 2 segments lack a transcription" in page.locator("#feedback").inner_text()

    # A new segment in the trailing pause, made and edited with the keyboard alone.
    page.keyboard.press("End")
    for _ in range(15):
        page.keyboard.press("ArrowLeft")  # 1.5 s before the end: after the last utterance
    page.keyboard.press("n")
    assert rows.count() == 3
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("[")  # its start moves to the playhead
    start_ms = clip_ms - 1000
    assert page.locator("#seg-start").input_value() == f"{start_ms / 1000:.3f}"
    type_transcription(page, "good night", "f")
    page.wait_for_selector("#save-state[data-state=saved]")
    saved = {(i["start"], i["stop"]): i for i in cvat.intervals(job_id)}
    assert set(saved) == {*vad, (start_ms, clip_ms)}  # CVAT takes stop == size
    # The untouched VAD pre-segments keep their source; the worker's own is manual.
    assert {k: i["source"] for k, i in saved.items()} == {
        **dict.fromkeys(vad, "auto"),
        (start_ms, clip_ms): "manual",
    }
    new = saved[(start_ms, clip_ms)]
    assert sorted(a["value"] for a in new["attributes"]) == ["female", "good night"]

    # Delete, then undo, brings the segment back (and saves it back).
    page.keyboard.press("Delete")
    assert rows.count() == 2
    page.keyboard.press("Control+z")
    assert rows.count() == 3

    # Incomplete work: Submit is refused with what is missing; CVAT's job stays open.
    page.keyboard.press("Control+Enter")
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert "2 of 3 segments lack a transcription" in message.inner_text()
    assert cvat.job_state(job_id) != "completed"

    page.keyboard.press("Escape")  # nothing selected
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")  # the first segment after the playhead
    type_transcription(page, "hello world", "m")
    page.keyboard.press("ArrowDown")
    type_transcription(page, "good morning", "f")
    page.wait_for_selector("#feedback[data-complete=true]")
    page.wait_for_selector("#save-state[data-state=saved]")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "annotator-page.png"), full_page=True)
    texts = sorted(
        a["value"] for i in cvat.intervals(job_id) for a in i["attributes"] if " " in a["value"]
    )
    assert texts == ["good morning", "good night", "hello world"]

    page.keyboard.press("Control+Enter")
    page.wait_for_selector("body[data-state=submitted]")
    assert cvat.job_state(job_id) == "completed"
    wait_for(lambda: _status(world, assignment_id) == "completed", what="the CVAT webhook")
    assert world["exported"]  # the escrow's only job is done: its export was queued
    assert page.errors == []
    cvat.close()


def test_the_clip_streams_in_ranges_behind_a_signed_link(world: dict[str, Any]) -> None:
    assignment_id, token = take(world, 601)
    info = httpx.get(
        f"{world['url']}/assignment/{assignment_id}/annotations",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    audio = f"{world['url']}{info['audio_url']}"
    whole = httpx.get(audio)
    assert whole.status_code == 200 and whole.content[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    part = httpx.get(audio, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    past = httpx.get(audio, headers={"Range": f"bytes={len(whole.content) + 10}-"})
    assert past.status_code == 416
    assert httpx.get(audio.replace("sig=", "sig=0")).status_code == 403
    with world["ctx"].sessions() as s, s.begin():
        s.execute(update(assignments).values(status="canceled"))
    assert httpx.get(audio).status_code == 410


def test_a_foreign_expired_or_missing_sign_in_is_refused_with_a_clear_page(
    browser: Any, world: dict[str, Any]
) -> None:
    assignment_id, _ = take(world, 602)
    url = f"{world['url']}/annotate/{assignment_id}"
    stranger = world["issuer"].issue(account(603).address)
    cases = {
        f"{url}#token={stranger}": ("foreign", "This assignment is not yours"),
        url: ("signin", "Open this page from HUMAN App"),
        f"{url}#token=not-a-jwt": ("signin", "Your sign-in is not valid here"),
    }
    for address, (state, title) in cases.items():
        page = open_page(browser, address)
        page.wait_for_selector(f"body[data-state={state}]")
        assert page.locator("#refusal h1").inner_text() == title
        assert page.locator("#app").is_hidden()
        page.close()

    owner = world["issuer"].issue(account(602).address)
    with world["ctx"].sessions() as s, s.begin():
        s.execute(
            update(assignments)
            .where(assignments.c.id == assignment_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    page = open_page(browser, f"{url}#token={owner}")
    page.wait_for_selector("body[data-state=expired]")
    assert "expired" in page.locator("#refusal h1").inner_text()
    page.close()


def _status(world: dict[str, Any], assignment_id: str) -> str:
    with world["ctx"].sessions() as s:
        status: str = s.execute(
            select(assignments.c.status).where(assignments.c.id == assignment_id)
        ).scalar_one()
    return status


def test_segments_are_drawn_split_merged_and_overlaps_refused(
    browser: Any, world: dict[str, Any]
) -> None:
    assignment_id, token = take(world, 604)
    cvat, job_id = cvat_job(world, assignment_id)
    page = open_page(browser, f"{world['url']}/annotate/{assignment_id}#token={token}")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    rows = page.locator("#segments li")
    box = page.locator("#waveform").bounding_box()
    clip_s = world["ctx"].sessions().execute(select(jobs.c.duration_ms)).scalar_one() / 1000

    def drag(from_s: float, to_s: float) -> None:
        y = box["y"] + 60
        page.mouse.move(box["x"] + box["width"] * from_s / clip_s, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * to_s / clip_s, y, steps=8)
        page.mouse.up()

    drag(2.3, 4.0)  # from the pause into the second utterance: refused, nothing added
    assert "may not overlap" in page.locator("#message").inner_text()
    assert rows.count() == 2
    drag(5.6, 6.6)  # in the trailing pause: a new segment
    assert rows.count() == 3
    page.wait_for_selector("#save-state[data-state=saved]")
    assert len(cvat.intervals(job_id)) == 3

    rows.nth(1).click()  # the second utterance; the playhead goes to its start
    page.locator("#waveform").focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("s")
    assert rows.count() == 4
    page.keyboard.press("ArrowUp")
    page.keyboard.press("m")
    assert rows.count() == 3
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    page.wait_for_selector("#save-state[data-state=saved]")
    assert len(cvat.intervals(job_id)) == 3
    assert page.errors == []
    cvat.close()

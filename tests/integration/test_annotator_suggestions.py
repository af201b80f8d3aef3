"""A requester's suggestions on the page: shown as such, kept as `file` while the worker
leaves them be, `semi-auto` once changed, and the worker's own segments `manual`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from exchange_oracle.db import escrows, jobs
from tests.integration.test_annotator_page import (  # noqa: F401 (its fixtures)
    browser,
    cvat_job,
    open_page,
    speech,
    take,
    world,
)

pytestmark = pytest.mark.integration


def test_suggestions_are_marked_and_an_edit_makes_them_semi_auto(
    browser: Any, world: dict[str, Any]
) -> None:
    assignment_id, token = take(world, 660)
    cvat, job_id = cvat_job(world, assignment_id)
    with world["ctx"].sessions() as s:
        project, vad = s.execute(
            select(escrows.c.cvat_project_id, jobs.c.pre_segments).join(
                jobs, jobs.c.escrow_id == escrows.c.id
            )
        ).one()
    suggested = [
        {"start": a, "stop": b, "label": "speech", "transcription": text, "source": "file"}
        for (a, b), text in zip(vad, ("first suggestion", "second suggestion"), strict=True)
    ]
    cvat.put_segments(job_id, project, suggested)
    page = open_page(browser, f"{world['url']}/annotate/{assignment_id}#token={token}")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    rows = page.locator("#segments li")
    assert rows.count() == 2
    assert page.locator("#segments .tag.suggested").count() == 2
    page.locator("#segments li button").nth(0).click()
    page.keyboard.press("Enter")  # into the transcription
    page.keyboard.type(" corrected")
    page.keyboard.press("Escape")
    page.wait_for_selector("#save-state[data-state=saved]")
    assert page.locator("#segments .tag.suggested").count() == 1
    sources = {(i["start"], i["stop"]): i["source"] for i in cvat.intervals(job_id)}
    assert sources == {tuple(vad[0]): "semi-auto", tuple(vad[1]): "file"}
    assert page.errors == []

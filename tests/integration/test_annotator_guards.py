"""Guards on the page: a locked segment cannot be changed until unlocked, duplicating
respects the job's overlap rule, a segment's language sets its text box's, and an
assignment near its end warns and saves what is unsaved before the page turns read-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from exchange_oracle.db import assignments, escrows
from tests.integration.test_annotator_page import (  # noqa: F401 (its fixtures)
    browser,
    cvat_job,
    open_page,
    speech,
    take,
    world,
)

pytestmark = pytest.mark.integration


def _open(browser: Any, world: dict[str, Any], wallet: int, **change: Any) -> tuple[Any, str]:
    assignment_id, token = take(world, wallet)
    if change:
        with world["ctx"].sessions() as s, s.begin():
            s.execute(update(assignments).where(assignments.c.id == assignment_id).values(**change))
    page = open_page(browser, f"{world['url']}/annotate/{assignment_id}#token={token}")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    return page, assignment_id


def test_a_locked_segment_stays_as_it_is_and_duplicates_obey_the_overlap_rule(
    browser: Any, world: dict[str, Any]
) -> None:
    page, _ = _open(browser, world, 670)
    rows = page.locator("#segments li")
    assert rows.count() == 2
    page.locator("#segments li button").nth(0).click()
    page.keyboard.press("k")
    assert page.locator("#segments .tag.locked").count() == 1
    page.keyboard.press("Delete")
    assert rows.count() == 2 and "locked" in page.locator("#message").inner_text()
    page.keyboard.press("2")  # the noise label: refused too
    assert page.locator("#seg-label").input_value() == "speech"
    assert page.locator("#seg-label").is_disabled()
    page.keyboard.press("k")
    assert page.locator("#segments .tag.locked").count() == 0
    page.keyboard.press("d")  # this job forbids overlaps: a copy would overlap
    assert rows.count() == 2 and "may not overlap" in page.locator("#message").inner_text()
    assert page.errors == []


def test_a_segments_language_is_its_text_boxs(browser: Any, world: dict[str, Any]) -> None:
    with world["ctx"].sessions() as s, s.begin():
        manifest = s.execute(select(escrows.c.manifest)).scalar_one()
        manifest["annotation"]["details"] = {"language": "en", "languages": ["fr", "ar"]}
        s.execute(update(escrows).values(manifest=manifest))
    page, _ = _open(browser, world, 671)
    page.locator("#segments li button").nth(0).click()
    assert page.locator("#seg-text").get_attribute("lang") == "en"
    page.locator("#seg-attributes select[name=language]").select_option("ar")
    page.locator("#segments li button").nth(1).click()
    page.locator("#segments li button").nth(0).click()
    assert page.locator("#seg-text").get_attribute("lang") == "ar"


def test_near_its_end_the_page_warns_and_saves_before_it_turns_read_only(
    browser: Any, world: dict[str, Any]
) -> None:
    ends = datetime.now(UTC) + timedelta(seconds=14)
    page, assignment_id = _open(browser, world, 672, expires_at=ends)
    assert "ends in" in page.locator("#message").inner_text()
    assert "ending" in (page.locator("#expires").get_attribute("class") or "")
    page.locator("#segments li button").nth(0).click()
    page.keyboard.press("Enter")
    page.keyboard.type("hello world")  # typed just before the end
    page.wait_for_selector("body[data-state=expired]", timeout=30_000)
    cvat, job_id = cvat_job(world, assignment_id)
    saved = [a["value"] for i in cvat.intervals(job_id) for a in i["attributes"]]
    assert "hello world" in saved


def test_what_a_segment_lacks_shows_the_moment_it_changes(
    browser: Any, world: dict[str, Any]
) -> None:
    page, _ = _open(browser, world, 673)
    page.keyboard.press("End")
    for _ in range(12):
        page.keyboard.press("ArrowLeft")  # in the trailing pause
    page.keyboard.press("n")  # a new segment, not saved yet
    row = page.locator("#segments li button.selected")
    assert "incomplete" in (row.get_attribute("class") or "")  # before any save
    assert "has no transcription" in (row.get_attribute("title") or "")
    assert "checked here" in page.locator("#feedback").inner_text()
    page.wait_for_selector("#save-state[data-state=saved]")
    assert "3 of 3 segments lack a transcription" in page.locator("#feedback").inner_text()

"""Bugs an annotator hit on the page, each pinned in the browser: a refused drag drawn where
it was dropped, the minimap leaving the playhead behind, completeness markers on the wrong
rows and "Complete" over unsaved edits, Backspace deleting work silently, controls keeping
the keyboard after a click, and messages that were wrong or never went away."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from exchange_oracle.db import assignments
from oracle_core.manifest import Annotation
from sandbox.accounts import account
from sandbox.clip_job import seed_clip_job, take_job
from tests.integration.test_annotator_page import (  # noqa: F401 (its fixtures)
    browser,
    open_page,
    speech,
    take,
    type_transcription,
    world,
)

pytestmark = pytest.mark.integration


def _ready(browser: Any, world: dict[str, Any], wallet: int) -> Any:
    assignment_id, token = take(world, wallet)
    page = open_page(browser, f"{world['url']}/annotate/{assignment_id}#token={token}")
    missing: list[str] = []
    page.on("response", lambda r: r.status == 404 and missing.append(r.url))
    page.missing = missing
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    return page


def _clock_s(page: Any) -> float:
    text = page.locator("#clock").inner_text().split(" / ")[0]
    minutes, seconds = text.split(":")
    return int(minutes) * 60 + float(seconds)


def test_a_refused_drag_snaps_back_and_the_minimap_moves_the_playhead(
    browser: Any, world: dict[str, Any]
) -> None:
    page = _ready(browser, world, 610)
    first = page.locator("#waveform [part~='region']").nth(0)
    second = page.locator("#waveform [part~='region']").nth(1)
    before, target = first.bounding_box(), second.bounding_box()
    page.locator("#segments li button").nth(0).click()  # selected already, as while editing
    before = first.bounding_box()
    # Drag the first segment's end into the second: refused (no overlaps in this job).
    page.mouse.move(before["x"] + before["width"] - 1, before["y"] + 40)
    page.mouse.down()
    page.mouse.move(target["x"] + target["width"] / 2, before["y"] + 40, steps=10)
    moving = first.bounding_box()
    page.mouse.up()
    assert moving["width"] > before["width"] + 20  # it was being stretched
    assert "may not overlap" in page.locator("#message").inner_text()
    page.wait_for_timeout(200)
    after = first.bounding_box()
    assert abs(after["width"] - before["width"]) < 2, (before, after)  # drawn as the data is

    minimap = page.locator("#minimap").bounding_box()
    page.mouse.click(minimap["x"] + minimap["width"] * 0.8, minimap["y"] + minimap["height"] / 2)
    page.wait_for_timeout(300)
    clip_s = float(page.locator("#clock").inner_text().split(" / ")[1].split(":")[1])
    assert abs(_clock_s(page) - 0.8 * clip_s) < 0.3
    page.keyboard.press("n")  # a new segment at the playhead the minimap set
    start = float(page.locator("#seg-start").input_value())
    assert abs(start - 0.8 * clip_s) < 0.3
    assert page.errors == []


def test_markers_follow_their_segments_and_complete_waits_for_the_save(
    browser: Any, world: dict[str, Any]
) -> None:
    page = _ready(browser, world, 611)
    rows = page.locator("#segments li button")
    assert rows.nth(0).get_attribute("class").count("incomplete") == 1
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    type_transcription(page, "hello world", "m")
    page.wait_for_selector("#save-state[data-state=saved]")
    page.wait_for_function(
        "!document.querySelector('#segments li button').classList.contains('incomplete')"
    )
    assert "incomplete" in rows.nth(1).get_attribute("class")
    # A new segment before both: the marker stays on the second utterance, now row 3.
    page.keyboard.press("Escape")
    page.keyboard.press("Home")
    page.keyboard.press("n")
    assert rows.count() == 3
    assert "incomplete" not in rows.nth(1).get_attribute("class")  # hello world: complete
    assert "incomplete" in rows.nth(2).get_attribute("class")
    page.keyboard.press("Delete")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    type_transcription(page, "good morning", "f")
    page.wait_for_selector("#feedback[data-complete=true]")
    page.keyboard.press("Enter")
    page.keyboard.type("!")  # an edit: until the server has checked it, not "Complete"
    assert page.locator("#feedback").get_attribute("data-complete") == "false"
    assert "Complete" not in page.locator("#feedback").inner_text()
    page.wait_for_selector("#feedback[data-complete=true]")
    assert page.errors == []


def test_deleting_says_so_backspace_does_not_delete_and_controls_give_the_keys_back(
    browser: Any, world: dict[str, Any]
) -> None:
    page = _ready(browser, world, 612)
    rows = page.locator("#segments li")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Backspace")
    assert rows.count() == 2
    page.keyboard.press("Delete")
    assert rows.count() == 1
    message = page.locator("#message").inner_text()
    assert "Deleted the segment" in message and "Ctrl+Z brings it back" in message
    page.keyboard.press("Control+z")
    assert rows.count() == 2

    page.locator("#loop").click()  # with the mouse
    assert page.locator("#loop").is_checked()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")  # the page's play/pause, not the checkbox
    assert page.locator("#loop").is_checked()
    page.locator("#play").wait_for()
    assert "Pause" in page.locator("#play").inner_text()
    page.keyboard.press("Space")
    page.locator("#speed").select_option("1.5")
    before = _clock_s(page)
    page.keyboard.press("ArrowRight")  # the playhead, not the speed
    assert page.locator("#speed").input_value() == "1.5"
    assert _clock_s(page) > before

    # An end before the start says so; an overlap message goes when another row is picked.
    rows.nth(0).click()
    start = float(page.locator("#seg-start").input_value())
    page.locator("#seg-end").fill(f"{start - 0.2:.3f}")
    page.locator("#seg-end").press("Enter")
    page.locator("#seg-end").blur()
    assert "must end after it starts" in page.locator("#message").inner_text()
    rows.nth(1).click()
    assert page.locator("#message").is_hidden()
    assert page.missing == []  # no favicon.ico, nor anything else, missing
    assert page.errors == []


TEXT_ONLY = Annotation.model_validate(
    {
        "description": "Transcribe each utterance",
        "labels": [{"name": "speech"}],
        "validation": {"target_score": 0.2, "target_metric": "wer"},
    }
)
TEXT_ESCROW = "0x" + "B8" * 20


def test_a_clip_is_transcribed_while_listening_with_one_key_per_utterance(
    browser: Any, world: dict[str, Any], speech: Any
) -> None:
    """ELAN's transcription mode: Enter in the text box moves to the next segment and plays
    it; Ctrl+Space, Ctrl+R and Alt+arrows work without leaving the box."""
    seed_clip_job(world["ctx"], TEXT_ESCROW, speech.pcm, speech.rate, TEXT_ONLY,
                  webhook_url=f"{world['url']}/cvat-webhook")  # fmt: skip
    token = world["issuer"].issue(account(613).address)
    assignment_id = take_job(world["url"], token, TEXT_ESCROW)
    page = open_page(browser, f"{world['url']}/annotate/{assignment_id}#token={token}")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    said = ["hello world", "good morning"]
    keys = 0
    page.keyboard.press("ArrowDown")  # the first segment
    page.keyboard.press("Enter")  # into its transcription; it plays
    keys += 2
    assert page.evaluate("document.activeElement.id") == "seg-text"
    for n, text in enumerate(said):
        page.keyboard.type(text)
        if n + 1 < len(said):
            page.keyboard.press("Enter")  # the next segment, playing
            keys += 1
            assert page.evaluate("document.activeElement.id") == "seg-text"
            assert page.locator("#seg-text").input_value() == ""
    page.keyboard.press("Control+r")  # replay the segment from its start
    start = float(page.locator("#seg-start").input_value())
    page.wait_for_selector("#play:has-text('Pause')")
    assert start - 0.05 <= _clock_s(page) < start + 1.0
    page.keyboard.press("Control+Space")  # pause, still typing
    page.wait_for_selector("#play:has-text('Play')")
    before = _clock_s(page)
    page.keyboard.press("Alt+ArrowLeft")
    assert abs(_clock_s(page) - (before - 1)) < 0.05
    assert page.evaluate("document.activeElement.id") == "seg-text"
    assert page.locator("#seg-text").input_value() == "good morning"
    page.wait_for_selector("#feedback[data-complete=true]")
    print(f"keys beyond the text: {keys} for {len(said)} utterances "
          f"({keys / len(said):.1f} each; the first costs one more, to get in)")  # fmt: skip
    assert keys - 1 <= len(said)  # one per utterance, plus one to start
    assert page.errors == []


def test_a_rejected_worker_reads_why_without_the_honeypots_whereabouts(
    browser: Any, world: dict[str, Any]
) -> None:
    assignment_id, token = take(world, 614)
    reason = ("WER 0.62 > 0.20 on 2 honeypot segments; segment 1 (0.5-2.6 s) has no gender; "
              "no segment covers the reference speech at 3.1-4.0 s; segment start 0.40 s "
              "after the reference at 1.0-2.0 s, tolerance 0.20 s")  # fmt: skip
    with world["ctx"].sessions() as s, s.begin():
        s.execute(
            update(assignments)
            .where(assignments.c.id == assignment_id)
            .values(status="rejected", reject_reason=reason)
        )
    listed = httpx.get(
        f"{world['url']}/assignment", params={"status": "rejected"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["results"]  # fmt: skip
    (mine,) = [a for a in listed if a["assignment_id"] == assignment_id]
    shown = mine["reject_reason"]
    assert shown.startswith("WER 0.62 > 0.20 on 2 honeypot segments; segment 1 (0.5-2.6 s)")
    assert "reference" not in shown and "3.1-4.0" not in shown and "1.0-2.0" not in shown
    assert "2 more about the hidden test segments" in shown
    page = open_page(browser, f"{world['url']}/annotate/{assignment_id}#token={token}")
    page.wait_for_selector("#refusal:not([hidden])")
    text = page.locator("#refusal").inner_text()
    assert "was rejected" in text and "WER 0.62 > 0.20" in text and "has no gender" in text
    assert "3.1-4.0" not in text and "Next time" in text


def test_marking_while_playing_extending_going_to_a_time_and_attribute_keys(
    browser: Any, world: dict[str, Any]
) -> None:
    page = _ready(browser, world, 615)
    rows = page.locator("#segments li")
    speech_button = page.locator("#labels button").nth(0)
    assert speech_button.locator(".tally").inner_text().startswith("2 · ")  # 2 segments
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+Digit2")  # the first choice attribute (gender) takes value 2
    page.wait_for_selector("#seg-attributes select[data-attribute=gender]")
    assert page.locator("#seg-attributes select[data-attribute=gender]").input_value() == "male"

    page.keyboard.press("Escape")
    clip_s = float(page.locator("#clock").inner_text().split(" / ")[1].split(":")[1])
    page.keyboard.press("t")  # go to a time
    page.keyboard.type(f"{clip_s - 2.0:.3f}")
    page.keyboard.press("Enter")
    assert abs(_clock_s(page) - (clip_s - 2.0)) < 0.01
    page.keyboard.press("e")  # from the end of the previous segment to the playhead
    assert rows.count() == 3
    added = float(page.locator("#seg-end").input_value())
    assert abs(added - (clip_s - 2.0)) < 0.01
    page.keyboard.press("Escape")

    page.keyboard.press("t")
    page.keyboard.type(f"{clip_s - 1.8:.3f}")
    page.keyboard.press("Enter")
    page.keyboard.press("Space")  # play, then mark a segment while it plays
    page.wait_for_selector("#play:has-text('Pause')")
    page.keyboard.press("b")
    assert page.locator("#marking").is_visible()
    page.wait_for_timeout(700)
    page.keyboard.press("b")
    assert page.locator("#marking").is_hidden() and rows.count() == 4
    start = float(page.locator("#seg-start").input_value())
    end = float(page.locator("#seg-end").input_value())
    assert abs(start - (clip_s - 1.8)) < 0.15 and 0.4 < end - start < 1.5
    page.keyboard.press("Space")

    box = page.locator("#waveform").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 60)
    assert page.locator("#hover-time").inner_text().startswith("0:0")
    page.keyboard.down("Control")
    page.mouse.wheel(0, -200)  # Ctrl+wheel zooms in
    page.keyboard.up("Control")
    page.wait_for_timeout(200)
    assert float(page.locator("#zoom").input_value()) > 0
    assert page.errors == []

"""Practice clips through the worker API: ground-truth spans marked `practice` make one
short clip that a worker's first job starts with, scored the moment it is sent with the
answers shown; a required one must be passed before the job's work is taken, and a worker
who misses every try is turned away from the escrow. Practice spans are never honeypots."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from audio_oracles.requester import launch
from exchange_oracle.db import assignments, escrows, jobs
from sandbox import accounts
from tests.integration.conftest import wait_for
from tests.integration.jobdata import JobData, manifest
from tests.integration.market import escrow_status
from tests.integration.test_annotator_page import browser, open_page  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _worker(m: dict[str, Any], n: int) -> tuple[dict[str, str], str]:
    token = m["issuer"].issue(accounts.account(n).address)
    headers = {"Authorization": f"Bearer {token}"}
    url = m["exchange_url"]
    httpx.post(f"{url}/register", json={}, headers=headers).raise_for_status()
    return headers, url


def _take(m: dict[str, Any], headers: dict[str, str], escrow: str) -> httpx.Response:
    return httpx.post(
        f"{m['exchange_url']}/assignment",
        json={"escrow_address": escrow, "chain_id": 1338},
        headers=headers,
    )


def _practice_escrow(m: dict[str, Any], job_data: JobData, tmp_path: Path) -> str:
    """The job data with its first ground-truth span for practice (the other two stay
    honeypots), required, two tries."""
    folder = tmp_path / "job"
    shutil.copytree(job_data.root, folder)
    lines = (folder / "gt.tsv").read_text().splitlines()
    marked = [lines[0] + "\tpractice", lines[1] + "\tyes"] + [f"{x}\t" for x in lines[2:]]
    (folder / "gt.tsv").write_text("\n".join(marked) + "\n")
    rules = {"required": True, "attempts": 2}
    launched = launch(m["requester"], manifest(practice=rules), Decimal(5), folder)
    escrow = launched.escrow_address
    wait_for(lambda: escrow_status(m["exchange"], escrows, escrow) == "ready", 120, "listed")
    return escrow


def test_a_required_practice_clip_gates_the_job_and_never_becomes_a_honeypot(
    market: dict[str, Any], job_data: JobData, tmp_path: Path
) -> None:
    m = market
    escrow = _practice_escrow(m, job_data, tmp_path)
    with m["exchange"].sessions() as s:
        listed = s.execute(select(jobs.c.honeypots)).scalars().all()
        clip = s.execute(select(escrows.c.practice)).scalar_one()
    assert clip and clip["duration_ms"] > 2000
    assert all(h["span_id"] != "gt0" for hs in listed for h in hs)  # never a honeypot
    practice_text = job_data.truth["gt.wav"][0].text

    headers, url = _worker(m, 300)
    taken = _take(m, headers, escrow)
    assert taken.status_code == 200, taken.text
    job = f"{url}/assignment/{taken.json()['assignment_id']}"
    info = httpx.get(f"{job}/annotations", headers=headers).json()
    assert info["practice"]["required"] and info["practice"]["attempts_left"] == 2
    assert not info["practice"]["cleared"]
    blocked = httpx.put(f"{job}/annotations", json={"segments": []}, headers=headers)
    assert blocked.status_code == 409 and "practice" in blocked.json()["message"]

    drill = httpx.get(f"{job}/practice", headers=headers).json()
    assert drill["clip_ms"] == clip["duration_ms"] and drill["segments"]
    audio = httpx.get(f"{url}{drill['audio_url']}")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert httpx.get(f"{job}/practice/peaks?zoom=20", headers=headers).status_code == 200
    assert httpx.get(f"{job}/practice/spectrogram/0", headers=headers).status_code == 200

    # A careless try: the pre-segments with the wrong words. Scored at once, answers shown.
    careless = [
        {"start_ms": a, "end_ms": b, "label": "speech", "transcription": "la la la",
         "attributes": {"gender": "male"}}
        for a, b in drill["pre_segments"]
    ]  # fmt: skip
    first = httpx.post(f"{job}/practice/submit", json={"segments": careless}, headers=headers)
    assert first.status_code == 200, first.text
    tried = first.json()
    assert not tried["passed"] and tried["metric"] == "wer" and tried["value"] > 0.3
    assert tried["reasons"][0].startswith("WER") and "on 1 practice segment" in tried["reasons"][0]
    (answer,) = tried["answers"]
    assert answer["text"] == practice_text
    assert tried["practice"]["attempts_left"] == 1 and not tried["practice"]["cleared"]

    # With what the answers showed, the second try passes and the job opens.
    right = [{"start_ms": answer["start_ms"], "end_ms": answer["end_ms"], "label": "speech",
              "transcription": answer["text"], "attributes": {"gender": "male"}}]  # fmt: skip
    second = httpx.post(f"{job}/practice/submit", json={"segments": right}, headers=headers)
    assert second.json()["passed"], second.json()["reasons"]
    assert second.json()["practice"]["cleared"]
    assert httpx.put(f"{job}/annotations", json={"segments": []}, headers=headers).is_success
    again = httpx.post(f"{job}/practice/submit", json={"segments": right}, headers=headers)
    assert again.status_code == 409  # passed already

    # Another worker misses both tries: the job goes back, and the escrow turns them away.
    headers2, _ = _worker(m, 301)
    taken2 = _take(m, headers2, escrow)
    assert taken2.status_code == 200, taken2.text
    job2 = f"{url}/assignment/{taken2.json()['assignment_id']}"
    for _ in range(2):
        miss = httpx.post(f"{job2}/practice/submit", json={"segments": careless}, headers=headers2)
        assert miss.status_code == 200 and not miss.json()["passed"]
    assert miss.json()["practice"]["turned_away"]
    with m["exchange"].sessions() as s:
        status = s.execute(
            select(assignments.c.status).where(assignments.c.id == taken2.json()["assignment_id"])
        ).scalar_one()
    assert status == "canceled"
    refused = _take(m, headers2, escrow)
    assert refused.status_code == 403 and "practice" in refused.json()["message"]


def test_the_page_opens_on_the_practice_clip_and_shows_what_was_wrong(
    market: dict[str, Any], job_data: JobData, tmp_path: Path, browser: Any
) -> None:
    m = market
    escrow = _practice_escrow(m, job_data, tmp_path)
    headers, url = _worker(m, 310)
    taken = _take(m, headers, escrow).json()
    token = headers["Authorization"].removeprefix("Bearer ")
    page = open_page(browser, f"{url}/annotate/{taken['assignment_id']}#token={token}")
    missing: list[str] = []
    page.on("response", lambda r: r.status >= 400 and missing.append(r.url))
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    assert "2 tries left" in page.locator("#practice-banner").inner_text()
    assert page.locator("#practice-skip").is_hidden()  # required: no skipping
    assert page.locator("#save-state").get_attribute("data-state") == "practice"
    page.keyboard.press("v")  # the practice clip's own spectrogram
    page.locator("#waveform [part~='spectrogram'] img").first.wait_for(state="attached")
    page.locator("#submit").click()  # the VAD pre-segments, untranscribed
    page.wait_for_selector("#practice-result[open]")
    result = page.locator("#practice-result")
    assert result.locator("h2").text_content() == "Not passed yet"
    assert "WER 1.00 > 0.30 on 1 practice segment" in result.locator(".reasons").inner_text()
    assert job_data.truth["gt.wav"][0].text in result.locator(".answers").inner_text()
    assert "Try again (1 left)" in page.locator("#practice-next").inner_text()
    page.locator("#practice-next").click()
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    assert "1 try left" in page.locator("#practice-banner").inner_text()
    assert page.errors == [] and missing == []


def test_two_tries_sent_at_once_count_as_two_and_never_pass_the_limit(
    market: dict[str, Any], job_data: JobData, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from exchange_oracle.db import practice_results

    m = market
    escrow = _practice_escrow(m, job_data, tmp_path)
    headers, url = _worker(m, 320)
    taken = _take(m, headers, escrow).json()
    job = f"{url}/assignment/{taken['assignment_id']}"
    careless = [{"start_ms": 0, "end_ms": 500, "label": "speech", "transcription": "no",
                 "attributes": {"gender": "male"}}]  # fmt: skip
    assert httpx.post(f"{job}/practice/submit", json={"segments": careless},
                      headers=headers).status_code == 200  # fmt: skip
    with ThreadPoolExecutor(2) as pool:  # the last try, sent twice at once
        replies = list(pool.map(
            lambda _: httpx.post(f"{job}/practice/submit", json={"segments": careless},
                                 headers=headers, timeout=30).status_code, range(2)))  # fmt: skip
    assert sorted(replies) == [200, 409]
    with m["exchange"].sessions() as s:
        attempts = s.execute(select(practice_results.c.attempts)).scalar_one()
    assert attempts == 2  # the manifest's limit

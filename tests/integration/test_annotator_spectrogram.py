"""The spectrogram: tiles the oracle computed when it packed the clip, served only to the
assignment's worker, and laid over the waveform by the page (V) from those tiles alone."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from sandbox.accounts import account
from tests.integration.test_annotator_bugs import _ready
from tests.integration.test_annotator_page import (  # noqa: F401 (its fixtures)
    browser,
    speech,
    take,
    world,
)

pytestmark = pytest.mark.integration


def test_tiles_are_the_workers_own_and_say_where_the_speech_is(world: dict[str, Any]) -> None:
    assignment_id, token = take(world, 640)
    url = f"{world['url']}/assignment/{assignment_id}"
    me = {"Authorization": f"Bearer {token}"}
    info = httpx.get(f"{url}/annotations", headers=me).json()
    spec = info["spectrogram"]
    assert spec["columns_per_s"] == 100 and spec["max_hz"] == 8000
    assert spec["tiles"] == -(-info["clip_ms"] // 10 // spec["tile_px"])
    reply = httpx.get(f"{url}/spectrogram/0", headers=me)
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(reply.content))
    assert image.height == spec["rows"]
    # The clip's audio runs some 50 ms past what CVAT counts as its frames (clip_ms).
    assert 0 <= image.width - min(spec["tile_px"], -(-info["clip_ms"] // 10)) <= 10
    # Louder columns where the pre-segments say there is speech than in the lead-in silence.
    levels = [sum(image.convert("L").getpixel((x, y)) for y in range(image.height))
              for x in range(image.width)]  # fmt: skip
    first = info["pre_segments"][0]
    inside = levels[first[0] // 10 : first[1] // 10]
    assert sum(inside) / len(inside) > 4 * (sum(levels[:20]) / 20 + 1)
    assert httpx.get(f"{url}/spectrogram/{spec['tiles']}", headers=me).status_code == 404
    # The zoomed-out level: a fifth of the columns.
    assert [lv["columns_per_s"] for lv in spec["levels"]] == [20, 100]
    coarse = httpx.get(f"{url}/spectrogram/0?level=20", headers=me)
    assert coarse.status_code == 200
    assert Image.open(io.BytesIO(coarse.content)).width == -(-image.width // 5)
    assert httpx.get(f"{url}/spectrogram/0?level=7", headers=me).status_code == 400
    other = world["issuer"].issue(account(641).address)
    foreign = httpx.get(f"{url}/spectrogram/0", headers={"Authorization": f"Bearer {other}"})
    assert foreign.status_code in (403, 404)


def test_v_lays_the_tiles_over_the_waveform(browser: Any, world: dict[str, Any]) -> None:
    page = _ready(browser, world, 642)
    assert page.locator("#waveform [part~='spectrogram']").count() == 0  # off until asked
    page.keyboard.press("v")
    page.wait_for_selector("#spectrogram:checked")
    tile = page.locator("#waveform [part~='spectrogram'] img").first
    tile.wait_for(state="attached")
    for _ in range(50):
        if tile.evaluate("img => img.complete && img.naturalWidth") > 0:
            break
        page.wait_for_timeout(100)
    assert tile.evaluate("img => img.naturalWidth") > 0
    box, wave = tile.bounding_box(), page.locator("#waveform").bounding_box()
    assert box["height"] >= 100 and box["x"] <= wave["x"] + 1  # the first tile, from 0 s
    page.keyboard.press("v")
    assert not page.locator("#spectrogram").is_checked()
    assert page.locator("#waveform [part~='spectrogram']").is_hidden()
    assert page.errors == [] and page.missing == []

"""The annotator page on a two-hour clip, in headless Chromium: milliseconds from navigation
to the waveform drawn with every pre-segment placed (the page marks `annotate-ready`), and
from a key press to the next painted frame once it is up. Goal: drawn and interactive in
under 2 s. Services run in this process: moto S3, the CVAT double, the exchange oracle on
SQLite. The clip is made once and cached in benchmarks/out/."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.media import LINES, OUT, VOICES
from sandbox.speech import Utterance, compose

HOURS = 2
LOADS = 5
ESCROW = "0x" + "B2" * 20


def two_hours() -> tuple[np.ndarray, int]:
    """Two hours of speech with pauses at 16 kHz (a few minutes of espeak-ng tiled)."""
    cache = OUT / "annotator-2h.npy"
    if cache.exists():
        return np.load(cache), 16_000
    rng = np.random.default_rng(7)
    utterances = [Utterance(line, VOICES[i % len(VOICES)]) for i, line in enumerate(LINES)]
    track = compose(utterances, list(rng.uniform(0.5, 2.5, len(utterances) - 1)), tail_s=1.0)
    n = HOURS * 3600 * track.rate
    pcm = np.tile(track.pcm, int(np.ceil(n / len(track.pcm))))[:n]
    OUT.mkdir(exist_ok=True)
    np.save(cache, pcm)
    return pcm, track.rate


def main() -> None:
    from moto.server import ThreadedMotoServer
    from playwright.sync_api import sync_playwright

    from exchange_oracle.app import create_app
    from exchange_oracle.config import ExchangeSettings
    from exchange_oracle.context import ExchangeContext
    from exchange_oracle.db import metadata
    from oracle_core.manifest import Annotation
    from sandbox.accounts import account
    from sandbox.clip_job import seed_clip_job, take_job
    from sandbox.cvat_double import create_app as create_cvat
    from sandbox.human_app import TokenIssuer
    from sandbox.servers import free_port, serve_in_thread

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    pcm, rate = two_hours()
    tmp = Path(tempfile.mkdtemp())
    s3_port, cvat_port = free_port(), free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3.start()
    issuer = TokenIssuer()
    try:
        with serve_in_thread(
            create_cvat(tmp / "cvat.db", f"http://127.0.0.1:{cvat_port}"), cvat_port
        ) as cvat_url:
            ctx = ExchangeContext(
                ExchangeSettings(
                    database_url=f"sqlite:///{tmp / 'exchange.db'}",
                    cvat_url=cvat_url,
                    human_app_public_key=issuer.public_key_pem,
                    storage_endpoint_url=f"http://127.0.0.1:{s3_port}",
                    storage_access_key="sandbox",
                    storage_secret_key="sandbox-secret",
                )
            )
            metadata.create_all(ctx.engine)
            annotation = Annotation.model_validate(
                {
                    "description": "Transcribe two hours of talk",
                    "labels": [{"name": "speech", "attributes": ["gender"]}],
                    "shared_attributes": [{"name": "gender", "values": ["female", "male"]}],
                    "validation": {"target_score": 0.2, "target_metric": "wer"},
                }
            )
            started = time.perf_counter()
            seed_clip_job(ctx, ESCROW, pcm, rate, annotation)
            print(f"clip of {len(pcm) / rate / 3600:.1f} h published (MP3, peaks, CVAT task, "
                  f"VAD) in {time.perf_counter() - started:.0f} s")  # fmt: skip
            app = create_app(ctx, on_event=lambda _: None, on_export=lambda _: None)
            with serve_in_thread(app) as url:
                token = issuer.issue(account(700).address)
                assignment_id = take_job(url, token, ESCROW)
                page_url = f"{url}/annotate/{assignment_id}#token={token}"
                _measure(sync_playwright, page_url)
    finally:
        s3.stop()


def _measure(sync_playwright: object, page_url: str) -> None:
    from sandbox.browser import launch

    ready: list[float] = []
    keys: list[float] = []
    steps: list[dict[str, float]] = []
    with sync_playwright() as p:  # type: ignore[operator]
        browser = launch(p)
        for _ in range(LOADS):
            context = browser.new_context(viewport={"width": 1280, "height": 900})  # cold cache
            page = context.new_page()
            page.goto(page_url)
            page.wait_for_selector("body[data-state=ready]", timeout=60_000)
            marks = page.evaluate(
                "Object.fromEntries(performance.getEntriesByType('mark')"
                ".map((m) => [m.name.replace('annotate-', ''), Math.round(m.startTime)]))"
            )
            steps.append(marks)
            ready.append(marks["ready"])
            keys.append(
                page.evaluate(
                    """() => new Promise((done) => {
                        const t = performance.now()
                        document.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowDown' }))
                        requestAnimationFrame(() => setTimeout(() => done(performance.now() - t)))
                    })"""
                )
            )
            segments = page.locator("#segments li").count()
            context.close()
        per_utterance = _keystrokes(browser, page_url)
        browser.close()
    print(f"pre-segments on the page: {segments}")
    median = statistics.median(ready)
    print(f"navigation -> waveform drawn and segments placed: median {median:.0f} ms, "
          f"max {max(ready):.0f} ms over {LOADS} cold loads (goal < 2000 ms)")  # fmt: skip
    print("  of which, at the median load (ms from navigation): "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(steps[ready.index(median)].items(),
                                                       key=lambda kv: kv[1])))  # fmt: skip
    print(f"key press -> next frame once ready: median {statistics.median(keys):.0f} ms")
    print(f"transcribing {TYPED} pre-segments with the keyboard alone: {per_utterance:.2f} "
          "keys per utterance beyond its text (goal <= 1; no mouse)")  # fmt: skip


TYPED = 20


def _keystrokes(browser: object, page_url: str) -> float:
    """Keys pressed beyond the text itself to transcribe the first TYPED pre-segments in
    transcription mode (Enter goes to the next segment and plays it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(page_url)
    page.wait_for_selector("body[data-state=ready]", timeout=60_000)
    keys = 0
    page.keyboard.press("ArrowDown")  # the first segment
    page.keyboard.press("Enter")  # into its transcription, playing
    keys += 2
    for n in range(TYPED):
        page.keyboard.type(f"utterance {n}")
        if n + 1 < TYPED:
            page.keyboard.press("Enter")
            keys += 1
    typed = page.locator("#segments li").nth(TYPED - 1).inner_text()
    context.close()
    assert f"utterance {TYPED - 1}" in typed, typed
    return keys / TYPED


if __name__ == "__main__":
    main()

"""Headless Chromium for browser tests and benchmarks: Debian's own binary driven by
Playwright (whose browser download cannot work offline), with the flags this machine needs
(no sandbox as root, no background connections to Google's hosts)."""

from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def launch(playwright: Any) -> Any:
    """A headless Chromium browser from a started `sync_playwright()`."""
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)

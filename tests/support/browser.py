"""Headless Chromium (Debian's ``chromium``, driven by Playwright) for the tests of pages: the serve page and the
documentation site. Without Chromium or Playwright those tests skip with the reason; CI sets
``CNNLAB_REQUIRE_BROWSER=1``, which turns such a skip into a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium offline: no background connections this machine would refuse, no GPU, no sandbox (CI runs as root)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def missing(reason: str) -> None:
    if os.environ.get("CNNLAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and CNNLAB_REQUIRE_BROWSER=1 asks for the browser tests")
    pytest.skip(reason)


def headless_chromium() -> Iterator:
    """A launched browser for a module fixture to yield; closed when the fixture ends."""
    if not Path(CHROMIUM).is_file():
        missing("no Chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("no playwright (the test extra)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()

"""Headless Chromium for the tests that look at devenv's web pages: Debian's package driven
by Playwright's Python client (executable_path), a fresh profile per page."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator

import pytest

from tests.support import missing

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def browser_available() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("the playwright package is missing: `bash .ci/setup` installs the test extras")
    if not os.path.exists(CHROMIUM):
        missing("chromium is not installed (`bash .ci/setup` installs it with apt, as root)")


@contextmanager
def open_page() -> Iterator:
    """A page in a new headless Chromium, closed on leaving the block."""
    browser_available()
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="devenv-chromium-")
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                            args=FLAGS, viewport={"width": 1500, "height": 1100})
        try:
            yield context.new_page()
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def plotted(page, chart: str, series: str) -> list[float]:
    """The values a dashboard chart's line plots (its ``data-values``)."""
    raw = page.get_attribute(f"[data-chart='{chart}'] polyline[data-series='{series}']", "data-values")
    return [float(v) for v in raw.split(",")] if raw else []

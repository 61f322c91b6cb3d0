"""Debian's Chromium driven by Playwright: the ``page`` fixture and the skip marker.

``tests/conftest.py`` loads this module as a plugin, so ``page`` is a fixture everywhere;
test modules that drive a browser set ``pytestmark = needs_chromium``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

needs_chromium = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (./dev test installs it when run as root)",
)


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = await browser.new_context(
            viewport={"width": 1366, "height": 900}, locale="fr-FR", accept_downloads=True
        )
        pg = await context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        # A page that breaks its own Content-Security-Policy logs it on the console.
        pg.on(
            "console",
            lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        yield pg
        await browser.close()
        assert errors == [], errors

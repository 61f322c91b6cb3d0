"""The wall page (``/mur``) in a real headless Chromium, opened with a wall token."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import expect

from service.accounts import queries as accounts
from service.app import create_app
from service.keys import DB_POOL
from service.municipality.model import load_municipality
from service.settings import Settings, default_config_path
from tests.conftest import AUTH_TOKEN
from tests.service.wall.test_wall import M, call, deliver
from tests.support.browser import ARTIFACTS, needs_chromium
from tests.support.twilio_client import TwilioPoster

pytestmark = needs_chromium


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(settings: Settings, port: int) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings), port=port))
    await client.start_server()
    return client


async def box(locator: Any) -> dict[str, float]:
    """The element's box; retried, as the page redraws its tiles every second."""
    for _ in range(20):
        found = await locator.bounding_box()
        if found is not None:
            return dict(found)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{locator} has no box")


async def fits(page: Any, width: int, height: int) -> None:
    """Every tile is on screen, whole, with all its figures inside it."""
    await page.set_viewport_size({"width": width, "height": height})
    await page.wait_for_timeout(300)  # the resize handler lays the tiles out again
    tiles = page.locator(".tile")
    for i in range(await tiles.count()):
        tile = await box(tiles.nth(i))
        assert tile["x"] >= 0
        assert tile["y"] >= 0
        assert tile["x"] + tile["width"] <= width
        assert tile["y"] + tile["height"] <= height
        for part in ("h2", ".big.longest", "dd.callbacks"):
            inner = await box(tiles.nth(i).locator(part))
            assert inner["y"] + inner["height"] <= tile["y"] + tile["height"], (width, part)
            assert inner["x"] + inner["width"] <= tile["x"] + tile["width"], (width, part)
        # Read from across the room: the waiting count is at least 6 % of the screen high.
        big = await box(tiles.nth(i).locator(".big.waiting"))
        assert big["height"] >= 0.06 * height, (width, big)


async def test_the_wall_lives_and_says_when_it_lost_the_service(
    page: Any, db: asyncpg.Connection, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    server = await serve(settings, port)
    try:
        _, token = await accounts.create_token(server.app[DB_POOL], "wall", None, "Accueil")
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await page.goto(f"http://127.0.0.1:{port}/mur?token={token}")
        await page.wait_for_selector(".tile[data-service=accueil]", timeout=15_000)
        assert await page.locator(".tile").count() == len(M.services)
        assert await page.locator(".tile[data-service=accueil] .waiting").inner_text() == "0"
        assert "Vert" in await page.locator("#rule").inner_text()  # the rule is stated

        # A caller starts waiting: the tile changes by itself, the wait counts up.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=40)
        await deliver(TwilioPoster(server, AUTH_TOKEN), call(70, start), first=2)
        waiting = page.locator(".tile[data-service=accueil] .waiting")
        await expect(waiting).to_have_text("1", timeout=10_000)
        longest = page.locator(".tile[data-service=accueil] .longest")
        first = await longest.inner_text()
        await expect(longest).not_to_have_text(first, timeout=5_000)  # counting up
        # Waiting 40 s is beyond the 25 s answer delay: not green any more.
        assert await page.locator(".tile[data-service=accueil]").get_attribute("data-status") in (
            "amber",
            "red",
        )
        assert "612345678" not in await page.content()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "wall.png"))

        # The service stops: the wall says so; it comes back: the wall reconnects by itself.
        await server.close()
        await page.wait_for_selector("#lost:not([hidden])", timeout=10_000)
        server = await serve(settings, port)
        await page.wait_for_selector("#lost[hidden]", state="attached", timeout=20_000)
        await expect(waiting).to_have_text("1")  # the same numbers after the restart
    finally:
        await server.close()


LONG_NAME = "Direction de l'aménagement, de l'urbanisme et du cadastre"


async def test_seven_services_fit_a_tv_and_a_laptop(
    page: Any, db: asyncpg.Connection, settings: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "decroche.toml"
    config.write_text(
        default_config_path().read_text()
        + f"""
[[services]]
slug = "amenagement"
name = "{LONG_NAME}"
lines = ["+33387550199"]

[services.hours]
mon = ["08:30-12:00"]
"""
    )
    m = load_municipality(config)
    assert len(m.services) == 7
    port = free_port()
    server = await serve(settings.with_overrides(municipality=m, config_path=config), port)
    try:
        _, token = await accounts.create_token(server.app[DB_POOL], "wall", None, "Accueil")
        await page.goto(f"http://127.0.0.1:{port}/mur?token={token}")
        await page.wait_for_selector(".tile[data-service=amenagement]", timeout=15_000)
        await fits(page, 1920, 1080)  # a TV
        await fits(page, 1366, 768)  # a laptop
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "wall-laptop.png"))
        # The long name is cut on the tile, whole in its title.
        name = page.locator(".tile[data-service=amenagement] h2")
        assert await name.get_attribute("title") == LONG_NAME
        # A phone: tiles keep a readable size and the page scrolls instead.
        await page.set_viewport_size({"width": 400, "height": 800})
        await page.wait_for_timeout(300)
        last = await box(page.locator(".tile").last)
        assert last["height"] >= 250
        assert last["y"] > 800  # below the fold: reached by scrolling
    finally:
        await server.close()


async def test_a_revoked_link_says_so_on_the_screen(
    page: Any, db: asyncpg.Connection, settings: Settings
) -> None:
    """Revoking the screen's link cuts its stream off (issue 24); the screen then says the
    access was withdrawn and whom to ask, not « reconnexion en cours » forever."""
    port = free_port()
    server = await serve(settings, port)
    try:
        pool = server.app[DB_POOL]
        tid, token = await accounts.create_token(pool, "wall", None, "Accueil")
        await page.goto(f"http://127.0.0.1:{port}/mur?token={token}")
        await page.wait_for_selector(".tile[data-service=accueil]", timeout=15_000)
        assert await accounts.revoke_token(pool, tid, "wall", None)
        lost = page.locator("#lost")
        await expect(lost).to_be_visible(timeout=20_000)
        await expect(lost).to_contain_text("Accès retiré", timeout=20_000)
        await expect(lost).to_contain_text("administrateur")
        # The figures stop being kept up to date: they are taken down, not left looking live.
        await expect(page.locator(".tile")).to_have_count(0)
    finally:
        await server.close()

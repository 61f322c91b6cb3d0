"""The dashboard (``/``) in a real headless Chromium (Debian's), against a live test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from service.accounts import queries as accounts
from service.accounts.model import Role
from service.accounts.passwords import hash_password
from service.keys import DB_POOL
from tests.service.metrics.test_engagement8 import edge_calls, ingest
from tests.support.browser import ARTIFACTS, needs_chromium

pytestmark = needs_chromium

Client = TestClient[web.Request, web.Application]


def french_pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}".replace(".", ",") + "\u202f%"


VIEWER = ("lecture@ville.test", "un mot de passe assez long")


async def open_dashboard(page: Any, client: Client, query: str) -> None:
    await log_in_to(page, client, query)
    await page.wait_for_selector("body[data-loaded=true]", timeout=15_000)
    assert page.url.endswith(f"/?{query}")


async def log_in_to(page: Any, client: Client, query: str) -> None:
    """Open the dashboard as a person does: redirected to /connexion, log in, come back."""
    pool = client.app[DB_POOL]
    if await accounts.get_user(pool, VIEWER[0]) is None:
        uid = await accounts.add_user(pool, VIEWER[0], Role.VIEWER)
        await accounts.set_password(pool, uid, hash_password(VIEWER[1]))
    await page.goto(f"http://{client.host}:{client.port}/?{query}")
    if "/connexion" in page.url:
        assert await page.locator("h2").inner_text() == "Connexion"
        await page.fill('input[name="email"]', VIEWER[0])
        await page.fill('input[name="password"]', VIEWER[1])
        await page.click('button[type="submit"]')
        await page.wait_for_url(f"**/?{query}")


async def test_cards_show_the_api_figures(page: Any, client: Client) -> None:
    await ingest(client, edge_calls())
    api = await (await client.get("/api/v1/engagement8?from=2026-11-16&to=2026-11-16")).json()
    await open_dashboard(page, client, "from=2026-11-16&to=2026-11-16")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    rows = [*api["services"], {**api["total"], "service": "total"}]
    for row in rows:
        key = "unknown" if row["service"] is None else row["service"]
        card = page.locator(f'article[data-service="{key}"]')
        received = await card.locator('dd[data-figure="received"]').inner_text()
        assert int(received.replace("\u202f", "").replace("\xa0", "")) == row["received"]
        rate = await card.locator('[data-figure="answer_rate"] strong').inner_text()
        assert rate.replace("\xa0", "\u202f") == french_pct(row["answer_rate"])
        level = await card.locator('[data-figure="service_level"] strong').inner_text()
        assert level.replace("\xa0", "\u202f") == french_pct(row["service_level"])
    accueil = page.locator('article[data-service="accueil"]')
    assert "card" in (await accueil.get_attribute("class") or "")
    verdict = await accueil.locator(".badge").inner_text()
    assert verdict == ("Engagement tenu" if api["services"][0]["met"] else "Engagement non tenu")
    assert "Taux de décroché" in await page.locator("#definitions").inner_text()


async def test_affluence_heat_map_and_its_image(page: Any, client: Client, tmp_path: Path) -> None:
    await ingest(client, edge_calls())
    await open_dashboard(page, client, "from=2026-11-16&to=2026-11-16")
    cells = page.locator("#heatmap td")
    assert await cells.count() == 7 * 26  # Monday to Sunday, 07:00 to 20:00
    monday_0830 = page.locator('#heatmap td[data-weekday="1"][data-slot="08:30"]')
    assert await monday_0830.get_attribute("data-received") == "1"
    lunch = page.locator('#heatmap td[data-weekday="1"][data-slot="13:30"]')
    assert await lunch.inner_text() == "2 (1)"  # two received, one lost
    async with page.expect_download() as info:
        await page.click("#download-heatmap")
    download = await info.value
    target = tmp_path / download.suggested_filename
    await download.save_as(str(target))
    assert download.suggested_filename == "frequentation-2026-11-16-2026-11-16.png"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 2_000


async def test_period_picker_and_weekly_chart(page: Any, client: Client) -> None:
    await ingest(client, edge_calls())
    await open_dashboard(page, client, "from=2026-11-16&to=2026-11-16")
    await page.fill("#from", "2026-11-01")
    await page.fill("#to", "2026-11-30")
    await page.evaluate("document.body.dataset.loaded = 'false'")
    await page.click("#period button[type=submit]")
    await page.wait_for_selector("body[data-loaded=true]")
    assert "from=2026-11-01" in page.url
    api = await (await client.get("/api/v1/engagement8?from=2026-11-01&to=2026-11-30")).json()
    status = await page.inner_text("#status")
    assert f"{api['total']['received']} appels reçus" in status.replace("\u202f", "")
    # Eight weeks ending on the 30th: the weeks with offered calls have points.
    points = page.locator('#weeks circle[data-series="answer_rate"]')
    assert await points.count() >= 1


async def test_a_refused_period_is_said_on_the_page(page: Any, client: Client) -> None:
    await log_in_to(page, client, "from=2026-11-20&to=2026-11-01")
    await page.wait_for_selector("#status.error")
    assert "to must not be before from" in await page.inner_text("#status")

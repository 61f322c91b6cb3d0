"""The digest seen in Debian's headless Chromium: the message rendered to a PNG (in
test-artifacts/, the README's sample), its charts loaded, its layout inside the 640 px a
mail client gives; the « Synthèse hebdomadaire » page for the quality role, with its
recipients, their deliveries and the preview; closed to viewers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.accounts.model import Role
from service.app import create_app
from tests.campaigns.web.test_campaign_pages import QUALITY, account, open_as
from tests.conftest import ADMIN_HEADERS, Database, make_settings
from tests.service.metrics.test_engagement8 import ingest
from tests.support.browser import ARTIFACTS, needs_chromium
from tests.support.digest import CHEF_EC, DGS, WEEK, municipality, weeks_of_calls

pytestmark = needs_chromium

Client = TestClient[web.Request, web.Application]
VIEWER = "lecteur@ville.test"


@pytest.fixture
async def town(
    db: Any, database: Database, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Client:
    """The service of a town whose digest has recipients, with four weeks of calls."""
    settings = make_settings(database.dsn, tmp_path, municipality=municipality())
    client = await aiohttp_client(create_app(settings), headers=ADMIN_HEADERS)
    await ingest(client, weeks_of_calls())
    await account(client, QUALITY, Role.QUALITY)
    return client


async def rendered(page: Any, width: int) -> dict[str, Any]:
    await page.set_viewport_size({"width": width, "height": 900})
    await page.wait_for_function("[...document.images].every(i => i.complete)", timeout=15_000)
    result: dict[str, Any] = await page.evaluate(
        """() => ({
            images: [...document.images].map(
                i => [i.alt, i.naturalWidth, i.getBoundingClientRect().width]),
            card: document.querySelector('table.card').getBoundingClientRect().width,
            overflow: document.documentElement.scrollWidth - window.innerWidth,
            h1: document.querySelector('h1').textContent,
        })"""
    )
    return result


async def test_the_message_renders_as_mail_clients_show_it(page: Any, town: Client) -> None:
    await open_as(page, town, QUALITY, f"/synthese?semaine={WEEK}")
    url = f"http://{town.host}:{town.port}/api/v1/digest/preview?week={WEEK}"
    await page.goto(url)
    wide = await rendered(page, 1024)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"digest-{WEEK}.png"
    await page.screenshot(path=str(shot), full_page=True)  # first: worth a look if it fails
    assert shot.stat().st_size > 50_000
    assert wide["h1"] == "Synthèse de la semaine 43"
    assert [alt for alt, _, _ in wide["images"]] == [
        "Taux de décroché et niveau de service par service",
        "Tendance sur quatre semaines, tous services",
    ]
    assert all(natural == 960 for _, natural, _ in wide["images"])  # drawn at 1.5×
    assert wide["card"] == 640
    assert wide["overflow"] <= 0
    # On a phone the card narrows and the charts with it.
    narrow = await rendered(page, 390)
    assert narrow["card"] <= 390
    assert narrow["overflow"] <= 0
    assert all(shown < 390 for _, _, shown in narrow["images"])
    await page.screenshot(path=str(ARTIFACTS / f"digest-{WEEK}-phone.png"), full_page=True)

    # A service head's message: their service and its own trend first.
    await page.goto(url + f"&for={CHEF_EC}")
    head = await rendered(page, 1024)
    assert [alt for alt, _, _ in head["images"]] == [
        "Tendance sur quatre semaines — État civil",
        "Taux de décroché et niveau de service par service",
    ]


async def test_the_quality_page_shows_recipients_deliveries_and_preview(
    page: Any, town: Client
) -> None:
    await open_as(page, town, QUALITY, f"/synthese?semaine={WEEK}")
    rows = await page.locator("#deliveries tbody tr").all_inner_texts()
    assert len(rows) == 3
    assert any(DGS in r and "pas encore" in r for r in rows)
    assert any(CHEF_EC in r and "etat-civil" in r for r in rows)
    status = await page.locator("#status").inner_text()
    assert status.startswith("Engagement tenu par 2 services sur 3 — semaine 2026-W43")
    frame = page.frame_locator("#preview")
    await frame.locator("h1").wait_for(timeout=15_000)
    assert await frame.locator("h1").inner_text() == "Synthèse de la semaine 43"

    # As the head of état civil sees it.
    await page.select_option("#for", CHEF_EC)
    await page.click("#choice button[type=submit]")
    await frame.locator("text=Votre service").wait_for(timeout=15_000)


async def test_viewers_do_not_open_the_page_or_the_api(page: Any, town: Client) -> None:
    await account(town, VIEWER, Role.VIEWER)
    await page.goto(f"http://{town.host}:{town.port}/synthese")
    await page.fill('input[name="email"]', VIEWER)
    await page.fill('input[name="password"]', "un mot de passe assez long")
    await page.click('button[type="submit"]')
    await page.wait_for_load_state()
    assert "Accès refusé" in await page.content()
    resp = await page.request.get(f"http://{town.host}:{town.port}/api/v1/digest?week={WEEK}")
    assert resp.status == 403

"""Campaign pages in a real headless Chromium (Debian's), end to end: a campaign created
through the API is scored call by call on its French page by its evaluator, then the quality
team reads the calendar and the results — the same figures as the API's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from service.accounts import queries as accounts
from service.accounts.model import Role
from service.accounts.passwords import hash_password
from service.keys import DB_POOL
from tests.campaigns.web.test_campaigns_api import EVALUATOR, body, calls_of, create
from tests.support.browser import ARTIFACTS, needs_chromium
from tests.support.paths import DATA

pytestmark = needs_chromium

Client = TestClient[web.Request, web.Application]
PASSWORD = "un mot de passe assez long"
QUALITY = "qualite@ville.test"


async def account(client: Client, email: str, role: Role) -> None:
    pool = client.app[DB_POOL]
    if await accounts.get_user(pool, email) is None:
        uid = await accounts.add_user(pool, email, role)
        await accounts.set_password(pool, uid, hash_password(PASSWORD))


async def open_as(page: Any, client: Client, email: str, path: str) -> None:
    """Open ``path`` as a person does: sent to /connexion, log in, come back."""
    await page.goto(f"http://{client.host}:{client.port}{path}")
    if "/connexion" in page.url:
        await page.fill('input[name="email"]', email)
        await page.fill('input[name="password"]', PASSWORD)
        await page.click('button[type="submit"]')
        await page.wait_for_url(f"**{path}")
    await page.wait_for_selector("body[data-loaded=true]", timeout=15_000)


async def fill_grid(page: Any, answers: dict[str, str]) -> None:
    """Answer the grid on the page: ``item id → value`` of its radio, or seconds."""
    for item, value in answers.items():
        block = page.locator(f'.item[data-item="{item}"]')
        kind = await block.get_attribute("data-kind")
        if kind == "measured":
            await block.locator('input[type="number"]').fill(value)
        else:
            await block.locator(f'input[type="radio"][value="{value}"]').check()


GOOD = {
    "delai": "12",
    "attente-annoncee": "na",
    "bonjour": "true",
    "service-nomme": "true",
    "agent-nomme": "false",
    "amabilite": "3",
    "laisse-parler": "true",
    "reformulation": "true",
    "information": "4",
    "transfert": "annonce-abouti",
    "mise-en-attente": "na",
    "besoin-satisfait": "true",
    "remerciements": "true",
}


async def test_an_evaluator_scores_calls_and_quality_reads_the_results(
    page: Any, client: Client
) -> None:
    cid = (await create(client))["id"]
    await account(client, EVALUATOR, Role.VIEWER)
    await account(client, QUALITY, Role.QUALITY)
    hers = [c for c in await calls_of(client, cid) if c["evaluator"] == EVALUATOR]

    # Her list of calls, then the first one's grid.
    await open_as(page, client, EVALUATOR, "/mes-appels")
    rows = page.locator("#calls tbody tr")
    assert await rows.count() == len(hers)
    await page.click(f'#calls tr[data-call="{hers[0]["id"]}"] a:has-text("Évaluer")')
    await page.wait_for_selector("body[data-loaded=true]")
    assert await page.locator('[data-field="number"]').inner_text() == hers[0]["number"]
    assert "Vos horaires ?" in await page.inner_text(
        "#scenario"
    ) or "Carte" in await page.inner_text("#scenario")
    # N/A only where the grid allows it: « bonjour » has no « Sans objet ».
    assert await page.locator('.item[data-item="bonjour"] input[value="na"]').count() == 0
    assert await page.locator('.item[data-item="transfert"] input[value="na"]').count() == 1

    # Forgetting an item is said, on that item.
    await fill_grid(page, {k: v for k, v in GOOD.items() if k != "reformulation"})
    await page.click("#save")
    await page.wait_for_selector("#status.error")
    assert "« Reformulation" in await page.inner_text("#status")
    assert await page.locator('.item.invalid[data-item="reformulation"]').count() == 1

    await fill_grid(page, {"reformulation": "true"})
    await page.fill('input[name="r-agent-nomme"]', "Pas de nom donné")
    await page.fill("#comment", "Accueil agréable, réponse complète.")
    await page.evaluate("document.body.dataset.loaded = 'false'")
    await page.click("#save")
    await page.wait_for_selector("body[data-loaded=true]")
    verdict = page.locator("#result .verdict")
    # agent-nomme (weight 1) lost out of 4+2+2+1+2+2+2+6+2+1+1 = 25
    assert await verdict.get_attribute("data-score") == str(10 * 24 / 25)
    assert "Note : 9,6 / 10 — appel réussi (excellent)" in await verdict.inner_text()
    api = await (await client.get(f"/api/v1/mystery-calls/{hers[0]['id']}/evaluation")).json()
    assert api["comments"] == {"agent-nomme": "Pas de nom donné"}
    assert api["comment"] == "Accueil agréable, réponse complète."
    assert api["answers"]["transfert"] == "annonce-abouti"

    # Her correction keeps the first version in the history.
    await fill_grid(page, {"information": "0"})
    await page.fill("#reason", "erreur de saisie")
    await page.evaluate("document.body.dataset.loaded = 'false'")
    await page.click("#save")
    await page.wait_for_selector("body[data-loaded=true]")
    assert "appel non réussi" in await page.inner_text("#result")
    assert "motif : erreur de saisie" in await page.inner_text("#history")

    # A second call, scored by her too.
    await page.goto(f"http://{client.host}:{client.port}/appels-mysteres/{hers[1]['id']}")
    await page.wait_for_selector("body[data-loaded=true]")
    await fill_grid(page, GOOD | {"bonjour": "false"})
    await page.evaluate("document.body.dataset.loaded = 'false'")
    await page.click("#save")
    await page.wait_for_selector("body[data-loaded=true]")

    # The quality team: the calendar, then the results, as the API gives them.
    await page.context.clear_cookies()
    await open_as(page, client, QUALITY, f"/campagnes/{cid}")
    cells = page.locator("#calendar a[data-call]")
    assert await cells.count() == 10
    assert await page.locator("#calendar a.done").count() == 2
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "campaign.png"), full_page=True)
    await page.goto(f"http://{client.host}:{client.port}/campagnes/{cid}/resultats")
    await page.wait_for_selector("body[data-loaded=true]")
    results = await (await client.get(f"/api/v1/campaigns/{cid}/results")).json()
    done = await page.locator('#overall [data-figure="done"] strong').inner_text()
    assert done == str(results["overall"]["done"]) == "2"
    mean = await page.locator('#overall [data-figure="mean_score"] strong').inner_text()
    assert mean == f"{results['overall']['mean_score']:.1f}".replace(".", ",")
    assert "trop peu d'appels" in await page.inner_text("#overall")
    bars = page.locator("#chart-services rect[data-value]")
    scored = [s for s in results["services"] if s["done"]]
    assert await bars.count() == len(scored)  # a bar per service with evaluated calls
    for s in scored:
        label = page.locator(
            f'#services tr[data-service="{s["service"]}"] [data-figure="mean_score"]'
        )
        assert await label.inner_text() == f"{s['mean_score']:.1f}".replace(".", ",")
    await page.screenshot(path=str(ARTIFACTS / "campaign-results.png"), full_page=True)


async def test_a_campaign_is_created_from_its_file_on_the_page(
    page: Any, client: Client, tmp_path: Path
) -> None:
    await account(client, QUALITY, Role.QUALITY)
    await open_as(page, client, QUALITY, "/campagnes")
    assert "Aucune campagne" in await page.inner_text("#status")
    toml = (DATA / "campaign.toml").read_text()
    # a fault first: the message names the key
    await page.fill("#source", toml.replace('service = "accueil"', 'service = "voirie"'))
    await page.click("#preview")
    await page.wait_for_selector("#feedback.error")
    assert "unknown service 'voirie'" in await page.inner_text("#feedback")
    await page.fill("#source", toml)
    await page.click("#preview")
    await page.wait_for_selector("#plan:not([hidden])")
    assert await page.locator("#plan tbody tr").count() == 13
    assert (await (await client.get("/api/v1/campaigns")).json())["campaigns"] == []
    await page.click("#create")
    await page.wait_for_url("**/campagnes/*")
    await page.wait_for_selector("body[data-loaded=true]")
    listed = (await (await client.get("/api/v1/campaigns")).json())["campaigns"]
    assert len(listed) == 1
    assert page.url.endswith(f"/campagnes/{listed[0]['id']}")
    assert await page.locator("#calls tbody tr").count() == 13
    # Filters narrow the calendar to one evaluator.
    await page.select_option("#f-evaluator", "paul.durand@ville.test")
    shown = await page.locator("#calendar a[data-call]").count()
    pauls = [
        c for c in await calls_of(client, listed[0]["id"]) if c["evaluator"].startswith("paul")
    ]
    assert shown == len(pauls)


async def test_a_viewer_cannot_open_campaign_pages(page: Any, client: Client) -> None:
    await create(client, body())
    await account(client, "lecteur@ville.test", Role.VIEWER)
    await page.goto(f"http://{client.host}:{client.port}/mes-appels")
    await page.fill('input[name="email"]', "lecteur@ville.test")
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_selector("body[data-loaded=true]")
    assert "Aucune campagne ne vous a confié d'appel" in await page.inner_text("#status")
    resp = await page.goto(f"http://{client.host}:{client.port}/campagnes")
    assert resp.status == 403
    assert "Accès refusé" in await page.inner_text("body")

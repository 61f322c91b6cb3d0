"""The demo's mystery-call campaign: the shipped example campaign, moved to the weeks around
today, created and partly scored through the real HTTP API (as a quality team would).

The core never imports ``campaigns``: like the simulated switchboard, the demo goes through
the service's public surface. Answers are drawn from the grid the API serves, item by item,
so the demo does not depend on a grid's wording.
"""

from __future__ import annotations

import logging
import random
import tomllib
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from service.municipality.model import Municipality
from service.settings import REPO_CONFIG

log = logging.getLogger(__name__)

EXAMPLE = REPO_CONFIG.parent / "campaigns" / "exemple.toml"


def demo_campaign(m: Municipality, today: Any) -> dict[str, Any] | None:
    """The example campaign from four weeks ago to eight weeks ahead, or None when the
    configuration lacks one of its services (a town's own file given to ``--demo``)."""
    data = tomllib.loads(EXAMPLE.read_text("utf-8"))
    if any(m.service(t["service"]) is None for t in data["targets"]):
        return None
    data["name"] = "Appels mystères — démonstration"
    data["starts_on"] = (today - timedelta(days=28)).isoformat()
    data["ends_on"] = (today + timedelta(days=56)).isoformat()
    return data


def answer(item: dict[str, Any], rng: random.Random) -> Any:
    """A plausible answer: most calls go well, some do not."""
    if item.get("na_allowed") and rng.random() < 0.3:
        return "na"
    kind = item["kind"]
    if kind == "yes_no":
        return rng.random() < 0.85
    if kind == "scale":
        return rng.choice([item["max"]] * 3 + list(range(item["max"] + 1)))
    if kind == "measured":
        return rng.choice([6, 10, 14, 18, 22, 28, 35, 50])
    if kind == "choice":
        return rng.choice([o["id"] for o in item["options"]])
    return ""


async def run_demo_campaign(
    session: aiohttp.ClientSession, base: str, token: str, m: Municipality, seed: int
) -> int:
    """Create the demo campaign (once) and score its calls already past; the campaign id."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(f"{base}/api/v1/campaigns", headers=headers) as resp:
        if (await resp.json())["campaigns"]:
            return 0
    data = demo_campaign(m, datetime.now(UTC).astimezone(m.tz).date())
    if data is None:
        log.info("demo: no demo campaign (the configuration lacks the example's services)")
        return 0
    async with session.post(f"{base}/api/v1/campaigns", json=data, headers=headers) as resp:
        if resp.status != 201:
            log.warning("demo: the demo campaign was refused: %s", await resp.text())
            return 0
        cid = int((await resp.json())["id"])
    async with session.get(f"{base}/api/v1/grids/{data['grid']}", headers=headers) as resp:
        grid = await resp.json()
    items = [it for s in grid["sections"] for it in s["items"]]
    async with session.get(f"{base}/api/v1/campaigns/{cid}/calls", headers=headers) as resp:
        calls = (await resp.json())["calls"]
    rng = random.Random(seed)
    now = datetime.now(UTC)
    scored = 0
    for call in calls:
        # The last days' calls are left to do, as in a real campaign.
        if datetime.fromisoformat(call["scheduled_at"]) > now - timedelta(days=2):
            continue
        if rng.random() < 0.1:
            continue  # a call missed
        body = {"answers": {it["id"]: answer(it, rng) for it in items}}
        url = f"{base}/api/v1/mystery-calls/{call['id']}/evaluation"
        async with session.put(url, json=body, headers=headers) as resp:
            scored += resp.status == 201
    log.info("demo: campaign %d created, %d of its past calls scored", cid, scored)
    return cid

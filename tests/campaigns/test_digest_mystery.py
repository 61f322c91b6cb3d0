"""The mystery calls in the digest: a campaign created and scored through the API shows, in
the digest of a week it had calls, what those calls found (planned, done, missed, mean
score, pass rate, per service, the weakest items), at the top and in its own section; a
week without mystery calls has no such section."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.digest.weeks import IsoWeek
from tests.campaigns.web.test_campaigns_api import PERFECT, body, calls_of, create, evaluate

Client = TestClient[web.Request, web.Application]


def week_of(call: dict[str, Any]) -> IsoWeek:
    return IsoWeek.of(datetime.fromisoformat(call["scheduled_at"]).date())  # local offset


async def test_a_weeks_mystery_calls_are_in_its_digest(client: Client) -> None:
    created = await create(client, body(name="Appels mystères de novembre"))
    calls = await calls_of(client, created["id"])
    by_week: dict[IsoWeek, list[dict[str, Any]]] = defaultdict(list)
    for c in calls:
        by_week[week_of(c)].append(c)
    week, mine = max(by_week.items(), key=lambda kv: (len(kv[1]), kv[0]))
    assert len(mine) >= 2, by_week
    scores = []
    for call, answers in zip(
        mine, [PERFECT | {"service-nomme": False}, PERFECT | {"information": 0}], strict=False
    ):
        resp = await evaluate(client, call["id"], answers)
        assert resp.status == 201, await resp.text()
        scores.append((await resp.json())["score"])
    # Another week's call evaluated too: it belongs to that week, not this one.
    other = next(c for w, cs in by_week.items() if w != week for c in cs)
    assert (await evaluate(client, other["id"], PERFECT)).status == 201

    data = await (await client.get(f"/api/v1/digest?week={week}")).json()
    [m] = data["mystery"]
    assert m["campaign_id"] == created["id"]
    assert m["name"] == "Appels mystères de novembre"
    assert (m["planned"], m["done"], m["missed"]) == (len(mine), 2, len(mine) - 2)
    assert m["mean_score"] == pytest.approx(sum(scores) / 2, abs=1e-4)
    assert m["pass_rate"] == 0.5  # the critical « information » fails the second
    assert m["too_few"] is True
    per_service = {s["slug"]: s["done"] for s in m["services"]}
    first_two = [c["service"] for c in mine[:2]]
    assert per_service == {s: first_two.count(s) for s in first_two}
    # The weakest items: « service nommé » and « information », half their points each.
    assert [share for _, share in m["weakest"]] == [0.5, 0.5]
    assert len(m["weakest"]) == 2

    page = await (await client.get(f"/api/v1/digest/preview?week={week}")).text()
    top = page.index("Appels mystères — Appels mystères de novembre : 2 appels évalués")
    assert top < page.index("Les services cette semaine")  # on the first screen
    assert "Appels mystères de la semaine" in page
    assert "Points les plus faibles" in page

    quiet = week.shift(-3)
    assert quiet not in by_week
    assert (await (await client.get(f"/api/v1/digest?week={quiet}")).json())["mystery"] == []
    page = await (await client.get(f"/api/v1/digest/preview?week={quiet}")).text()
    assert "Appels mystères" not in page

"""``GET /api/v1/calls``: fields, filters, pagination and errors."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.demo.traffic import SimCall, build_callbacks
from service.keys import FOLDER
from tests.conftest import ClientFactory, Database, make_settings
from tests.support.twilio_client import TwilioPoster

API_FIELDS = {
    "id",
    "source",
    "external_id",
    "service",
    "line",
    "started_at",
    "answered_at",
    "ended_at",
    "wait_s",
    "answered",
    "in_hours",
    "outcome",
    "agent",
}


async def place(
    twilio: TwilioPoster,
    n: int,
    start: datetime,
    line: str,
    topology: str,
    answered: bool,
    wait: int = 12,
    prefix: str = "CA",
) -> SimCall:
    call = SimCall(
        f"{prefix}{n:032d}",
        line,
        "+33612345678",
        topology,
        start,
        answered,
        wait,
        60 if answered else 0,
        agents=1,
    )
    build_callbacks(call, random.Random(n))
    for _, params in call.callbacks:
        assert (await twilio.post(params)).status == 200
    return call


def paris(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)


async def test_every_field_is_there_and_derived_from_the_calendar(
    twilio: TwilioPoster, client: TestClient[web.Request, web.Application]
) -> None:
    await place(twilio, 1, paris(2026, 11, 16, 10), "+33100000001", "queue", True, 14)
    await place(twilio, 2, paris(2026, 11, 16, 12, 30), "+33100000002", "dial", False, 40)
    await place(twilio, 3, paris(2026, 11, 16, 20), "+33100000002", "closed", False, 15)
    resp = await client.get("/api/v1/calls")
    assert resp.status == 200
    calls = (await resp.json())["calls"]
    assert [c["external_id"] for c in calls] == [f"CA{n:032d}" for n in (3, 2, 1)]
    for c in calls:
        assert set(c) >= API_FIELDS
        assert c["source"] == "twilio"
        assert "+336" not in str(c)  # the caller's number is never shown
    night, lunch, morning = calls
    assert (morning["service"], morning["in_hours"], morning["outcome"]) == (
        "accueil",
        True,
        "answered",
    )
    assert morning["wait_s"] == 14
    assert morning["started_at"] == "2026-11-16T10:00:00+01:00"
    assert morning["answered_at"] == "2026-11-16T10:00:14+01:00"
    assert (lunch["service"], lunch["in_hours"], lunch["outcome"]) == (
        "etat-civil",
        False,
        "closed",
    )  # 12:30: état civil's lunch break
    assert (night["in_hours"], night["outcome"], night["answered"]) == (False, "closed", False)


async def test_period_is_local_days_both_included(
    twilio: TwilioPoster, client: TestClient[web.Request, web.Application]
) -> None:
    # 23:30 and 00:30 Paris around midnight of 16→17 November (UTC 22:30 and 23:30).
    await place(twilio, 1, paris(2026, 11, 16, 23, 30), "+33100000009", "dial", True)
    await place(twilio, 2, paris(2026, 11, 17, 0, 30), "+33100000009", "dial", True)
    await place(twilio, 3, paris(2026, 11, 18, 10), "+33100000009", "dial", True)

    async def ids(query: str) -> list[str]:
        data = await (await client.get(f"/api/v1/calls?{query}")).json()
        return [c["external_id"][-1] for c in data["calls"]]

    assert await ids("from=2026-11-16&to=2026-11-16") == ["1"]
    assert await ids("from=2026-11-17&to=2026-11-17") == ["2"]
    assert await ids("from=2026-11-16&to=2026-11-18") == ["3", "2", "1"]
    assert await ids("from=2026-11-17") == ["3", "2"]
    assert await ids("to=2026-11-16") == ["1"]


async def test_service_filter_prefers_the_queue_owner(
    twilio: TwilioPoster, client: TestClient[web.Request, web.Application], db: asyncpg.Connection
) -> None:
    await place(twilio, 1, paris(2026, 11, 16, 10), "+33100000001", "dial", True)
    await place(twilio, 2, paris(2026, 11, 16, 10), "+33100000002", "dial", True)
    await place(twilio, 3, paris(2026, 11, 16, 10), "+33100000003", "dial", True)
    # A call on état civil's line that went through accueil's queue belongs to accueil.
    await client.app[FOLDER].catch_up()
    await db.execute("UPDATE calls SET queue = 'accueil' WHERE external_id = $1", f"CA{3:032d}")

    async def ids(service: str) -> list[str]:
        data = await (await client.get(f"/api/v1/calls?service={service}")).json()
        return sorted(c["external_id"][-1] for c in data["calls"])

    assert await ids("accueil") == ["1", "3"]
    assert await ids("etat-civil") == ["2"]
    assert await ids("astreinte") == []


async def test_pagination_walks_every_call_once_newest_first(
    twilio: TwilioPoster, client: TestClient[web.Request, web.Application]
) -> None:
    start = paris(2026, 11, 16, 9)
    for n in range(23):
        # Pairs share a start instant: the id breaks the tie.
        await place(
            twilio, n, start + timedelta(minutes=n // 2), "+33100000009", "dial", n % 3 != 0
        )
    seen: list[str] = []
    url = "/api/v1/calls?limit=5"
    pages = 0
    while True:
        data = await (await client.get(url)).json()
        seen += [c["started_at"] + c["external_id"] for c in data["calls"]]
        pages += 1
        if data["next"] is None:
            break
        url = f"/api/v1/calls?limit=5&cursor={data['next']}"
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    assert seen == sorted(seen, key=lambda s: s[:25], reverse=True)


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("from=2026-13-01", "from", "date like"),
        ("to=yesterday", "to", "date like"),
        ("from=2026-11-17&to=2026-11-16", "to", "before"),
        ("service=piscine", "service", "unknown service"),
        ("limit=0", "limit", "whole number"),
        ("limit=5000", "limit", "whole number"),
        ("cursor=not-a-cursor", "cursor", "cursor"),
        ("direction=sideways", "direction", "direction"),
    ],
)
async def test_bad_parameters_are_clear_400s(
    client: TestClient[web.Request, web.Application], query: str, field: str, words: str
) -> None:
    resp = await client.get(f"/api/v1/calls?{query}")
    assert resp.status == 400
    body = await resp.json()
    assert body["field"] == field
    assert words in body["error"]


async def test_outbound_calls_are_listed_only_on_request(
    twilio: TwilioPoster, client: TestClient[web.Request, web.Application]
) -> None:
    await place(twilio, 1, paris(2026, 11, 16, 10), "+33100000001", "dial", True)
    out = {
        "CallSid": "CA" + "9" * 32,
        "CallStatus": "completed",
        "Direction": "outbound-api",
        "From": "+33100000001",
        "To": "+33698765432",
        "SequenceNumber": "3",
        "CallDuration": "30",
        "Timestamp": "Mon, 16 Nov 2026 10:00:00 +0000",
    }
    assert (await twilio.post(out)).status == 200
    default = (await (await client.get("/api/v1/calls")).json())["calls"]
    assert [c["direction"] for c in default] == ["inbound"]
    every = (await (await client.get("/api/v1/calls?direction=all")).json())["calls"]
    assert sorted(c["direction"] for c in every) == ["inbound", "outbound"]


async def test_admin_token_guards_the_api_when_set(
    db: asyncpg.Connection, database: Database, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(
        create_app(make_settings(database.dsn, tmp_path, admin_token="s3cret-token"))
    )
    assert (await client.get("/api/v1/calls")).status == 401
    bad = await client.get("/api/v1/calls", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    ok = await client.get("/api/v1/calls", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status == 200
    assert (await client.get("/healthz")).status == 200  # stays open


async def test_unknown_route_is_a_json_404(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status == 404
    assert "error" in await resp.json()

"""The simulated switchboard, sent through the real webhook path, stores exactly its truth."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.callbacks.listing import open_callbacks
from service.demo.simulate import Sender, backfill, run_live
from service.demo.traffic import TrafficGenerator
from service.keys import FOLDER
from service.municipality.calendar import Calendar
from service.municipality.model import load_municipality
from service.privacy import Pseudonymiser
from tests.conftest import AUTH_TOKEN, TEST_CONFIG

M = load_municipality(TEST_CONFIG)
DAY = date(2026, 11, 19)  # a Thursday: split hours, a late day


async def test_backfilled_day_is_stored_as_its_truth(
    client: TestClient[web.Request, web.Application], db: asyncpg.Connection
) -> None:
    url = f"http://{client.host}:{client.port}/webhooks/twilio"
    gen = TrafficGenerator(M, seed=7 * 100_000 + DAY.toordinal())
    day = gen.day(DAY)
    backs = gen.call_backs(day)
    truth = {c.sid: c for c in day + backs}
    assert len(truth) > 50
    assert {c.topology for c in truth.values()} == {"dial", "queue", "closed", "callback"}
    async with aiohttp.ClientSession() as session:
        stats = await backfill(
            Sender(session, url, AUTH_TOKEN),
            M,
            [DAY],
            seed=7,
            until=datetime(2030, 1, 1, tzinfo=UTC),
        )
    assert stats.failed == 0
    assert stats.calls == len(truth)
    await client.app[FOLDER].catch_up()
    rows = await db.fetch(
        "SELECT external_id, direction, started_at, answered, wait_s, ended_at FROM calls"
    )
    assert len(rows) == len(truth)
    for r in rows:
        call = truth[r["external_id"]]
        assert r["direction"] == ("outbound" if call.topology == "callback" else "inbound")
        assert (r["started_at"], r["answered"], r["ended_at"]) == (
            call.started_at,
            call.answered,
            call.ended_at,
        )
        if call.topology != "callback":
            assert r["wait_s"] == call.wait_s

    # The call-backs close what they should: a lost call stays to call back unless a
    # call-back reached the caller.
    reached = {b.caller for b in backs if b.answered}
    lost = [c for c in day if gen.is_lost(c)]
    assert reached
    assert len(reached) < len(lost)
    # At midnight, after the day's last call (the call-backs open then are those of the day).
    midnight = datetime.combine(DAY + timedelta(days=1), time(0), M.tz)
    listed = await open_callbacks(db, Calendar(M), midnight)
    pseudonymise = Pseudonymiser("test-secret-key")
    assert {cb.caller_hash for cb in listed} == {
        pseudonymise(c.caller)[0] for c in lost if c.caller not in reached
    }
    # Replaying the same day (a restarted demo) changes nothing.
    async with aiohttp.ClientSession() as session:
        await backfill(
            Sender(session, url, AUTH_TOKEN),
            M,
            [DAY],
            seed=7,
            until=datetime(2030, 1, 1, tzinfo=UTC),
        )
    assert await db.fetchval("SELECT count(*) FROM calls") == len(truth)


async def test_live_traffic_arrives_with_retries_and_duplicates(
    client: TestClient[web.Request, web.Application], db: asyncpg.Connection
) -> None:
    url = f"http://{client.host}:{client.port}/webhooks/twilio"
    async with aiohttp.ClientSession() as session:
        stats = await run_live(
            Sender(session, url, AUTH_TOKEN), M, rate=20, duration=1.0, seed=3, speed=200
        )
    assert stats.failed == 0
    assert stats.calls >= 5
    await client.app[FOLDER].catch_up()
    assert await db.fetchval("SELECT count(*) FROM calls") == stats.calls
    assert await db.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NULL") == 0

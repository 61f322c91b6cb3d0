"""The live wall (snapshot, SSE, several instances, restart, midnight) and the call-backs."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.callbacks.listing import open_callbacks
from service.demo.traffic import SimCall, build_callbacks
from service.keys import DB_POOL, FOLDER, WALL
from service.municipality.calendar import Calendar
from service.municipality.model import load_municipality
from service.wall.model import WallSnapshot
from service.wall.rules import next_midnight, status
from service.wall.snapshot import build_snapshot, comparable
from tests.conftest import (
    ADMIN_HEADERS,
    AUTH_TOKEN,
    TEST_CONFIG,
    ClientFactory,
    Database,
    make_settings,
)
from tests.support.twilio_client import TwilioPoster

M = load_municipality(TEST_CONFIG)
CAL = Calendar(M)
PARIS = ZoneInfo("Europe/Paris")
LINE = M.services[0].lines[0]
SERVICE = M.services[0].slug
CITIZEN = "+33612345678"


def recent_open_instant(days_back: int = 1) -> datetime:
    """10:30 local on a recent day the first service is open (figures and call-backs)."""
    day = datetime.now(PARIS).date() - timedelta(days=days_back)
    while not CAL.is_open_day(M.services[0], day) or not CAL.in_hours(
        M.services[0], datetime.combine(day, time(10, 30), PARIS)
    ):
        day -= timedelta(days=1)
    return datetime.combine(day, time(10, 30), PARIS).astimezone(UTC)


def call(
    n: int,
    start: datetime,
    *,
    answered: bool = False,
    wait: int = 40,
    caller: str = CITIZEN,
    topology: str = "queue",
) -> SimCall:
    sid = "CA" + f"{n:032x}"
    sim = SimCall(sid, LINE, caller, topology, start, answered, wait, 60 if answered else 0)
    build_callbacks(sim, random.Random(n))
    return sim


async def deliver(poster: TwilioPoster, sim: SimCall, first: int | None = None) -> None:
    for _, params in sorted(sim.callbacks, key=lambda c: c[0])[:first]:
        assert (await poster.post(params)).status == 200
    await poster.client.app[FOLDER].catch_up()


class Stream:
    """A real SSE client of ``/api/v1/wall/stream``."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, kind: str = "snapshot", seconds: float = 10.0) -> WallSnapshot:
        import json

        event, data = None, []
        async with asyncio.timeout(seconds):
            while True:
                raw = await self.resp.content.readline()
                if not raw:
                    raise EOFError("stream ended")
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    if event == kind:
                        value: WallSnapshot = json.loads("\n".join(data))
                        return value
                    event, data = None, []

    async def until(self, check: Any, seconds: float = 10.0) -> WallSnapshot:
        async with asyncio.timeout(seconds):
            while True:
                snap = await self.next(seconds=seconds)
                if check(snap):
                    return snap


async def open_stream(session: aiohttp.ClientSession, url: str) -> Stream:
    resp = await session.get(url, headers=ADMIN_HEADERS)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    return Stream(resp)


def tile(snapshot: Mapping[str, Any], slug: str = SERVICE) -> dict[str, Any]:
    return next(t for t in snapshot["services"] if t["service"] == slug)


# --- rules ------------------------------------------------------------------------------


def test_colours_follow_the_stated_rule() -> None:
    p = M.services[0].policy
    assert status(None, None, None, p) == "green"  # nothing offered yet
    assert status(0.9, 0.85, 10, p) == "green"
    assert status(0.84, 0.85, 10, p) == "amber"  # a target missed by one point
    assert status(0.9, 0.85, p.answer_within_s + 1, p) == "amber"  # someone waits too long
    assert status(p.target_answer_rate - 0.10, 0.85, 0, p) == "red"  # ten points below
    assert status(0.9, 0.85, 2 * p.answer_within_s + 1, p) == "red"


@pytest.mark.parametrize(
    ("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 11, 23), 24)]
)
def test_the_day_resets_at_local_midnight_on_dst_days(day: date, hours: int) -> None:
    start = datetime.combine(day, time(0, 0), PARIS)
    just_after = start + timedelta(minutes=1)
    nxt = next_midnight(just_after, PARIS)
    assert nxt.astimezone(PARIS).date() == day + timedelta(days=1)
    assert nxt.astimezone(PARIS).time() == time(0, 0)
    assert (nxt - start.astimezone(UTC)).total_seconds() == hours * 3600


async def test_snapshot_figures_start_again_at_midnight_on_a_dst_day(
    client: TestClient[Any, Any], twilio: TwilioPoster, db: asyncpg.Connection
) -> None:
    # Saturday 24 October 2026 23:50 local; the night of the 25th has 25 hours.
    late = datetime(2026, 10, 24, 23, 50, tzinfo=PARIS).astimezone(UTC)
    await deliver(twilio, call(1, late, answered=True, wait=10))
    pool = client.app[DB_POOL]
    before = await build_snapshot(pool, CAL, datetime(2026, 10, 24, 23, 59, tzinfo=PARIS))
    after = await build_snapshot(pool, CAL, datetime(2026, 10, 25, 0, 1, tzinfo=PARIS))
    assert before["day"] == "2026-10-24"
    assert before["total"]["today"]["received"] == 1
    assert after["day"] == "2026-10-25"
    assert after["total"]["today"]["received"] == 0
    # Still the 25th, 24 hours after its start (one hour before its end): the same day.
    late_25 = datetime(2026, 10, 25, 0, 1, tzinfo=PARIS).astimezone(UTC) + timedelta(hours=24)
    assert late_25.astimezone(PARIS).date() == date(2026, 10, 25)
    assert (await build_snapshot(pool, CAL, late_25))["day"] == "2026-10-25"


# --- live -------------------------------------------------------------------------------


async def test_an_event_posted_to_the_webhook_reaches_a_stream(
    client: TestClient[Any, Any], twilio: TwilioPoster
) -> None:
    async with aiohttp.ClientSession() as session:
        stream = await open_stream(session, str(client.make_url("/api/v1/wall/stream")))
        first = await stream.next()
        assert tile(first)["waiting"] == 0
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
        sim = call(2, now, answered=True, wait=20)
        await deliver(twilio, sim, first=2)  # ringing, then the IVR picks up: waiting
        waiting = await stream.until(lambda s: tile(s)["waiting"] == 1)
        assert tile(waiting)["longest_wait_s"] >= 29
        assert "612345678" not in str(waiting)  # never a number on the wall
        await deliver(twilio, sim)
        done = await stream.until(lambda s: tile(s)["waiting"] == 0)
        assert tile(done)["today"]["received"] == 1
        in_hours = CAL.in_hours(M.services[0], now)
        assert tile(done)["today"]["answered"] == (1 if in_hours else 0)
        assert tile(done)["today"]["out_of_hours"] == (0 if in_hours else 1)
        assert client.app[WALL].clients == 1
        metrics = await (await client.get("/metrics")).text()
        assert "decroche_wall_clients 1.0" in metrics
        rebuilt = re.search(r"(?m)^decroche_wall_rebuild_seconds_count (\S+)$", metrics)
        assert rebuilt is not None
        assert float(rebuilt[1]) >= 3  # on start, the caller waiting, the call done
        stream.resp.close()
    for _ in range(100):  # the server notices the closed stream and drops it
        if client.app[WALL].clients == 0:
            break
        await asyncio.sleep(0.05)
    assert client.app[WALL].clients == 0


async def test_two_instances_stream_the_same_snapshot_and_a_restart_keeps_it(
    db: asyncpg.Connection, database: Database, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    a = await aiohttp_client(
        create_app(make_settings(database.dsn, tmp_path)), headers=ADMIN_HEADERS
    )
    b = await aiohttp_client(
        create_app(make_settings(database.dsn, tmp_path)), headers=ADMIN_HEADERS
    )
    poster_a = TwilioPoster(a, AUTH_TOKEN)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    async with aiohttp.ClientSession() as session:
        stream_b = await open_stream(session, str(b.make_url("/api/v1/wall/stream")))
        await stream_b.next()
        await deliver(poster_a, call(3, start, answered=True, wait=12))  # only A receives it
        seen_by_b = await stream_b.until(lambda s: tile(s)["today"]["received"] == 1)
        stream_b.resp.close()
    from_a = await (await a.get("/api/v1/wall")).json()
    assert comparable(from_a) == comparable(seen_by_b)
    await a.close()
    await b.close()
    # A new instance (a restart) builds the same numbers from the database.
    c = await aiohttp_client(
        create_app(make_settings(database.dsn, tmp_path)), headers=ADMIN_HEADERS
    )
    after_restart = await (await c.get("/api/v1/wall")).json()
    assert comparable(after_restart) == comparable(from_a)


async def test_a_wall_token_opens_the_wall_and_nothing_else(
    client: TestClient[Any, Any], anonymous: Any
) -> None:
    resp = await client.post("/api/v1/wall-tokens", json={"name": "Accueil"})
    link = (await resp.json())["link"]
    token = link.split("token=", 1)[1]
    assert (await anonymous.get(f"/mur?token={token}")).status == 200
    assert (await anonymous.get(f"/api/v1/wall?token={token}")).status == 200
    assert (await anonymous.get(f"/api/v1/callbacks?token={token}")).status in (401, 403)
    assert (await anonymous.get("/api/v1/wall")).status == 401


# --- call-backs -------------------------------------------------------------------------


async def callbacks_now(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/callbacks")
    assert resp.status == 200
    found: list[dict[str, Any]] = (await resp.json())["callbacks"]
    return found


async def test_a_lost_caller_is_listed_until_reached_by_each_route(
    client: TestClient[Any, Any], twilio: TwilioPoster, db: asyncpg.Connection
) -> None:
    t = recent_open_instant(2)
    callers = ["+33600000001", "+33600000002", "+33600000003"]
    for i, number in enumerate(callers):
        await deliver(twilio, call(10 + i, t + timedelta(minutes=i), caller=number))
    # Not listed: a short abandon, a withheld number, an out-of-hours call.
    await deliver(twilio, call(20, t, wait=2, caller="+33600000009"))
    await deliver(twilio, call(21, t, caller="anonymous"))
    night = datetime.combine(t.astimezone(PARIS).date(), time(3, 0), PARIS).astimezone(UTC)
    await deliver(twilio, call(22, night, caller="+33600000008"))

    listed = await callbacks_now(client)
    assert [c["number"] for c in listed] == callers  # oldest first, numbers for admin
    assert listed[0]["caller"] == "…01"
    assert listed[0]["wait_s"] == 40
    assert listed[0]["attempts"] == 1

    # 1. The caller calls again and reaches an agent.
    await deliver(twilio, call(30, t + timedelta(minutes=20), caller=callers[0], answered=True))
    # 2. The municipality calls them back and they answer.
    back = SimCall(
        "CA" + "b" * 32, LINE, callers[1], "dial", t + timedelta(minutes=30), True, 5, 30
    )
    build_callbacks(back, random.Random(1))
    for _, params in back.callbacks:
        if "Direction" in params and not params.get("ParentCallSid"):
            params["Direction"] = "outbound-api"
            params["From"], params["To"] = LINE, callers[1]
    await deliver(twilio, back)
    row = await db.fetchrow(
        "SELECT direction, answered FROM calls WHERE external_id = $1", back.sid
    )
    assert (row["direction"], row["answered"]) == ("outbound", True)
    # 3. By hand.
    resp = await client.post(f"/api/v1/callbacks/{listed[2]['id']}/done")
    assert resp.status == 200

    assert await callbacks_now(client) == []
    audit = await db.fetch("SELECT action FROM audit_log ORDER BY id")
    assert [r["action"] for r in audit] == ["callbacks.view", "callback.done"]

    # A lost call after the mark opens a new call-back (the mark is dated back, as if made
    # that day; one made now closes every earlier call of the caller).
    await deliver(twilio, call(40, t + timedelta(minutes=50), caller=callers[2]))
    assert await callbacks_now(client) == []
    await db.execute("UPDATE callback_marks SET done_at = $1", t + timedelta(minutes=40))
    assert [c["number"] for c in await callbacks_now(client)] == [callers[2]]


async def test_numbers_only_for_the_roles_that_call_back(
    client: TestClient[Any, Any], twilio: TwilioPoster, anonymous: Any
) -> None:
    from service.accounts.model import Role
    from tests.service.accounts.test_accounts import bearer

    t = recent_open_instant(1)
    await deliver(twilio, call(50, t))
    viewer = await bearer(client, Role.VIEWER)
    quality = await bearer(client, Role.QUALITY)
    seen = await (await anonymous.get("/api/v1/callbacks", headers=viewer)).json()
    assert seen["callbacks"][0]["number"] is None
    assert seen["callbacks"][0]["caller"] == "…78"
    assert "612345678" not in str(seen)
    cid = seen["callbacks"][0]["id"]
    assert (await anonymous.post(f"/api/v1/callbacks/{cid}/done", headers=viewer)).status == 403
    seen = await (await anonymous.get("/api/v1/callbacks", headers=quality)).json()
    assert seen["callbacks"][0]["number"] == CITIZEN
    assert (await anonymous.post("/api/v1/callbacks/999999/done", headers=quality)).status == 404
    assert (await anonymous.post(f"/api/v1/callbacks/{cid}/done", headers=quality)).status == 200


async def test_callbacks_on_the_wall_and_their_due_time(
    client: TestClient[Any, Any], twilio: TwilioPoster
) -> None:
    t = recent_open_instant(1)
    await deliver(twilio, call(60, t))
    await deliver(twilio, call(61, t + timedelta(minutes=5)))  # same caller: one call-back
    pool = client.app[DB_POOL]
    found = await open_callbacks(pool, CAL, datetime.now(UTC))
    assert len(found) == 1
    assert found[0].attempts == 2
    due = found[0].due_by
    assert due is not None
    local_due = due.astimezone(PARIS)
    assert local_due.time() == time(0, 0)
    # The end of the next opening day: at least the midnight two days after the call.
    assert local_due.date() >= t.astimezone(PARIS).date() + timedelta(days=2)
    assert CAL.is_open_day(M.services[0], local_due.date() - timedelta(days=1))
    snap = await build_snapshot(pool, CAL, datetime.now(UTC))
    assert tile(snap)["callbacks"] == 1
    assert snap["total"]["callbacks"] == 1


async def test_the_snapshot_includes_every_acknowledged_event(
    client: TestClient[Any, Any], twilio: TwilioPoster
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    for n in range(5):
        sim = call(80 + n, start)
        for _, params in sorted(sim.callbacks, key=lambda c: c[0])[:2]:
            assert (await twilio.post(params)).status == 200
        snap = await (await client.get("/api/v1/wall")).json()
        assert tile(snap)["waiting"] == n + 1

"""Running campaigns on a real PostgreSQL with aiosmtpd as the SMTP server: call sheets and
morning summaries go once each, at their time, whatever the instances and their failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from campaigns import flows, payloads, queries
from campaigns.run.runner import SHEET_LEAD, SUMMARY_AT, CampaignRunner
from service.db.pool import create_pool
from service.municipality.calendar import Calendar
from service.outside.mail import Mailer
from service.scheduler import Scheduler, every
from service.settings import Settings
from tests.campaigns.web.test_campaigns_api import body
from tests.conftest import Database
from tests.support.smtp import Inbox, smtp_server
from tests.support.tcp_proxy import DatabaseProxy

WEEK = {"starts_on": "2027-03-22", "ends_on": "2027-03-26"}  # Monday to Friday, CET


class Clock:
    """The time the runners see; tests move it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def inbox_url() -> Iterator[tuple[Inbox, str]]:
    inbox = Inbox()
    with smtp_server(inbox) as url:
        yield inbox, url


@pytest.fixture
async def pool(db: asyncpg.Connection, database: Database) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one service instance on the test database (emptied after, through db)."""
    p = await create_pool(database.dsn, min_size=1, max_size=4)
    yield p
    await p.close()


async def campaign(
    pool: asyncpg.Pool, settings: Settings, created: datetime | None = None, **overrides: Any
) -> int:
    """A campaign of ``WEEK`` (or as overridden), created at ``created`` (default: a week
    before it starts, whatever today is)."""
    data = body(**(WEEK | overrides))
    cid = await flows.create(
        pool, settings, Calendar(settings.municipality), data, origin="test", source=None,
        actor="test",
    )  # fmt: skip
    start = datetime.fromisoformat(data["starts_on"]).replace(tzinfo=UTC)
    await pool.execute(
        "UPDATE campaigns SET created_at = $2 WHERE id = $1",
        cid,
        created or start - timedelta(days=7),
    )
    return cid


def runner(pool: asyncpg.Pool, settings: Settings, url: str, clock: Clock) -> CampaignRunner:
    return CampaignRunner(pool, settings, Mailer(url, "decroche@ville.test"), clock=clock)


def steps(first: datetime, last: datetime, minutes: int) -> Iterator[datetime]:
    t = first
    while t <= last:
        yield t
        t += timedelta(minutes=minutes)


async def slots(db: asyncpg.Connection) -> dict[int, tuple[datetime, str]]:
    rows = await db.fetch("SELECT id, scheduled_at, evaluator FROM mystery_calls")
    return {r["id"]: (r["scheduled_at"], r["evaluator"]) for r in rows}


def sheets(inbox: Inbox) -> list[tuple[datetime | None, int]]:
    return [
        (at, int(m["X-Decroche-Mystery-Call"]))
        for at, m in inbox.messages
        if m["X-Decroche-Mystery-Call"]
    ]


async def test_each_sheet_goes_once_before_its_slot_and_each_morning_its_summary(
    db: asyncpg.Connection, pool: asyncpg.Pool, settings: Settings, inbox_url: tuple[Inbox, str]
) -> None:
    inbox, url = inbox_url
    cid = await campaign(pool, settings)
    planned = await slots(db)
    clock = Clock(datetime(2027, 3, 22, 0, 0, tzinfo=UTC))
    inbox.clock = clock
    run = runner(pool, settings, url, clock)
    for t in steps(clock.now, datetime(2027, 3, 27, tzinfo=UTC), 5):
        clock.now = t
        await run.tick()
    listed = await queries.current_calls(pool, cid)
    got = sheets(inbox)
    assert sorted(i for _, i in got) == sorted(planned)  # every call once, none twice
    tz = settings.municipality.tz
    shown = {r["id"]: payloads.call_json(r, {}, {}, tz, clock.now)["sheet"] for r in listed}
    assert {s["outcome"] for s in shown.values()} == {"sent"}  # type: ignore[index]
    for at, call_id in got:
        assert shown[call_id]["at"] == at.astimezone(tz).isoformat()  # type: ignore[index, union-attr]
    for at, call_id in got:
        slot, _ = planned[call_id]
        assert at is not None
        assert slot - SHEET_LEAD <= at < slot
    sheet = next(m for _, m in inbox.messages if m["X-Decroche-Mystery-Call"])
    text = sheet.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Numéro à appeler : +331000000" in text
    assert "/appels-mysteres/" in text
    assert sheet.get_body(("html",)) is not None
    # one summary per evaluator and day with calls, from 07:30, before the day's first call
    summaries = [(at, m) for at, m in inbox.messages if not m["X-Decroche-Mystery-Call"]]
    expected = Counter(
        (slot.astimezone(settings.municipality.tz).date(), ev) for slot, ev in planned.values()
    )
    assert len(summaries) == len(expected)
    for at, m in summaries:
        assert at is not None
        local = at.astimezone(settings.municipality.tz)
        assert local.time() >= SUMMARY_AT
        assert "Vos appels mystères du" in str(m["Subject"])
        day_calls = [
            s
            for s, ev in planned.values()
            if ev in str(m["To"]) and s.astimezone(settings.municipality.tz).date() == local.date()
        ]
        assert at < min(day_calls)
        assert f"{len(day_calls)} appel" in str(m["Subject"])


async def test_two_instances_racing_send_each_sheet_once(
    db: asyncpg.Connection, database: Database, settings: Settings, inbox_url: tuple[Inbox, str]
) -> None:
    inbox, url = inbox_url
    pool_a = await create_pool(database.dsn, min_size=1, max_size=4)
    pool_b = await create_pool(database.dsn, min_size=1, max_size=4)
    try:
        await campaign(pool_a, settings)
        planned = await slots(db)
        clock = Clock(datetime(2027, 3, 22, 6, 0, tzinfo=UTC))
        a, b = runner(pool_a, settings, url, clock), runner(pool_b, settings, url, clock)
        for t in steps(clock.now, datetime(2027, 3, 26, 18, 0, tzinfo=UTC), 10):
            clock.now = t
            await asyncio.gather(a.tick(), b.tick(), a.tick())
    finally:
        await pool_a.close()
        await pool_b.close()
    got = Counter(i for _, i in sheets(inbox))
    assert got == Counter(list(planned))  # each call exactly once
    claims = await db.fetch("SELECT claimed_by, outcome FROM run_claims")
    assert {c["outcome"] for c in claims} == {"sent"}
    assert {c["claimed_by"] for c in claims} == {a.instance, b.instance}


async def test_a_refused_sheet_is_tried_again_then_recorded_as_not_sent(
    db: asyncpg.Connection, pool: asyncpg.Pool, settings: Settings, inbox_url: tuple[Inbox, str]
) -> None:
    inbox, url = inbox_url
    await campaign(pool, settings)
    planned = sorted((slot, i) for i, (slot, _) in (await slots(db)).items())
    (first_slot, first), (second_slot, second) = planned[0], planned[1]
    clock = Clock(first_slot - SHEET_LEAD)
    run = runner(pool, settings, url, clock)
    inbox.refuse = True
    await run.tick()
    assert await db.fetchval("SELECT count(*) FROM run_claims WHERE key LIKE 'sheet:%'") == 0
    inbox.refuse = False
    clock.now = first_slot - timedelta(minutes=5)
    await run.tick()
    assert [i for _, i in sheets(inbox)] == [first]
    # the server refuses until the second slot has passed: recorded, never sent late
    inbox.refuse = True
    for t in steps(second_slot - SHEET_LEAD, second_slot + timedelta(minutes=5), 5):
        clock.now = t
        await run.tick()
    inbox.refuse = False
    clock.now = second_slot + timedelta(minutes=10)
    await run.tick()
    assert second not in [i for _, i in sheets(inbox)]
    outcome = await db.fetchval(
        "SELECT outcome FROM run_claims WHERE key LIKE $1", f"sheet:{second}:%"
    )
    assert outcome.startswith("not sent: the slot had passed (the SMTP server")
    assert "451" in outcome


async def test_no_sheet_for_a_slot_before_the_campaign_existed_nor_without_smtp(
    db: asyncpg.Connection, pool: asyncpg.Pool, settings: Settings, inbox_url: tuple[Inbox, str]
) -> None:
    inbox, url = inbox_url
    # created after its slots: a campaign recorded after the fact
    await campaign(
        pool, settings, datetime(2026, 11, 28, tzinfo=UTC),
        starts_on="2026-11-02", ends_on="2026-11-27",
    )  # fmt: skip
    planned = sorted(slot for slot, _ in (await slots(db)).values())
    clock = Clock(planned[0] - timedelta(minutes=10))  # as if the clock were back then
    await runner(pool, settings, url, clock).tick()
    assert inbox.messages == []
    await db.execute("TRUNCATE run_claims, mystery_calls, campaigns, grids CASCADE")
    await campaign(pool, settings)
    first = min(slot for slot, _ in (await slots(db)).values())
    clock.now = first - timedelta(minutes=10)
    unconfigured = CampaignRunner(pool, settings, Mailer(None, "x@y.z"), clock=clock)
    await unconfigured.tick()
    clock.now = first + timedelta(minutes=1)
    await unconfigured.tick()
    outcome = await db.fetchval("SELECT outcome FROM run_claims WHERE key LIKE 'sheet:%'")
    assert outcome == "not sent: the slot had passed (DECROCHE_SMTP_URL is not set)"


async def until(condition: Any, seconds: float = 20.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if await condition():
            return True
        await asyncio.sleep(0.02)
    return bool(await condition())


async def test_a_leader_cut_off_mid_campaign_is_taken_over_and_nothing_goes_twice(
    db: asyncpg.Connection, database: Database, settings: Settings, inbox_url: tuple[Inbox, str]
) -> None:
    inbox, url = inbox_url
    proxy = DatabaseProxy(database.dsn)
    await proxy.start()
    pool_a = await create_pool(proxy.dsn, min_size=1, max_size=4, command_timeout=2)
    pool_b = await create_pool(database.dsn, min_size=1, max_size=4)
    tz = settings.municipality.tz
    clock = Clock(datetime(2027, 3, 22, 5, 0, tzinfo=UTC))
    instances: list[Scheduler] = []

    async def advance(t: datetime) -> None:
        """Move the clock, then wait for two rounds of whoever leads to start after."""
        clock.now = t
        before = sum(s.runs.get("campaigns.run", 0) for s in instances)
        assert await until(
            lambda: _true(sum(s.runs.get("campaigns.run", 0) for s in instances) >= before + 2)
        )

    # every 25 minutes of the working hours: each sheet's 30-minute window gets a round
    moments = [
        t
        for t in steps(clock.now, datetime(2027, 3, 26, 18, 0, tzinfo=UTC), 25)
        if 6 <= t.hour < 18
    ]
    try:
        await campaign(pool_b, settings)
        planned = await slots(db)
        middle = sorted(s for s, _ in planned.values())[len(planned) // 2]
        for pool in (pool_a, pool_b):
            scheduler = Scheduler(pool, tz, elect_every_s=0.05)
            scheduler.add("campaigns.run", runner(pool, settings, url, clock).tick, every(0.05, tz))
            instances.append(scheduler)
        a, b = instances
        await a.start()
        assert await until(lambda: _true(a.is_leader))
        await b.start()
        for t in [m for m in moments if m < middle - SHEET_LEAD]:
            await advance(t)
        assert not b.is_leader
        half = {i for _, i in sheets(inbox)}
        assert half == {i for i, (s, _) in planned.items() if s < middle - SHEET_LEAD}
        assert half, "the first half of the week had sheets"
        await proxy.cut()  # the leader loses its database mid-campaign
        assert await until(lambda: _true(b.is_leader))
        for t in [m for m in moments if m >= middle - SHEET_LEAD]:
            await advance(t)
    finally:
        for s in instances:
            await s.stop()
        pool_a.terminate()
        await pool_b.close()
        await proxy.cut()
    assert Counter(i for _, i in sheets(inbox)) == Counter(list(planned))
    outcomes = await db.fetch("SELECT claimed_by, outcome FROM run_claims")
    assert {o["outcome"] for o in outcomes} == {"sent"}


async def _true(value: bool) -> bool:
    return value


async def test_a_sheet_perhaps_delivered_is_never_sent_again(
    db: asyncpg.Connection, pool: asyncpg.Pool, settings: Settings, inbox_url: tuple[Inbox, str]
) -> None:
    inbox, url = inbox_url
    await campaign(pool, settings)
    slot, first = min((s, i) for i, (s, _) in (await slots(db)).items())
    clock = Clock(slot - SHEET_LEAD)
    run = CampaignRunner(pool, settings, Mailer(url, "q@ville.test", timeout_s=0.3), clock=clock)
    inbox.hang_s = 1.0  # the server answers after the sender gave up: was it delivered?
    await run.tick()
    inbox.hang_s = 0.0
    for t in steps(slot - SHEET_LEAD + timedelta(minutes=5), slot - timedelta(minutes=1), 5):
        clock.now = t
        await run.tick()
    await asyncio.sleep(1.2)
    # aiosmtpd drops a message whose sender hung up: none arrived, so none was sent again
    assert first not in [i for _, i in sheets(inbox)]
    key = f"sheet:{first}:%"
    outcome = await db.fetchval("SELECT outcome FROM run_claims WHERE key LIKE $1", key)
    assert outcome.startswith("unknown: the SMTP server")

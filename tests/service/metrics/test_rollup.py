"""The daily rollup gives the same figures as reading every call: once built, while calls
change under it, after a configuration change, and when a change commits during a refresh."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from service.demo.traffic import SimCall, TrafficGenerator
from service.keys import DB_POOL
from service.metrics.report import breakdown, engagement8
from service.metrics.rollup import fingerprint, refresh
from tests.service.metrics.test_engagement8 import (
    Client,
    M,
    assert_figures,
    call,
    edge_calls,
    get,
    ingest,
    local,
    reference,
)


def check(
    data: Mapping[str, Any], calls: list[SimCall], first: date, last: date, m: Any = M
) -> None:
    rows = {r["service"]: r for r in data["services"]}
    for s in m.services:
        assert_figures(rows[s.slug], reference(calls, m, first, last, s.slug))
    unknown = reference(calls, m, first, last, None)
    if unknown["received"]:
        assert_figures(rows[None], unknown)
    assert_figures(data["total"], reference(calls, m, first, last))


async def rolled_days(pool: asyncpg.Pool) -> set[date]:
    return {r["day"] for r in await pool.fetch("SELECT day FROM rollup_days")}


PERIODS = [
    (date(2026, 11, 16), date(2026, 11, 16)),
    (date(2026, 3, 29), date(2026, 3, 29)),
    (date(2026, 10, 25), date(2026, 10, 25)),
    (date(2026, 1, 1), date(2026, 12, 31)),
]


@pytest.mark.parametrize(("first", "last"), PERIODS)
async def test_rolled_up_edge_cases_match_the_reference(
    client: Client, first: date, last: date
) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    pool = client.app[DB_POOL]
    built = await refresh(pool, M, wait=True)
    # Every day from the first call to the last is built, none is dirty any more.
    days = await rolled_days(pool)
    assert built == len(days) >= (date(2026, 12, 26) - date(2026, 3, 29)).days + 1
    assert await pool.fetchval("SELECT count(*) FROM rollup_dirty") == 0
    assert await pool.fetchval("SELECT sum(n) FROM call_rollup") == len(calls)
    # Whole months are summed: April to November 2026 (March and December are partial).
    months = [r["month"] for r in await pool.fetch("SELECT month FROM rollup_months ORDER BY 1")]
    assert months == [date(2026, mo, 1) for mo in range(4, 12)]
    assert await pool.fetchval("SELECT sum(n) FROM call_rollup_month") == sum(
        1
        for c in calls
        if date(2026, 4, 1) <= c.started_at.astimezone(M.tz).date() < date(2026, 12, 1)
    )
    check(await get(client, f"from={first}&to={last}"), calls, first, last)
    by_day = await get(client, f"from={first}&to={last}&by=day")
    for row in by_day["rows"]:
        day = date.fromisoformat(row["key"])
        assert_figures(row, reference(calls, M, day, day))


async def test_generated_traffic_percentiles_from_the_rollup(client: Client) -> None:
    calls: list[SimCall] = []
    gen = TrafficGenerator(M, seed=5)
    first = date(2026, 11, 2)
    for d in range(21):
        calls += gen.day(first + timedelta(days=d))
    await ingest(client, calls)
    await refresh(client.app[DB_POOL], M, wait=True)
    last = first + timedelta(days=20)
    check(await get(client, f"from={first}&to={last}"), calls, first, last)
    by_week = await get(client, f"from={first}&to={last}&by=week")
    assert [r["key"] for r in by_week["rows"]] == ["2026-W45", "2026-W46", "2026-W47"]
    mondays = (first, first + timedelta(7), first + timedelta(14))
    for row, monday in zip(by_week["rows"], mondays, strict=True):
        assert_figures(row, reference(calls, M, monday, monday + timedelta(days=6)))


async def test_calls_changed_after_a_refresh_are_read_from_the_calls(client: Client) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    pool = client.app[DB_POOL]
    await refresh(pool, M, wait=True)
    # New calls on a built day, and a later call: the days are marked, then rebuilt.
    more = [
        call("+33100000001", local(2026, 11, 16, 9, 0), False, 12),
        call("+33100000001", local(2026, 11, 16, 10, 0), True, 200),
        call("+33100000009", local(2026, 10, 25, 2, 45), True, 3),
    ]
    await ingest(client, more)
    dirty = {r["utc_day"] for r in await pool.fetch("SELECT utc_day FROM rollup_dirty")}
    assert dirty == {date(2026, 11, 16), date(2026, 10, 25)}
    everything = calls + more
    for first, last in PERIODS:
        check(await get(client, f"from={first}&to={last}"), everything, first, last)
    await refresh(pool, M, wait=True)
    assert await pool.fetchval("SELECT count(*) FROM rollup_dirty") == 0
    for first, last in PERIODS:
        check(await get(client, f"from={first}&to={last}"), everything, first, last)


async def test_a_call_updated_in_place_marks_its_old_and_new_days(client: Client) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    pool = client.app[DB_POOL]
    await refresh(pool, M, wait=True)
    # A correction moves a call from 16 to 17 November and makes it unanswered.
    moved = await pool.fetchval(
        "UPDATE calls SET started_at = started_at + interval '1 day', answered = false, "
        "answered_at = NULL, disposition = 'abandoned' "
        "WHERE started_at = $1 RETURNING id",
        local(2026, 11, 16, 8, 30),
    )
    assert moved is not None
    days = {r["utc_day"] for r in await pool.fetch("SELECT utc_day FROM rollup_dirty")}
    assert days == {date(2026, 11, 16), date(2026, 11, 17)}
    # Erasing a number changes no figure: no mark.
    await pool.execute("TRUNCATE rollup_dirty")
    await pool.execute("UPDATE calls SET caller_number = NULL")
    assert await pool.fetchval("SELECT count(*) FROM rollup_dirty") == 0
    await pool.execute("INSERT INTO rollup_dirty (utc_day) VALUES ('2026-11-16'), ('2026-11-17')")
    data = await get(client, "from=2026-11-16&to=2026-11-17&service=accueil")
    assert data["total"]["received"] == 8
    assert data["total"]["answered_within"] == 0  # the 25-second wait is gone
    await refresh(pool, M, wait=True)
    again = await get(client, "from=2026-11-16&to=2026-11-17&service=accueil")
    assert again["total"] == data["total"]


async def test_a_changed_calendar_ignores_then_rebuilds_the_rollup(client: Client) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    pool = client.app[DB_POOL]
    await refresh(pool, M, wait=True)
    am = replace(M, holiday_zone="alsace-moselle")
    assert fingerprint(am) != fingerprint(M)
    first, last = date(2026, 1, 1), date(2026, 12, 31)
    # Read under the other calendar: the stored rollup is not used, figures are still right.
    check(await engagement8(pool, am, first, last), calls, first, last, am)
    await refresh(pool, am, wait=True)
    assert await pool.fetchval("SELECT fingerprint FROM rollup_state") == fingerprint(am)
    check(await engagement8(pool, am, first, last), calls, first, last, am)
    # And the first calendar, now a stranger to the rollup, still gets its own figures.
    check(await engagement8(pool, M, first, last), calls, first, last, M)


async def test_a_changed_threshold_needs_no_rebuild(client: Client) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    pool = client.app[DB_POOL]
    await refresh(pool, M, wait=True)
    stricter = replace(
        M,
        services=tuple(
            replace(s, policy=replace(s.policy, answer_within_s=10, short_abandon_s=1))
            for s in M.services
        ),
    )
    assert fingerprint(stricter) == fingerprint(M)
    first, last = date(2026, 1, 1), date(2026, 12, 31)
    check(await engagement8(pool, stricter, first, last), calls, first, last, stricter)
    days = await breakdown(pool, stricter, first, last, "day")
    assert sum(r["answered_within"] for r in days["rows"]) == days["total"]["answered_within"]


async def test_a_change_committed_during_a_refresh_keeps_its_mark(
    client: Client, database: Any
) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    pool = client.app[DB_POOL]
    await refresh(pool, M, wait=True)
    query = "from=2026-11-16&to=2026-11-16&service=accueil"
    before = (await get(client, query))["total"]["answered"]
    writer = await asyncpg.connect(database.dsn)
    try:
        tx = writer.transaction()
        await tx.start()
        await writer.execute(
            "UPDATE calls SET answered = false, answered_at = NULL, disposition = 'abandoned' "
            "WHERE started_at = $1",
            local(2026, 11, 16, 8, 30),
        )
        # The refresher runs while the change is not committed: it cannot see it.
        await pool.execute("INSERT INTO rollup_dirty (utc_day) VALUES ('2026-11-16')")
        await refresh(pool, M, wait=True)
        await tx.commit()
    finally:
        await writer.close()
    # The writer's mark survived the refresh, so the day is read from the calls.
    assert await pool.fetchval("SELECT count(*) FROM rollup_dirty") == 1
    data = await get(client, query)
    assert data["total"]["answered"] == before - 1
    await refresh(pool, M, wait=True)
    assert (await get(client, query)) == data

"""Events and calls partitioned by month: a call keeps one month (its first events'), so it
is stored once whatever the order its events come in, even across a month's end; the
partitions are made ahead by the scheduler and on demand by writers; the migration moves an
existing database's rows into them unchanged."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.callbacks.queries import open_unanswered
from service.calls.partition_queries import existing_months
from service.calls.partitions import (
    Partitions,
    add_months,
    make_ahead,
    month_of,
    months_ahead,
    months_of,
)
from service.calls.queries import append_events
from service.db.migrate import apply_migrations, available
from service.demo.traffic import SimCall, build_callbacks
from service.keys import DB_POOL, SETTINGS
from service.wall.queries import in_progress
from tests.service.db.test_migrations import empty_dsn as empty_dsn
from tests.support.traffic import events_of
from tests.support.twilio_client import TwilioPoster
from tests.webhooks.test_webhook_twilio import assert_truth, stored_call

Client = TestClient[web.Request, web.Application]
MIDNIGHT = datetime(2026, 12, 1, tzinfo=UTC)  # November ends, in UTC


def straddling(n: int, answered: bool = True) -> SimCall:
    """A call that starts ten seconds before the month ends and goes on after."""
    call = SimCall(
        f"CA{n:032x}", "+33100000001", "+33612345678", "queue",
        MIDNIGHT - timedelta(seconds=10), answered, 25, 90 if answered else 0,
    )  # fmt: skip
    build_callbacks(call, random.Random(n))
    return call


async def partitions_of(db: asyncpg.Connection, sid: str) -> dict[str, set[str]]:
    return {
        "events": {
            r["t"]
            for r in await db.fetch(
                "SELECT tableoid::regclass::text AS t FROM events WHERE call_key = $1", sid
            )
        },
        "calls": {
            r["t"]
            for r in await db.fetch(
                "SELECT tableoid::regclass::text AS t FROM calls WHERE external_id = $1", sid
            )
        },
    }


# -- pure rules --------------------------------------------------------------------------


def test_months() -> None:
    assert month_of(datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)) == date(2026, 11, 1)
    # Paris is an hour ahead in winter: 00:30 on 1 December there is still November in UTC.
    paris = datetime(2026, 12, 1, 0, 30, tzinfo=UTC) - timedelta(hours=1)
    assert month_of(paris) == date(2026, 11, 1)
    assert add_months(date(2026, 11, 1), 2) == date(2027, 1, 1)
    assert add_months(date(2027, 1, 1), -1) == date(2026, 12, 1)
    assert months_ahead(MIDNIGHT, 3) == [date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1),
                                         date(2027, 3, 1)]  # fmt: skip
    # A batch's new calls go to the month of their earliest event in it.
    call = straddling(1)
    assert months_of(events_of(call)) == {date(2026, 11, 1)}
    assert months_of(events_of(call)[-1:]) == {date(2026, 12, 1)}


# -- through the webhook ---------------------------------------------------------------------


@pytest.mark.parametrize("order", ["in order", "last first", "shuffled twice"])
async def test_a_call_across_the_month_end_is_stored_once(
    twilio: TwilioPoster, db: asyncpg.Connection, order: str
) -> None:
    call = straddling(7)
    callbacks = [p for _, p in call.callbacks]
    if order == "last first":
        callbacks = callbacks[::-1]
    elif order == "shuffled twice":
        callbacks = random.Random(3).sample(callbacks, len(callbacks)) * 2
    assert {m.month for m in (month_of(t) for t, _ in call.callbacks)} == {11, 12}
    for params in callbacks:
        assert (await twilio.post(params)).status == 200
    assert_truth(await stored_call(db, call.sid, twilio), call)
    first = "2026_12" if order == "last first" else "2026_11"
    # One month for the call and all its events: that of the first events stored.
    assert await partitions_of(db, call.sid) == {
        "events": {f"events_{first}"},
        "calls": {f"calls_{first}"},
    }
    assert await db.fetchval("SELECT count(*) FROM calls") == 1
    assert await db.fetchval("SELECT count(*) FROM events") == len(call.callbacks)
    month = date(2026, 12, 1) if order == "last first" else date(2026, 11, 1)
    assert await db.fetchval("SELECT month FROM call_keys") == month


async def test_first_events_of_one_call_racing_register_one_month(
    client: Client, db: asyncpg.Connection
) -> None:
    """Its first two events at once, on two connections, each dated in another month: one
    registration wins and both events are stored under it."""
    call = straddling(8)
    first, last = events_of(call)[0], events_of(call)[-1]
    assert month_of(first.at or first.received_at) != month_of(last.at or last.received_at)
    conns = [await asyncpg.connect(client.app[SETTINGS].database_url) for _ in range(2)]
    try:
        for _ in range(10):
            await db.execute("TRUNCATE call_keys, events, fold_queue")
            await asyncio.gather(
                append_events(conns[0], [(first, {})], Partitions()),
                append_events(conns[1], [(last, {})], Partitions()),
            )
            months = await db.fetch("SELECT DISTINCT month FROM events")
            assert len(months) == 1
            registered = await db.fetchval("SELECT month FROM call_keys")
            assert [r["month"] for r in months] == [registered]
    finally:
        for c in conns:
            await c.close()


async def test_old_records_make_their_partitions(
    twilio: TwilioPoster, db: asyncpg.Connection
) -> None:
    """A delivery dated years back (an import of old records, a replay) is stored: its
    month's partition is made on demand."""
    call = straddling(9)
    old = {
        k: v.replace("2026", "2021") if k == "Timestamp" else v
        for k, v in call.callbacks[0][1].items()
    }
    assert "2021" in old["Timestamp"]
    assert (await twilio.post(old)).status == 200
    assert await db.fetchval("SELECT to_regclass('events_2021_11') IS NOT NULL")
    assert (await partitions_of(db, call.sid))["events"] == {"events_2021_11"}


async def test_partitions_are_made_ahead_once_even_when_raced(client: Client) -> None:
    pool = client.app[DB_POOL]
    far = datetime(2031, 4, 15, tzinfo=UTC)
    made = await asyncio.gather(*(make_ahead(pool, far) for _ in range(4)))
    assert sum(made) == 2 * 4  # events and calls, for April to July 2031, once
    months = await existing_months(pool)
    assert set(months_ahead(far)) <= set(months)
    assert await make_ahead(pool, far) == 0
    for m in months_ahead(far):
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM pg_inherits WHERE inhrelid = to_regclass($1)",
                f"calls_{m:%Y_%m}",
            )
            == 1
        )


# -- the migration ---------------------------------------------------------------------------


async def _migrate_before(conn: asyncpg.Connection, version: int) -> None:
    """Bring an empty database to the schema just before migration ``version``."""
    await conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for mig in available():
        if mig.version < version:
            await conn.execute(mig.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                mig.version, mig.name,
            )  # fmt: skip


async def test_the_migration_moves_existing_rows_unchanged(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await _migrate_before(conn, 12)
        # The old tables, with a call straddling November's end and one from last year.
        starts = (MIDNIGHT - timedelta(seconds=10), datetime(2025, 3, 3, 9, tzinfo=UTC))
        for n, started in enumerate(starts, 1):
            await conn.execute(
                "INSERT INTO events (source, call_key, dedup_key, kind, occurred_at, "
                "received_at, norm, payload) VALUES ('twilio', $1, 'd1', 'status', $2, $3, "
                "'{}', '{}'), ('twilio', $1, 'd2', 'status', $3, $3, '{}', '{}')",
                f"CA{n}", started, started + timedelta(minutes=2),
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO calls (source, external_id, direction, started_at, answered, "
                "time_from_events) VALUES ('twilio', $1, 'inbound', $2, true, true)",
                f"CA{n}", started,
            )  # fmt: skip
        ids = await conn.fetch("SELECT id, external_id FROM calls ORDER BY id")
        await conn.execute("DELETE FROM rollup_dirty")
        applied = await apply_migrations(conn)
        assert [m.version for m in applied] == [m.version for m in available() if m.version >= 12]
        assert await conn.fetch("SELECT id, external_id FROM calls ORDER BY id") == ids
        months = {
            r["external_id"]: (r["month"], r["t"])
            for r in await conn.fetch(
                "SELECT external_id, month, tableoid::regclass::text AS t FROM calls"
            )
        }
        assert months == {
            "CA1": (date(2026, 11, 1), "calls_2026_11"),
            "CA2": (date(2025, 3, 1), "calls_2025_03"),
        }
        assert await conn.fetchval("SELECT count(*) FROM events") == 4
        assert await conn.fetchval("SELECT count(*) FROM rollup_dirty") == 0  # figures unchanged
        # The sequences go on from where they were, and new rows find their partitions.
        next_id = await conn.fetchval(
            "INSERT INTO calls (month, source, external_id, direction, started_at, answered, "
            "time_from_events) VALUES ('2026-11-01', 'twilio', 'CA3', 'inbound', $1, true, true) "
            "RETURNING id",
            MIDNIGHT - timedelta(hours=1),
        )
        assert next_id == max(r["id"] for r in ids) + 1
        assert await conn.fetchval("SELECT count(*) FROM rollup_dirty") == 1  # the trigger lives
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO calls (month, source, external_id, direction, started_at, answered, "
                "time_from_events) VALUES ('2026-11-01', 'twilio', 'CA1', 'inbound', $1, true, "
                "true)",
                MIDNIGHT,
            )
    finally:
        await conn.close()


@pytest.mark.parametrize("had_bounds", [False, True], ids=["0012-as-landed", "0012-edited"])
async def test_a_database_partitioned_earlier_gets_the_month_bounds(
    empty_dsn: str, had_bounds: bool
) -> None:
    # 0012 landed without the bound functions the queries now use; for a while they were
    # written into it. Both kinds of database must upgrade, and the queries then work.
    conn = await asyncpg.connect(empty_dsn)
    try:
        await _migrate_before(conn, 13)
        assert await conn.fetchval("SELECT to_regprocedure('first_month_of(timestamptz)')") is None
        if had_bounds:
            bounds = next(m for m in available() if m.version == 13).sql
            await conn.execute(bounds.replace("CREATE OR REPLACE", "CREATE"))
        applied = await apply_migrations(conn)
        assert [m.version for m in applied] == [m.version for m in available() if m.version >= 13]
        now = MIDNIGHT + timedelta(hours=10)
        lost = now - timedelta(hours=1)
        await conn.execute("SELECT ensure_month_partitions(ARRAY[date '2026-12-01'])")
        await conn.execute(
            "INSERT INTO calls (month, source, external_id, direction, started_at, answered, "
            "disposition, caller_hash, time_from_events) VALUES ('2026-12-01', 'twilio', "
            "'CA1', 'inbound', $1, false, 'abandoned', 'h1', true), ('2026-12-01', 'twilio', "
            "'CA2', 'inbound', $2, false, NULL, 'h2', true)",
            lost, now - timedelta(seconds=30),
        )  # fmt: skip
        open_calls = await open_unanswered(conn, now - timedelta(days=30), now)
        assert [r["caller_hash"] for r in open_calls] == ["h1"]
        waiting = await in_progress(conn, MIDNIGHT)
        assert [r["started_at"] for r in waiting] == [now - timedelta(seconds=30)]
    finally:
        await conn.close()

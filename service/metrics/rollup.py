"""The daily rollup: histogram rows of the classified calls, per local day and service.

Reports over long periods read these rows instead of every call (``queries.py``). The rollup
is a cache derived from the calls and the configuration, never a source of truth:

- It is keyed by a *fingerprint* of what classification depends on — the time zone, the
  holiday zone and Whit Monday, closures, every service's lines, queues and hours, and the
  version of the ``holidays`` package. Thresholds are not in it: they apply at query time.
  A service whose fingerprint differs from the stored one ignores the rollup, and its
  refresher rebuilds it under its own.
- Every statement writing ``calls`` marks its days dirty (a trigger, migration 0002). A
  dirty day is read from the calls until the refresher has rebuilt it.
- The refresher works in REPEATABLE READ: the marks it deletes are exactly those visible in
  the snapshot it rebuilt from, so a change committed meanwhile keeps its mark. An advisory
  lock lets one instance refresh at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib.metadata import version

import asyncpg

from service.db.errors import is_unavailable
from service.metrics.queries import build_rollup_days
from service.municipality.model import Municipality

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the rollup's rows change meaning
_LOCK_ID = 0x726F6C6C7570  # "rollup"
MAX_DAYS_PER_ROUND = 31  # days rebuilt per transaction: bounds a round's time and locks


@cache
def _holidays_version() -> str:
    return version("holidays")


def fingerprint(m: Municipality) -> str:
    """A digest of every setting that decides a call's service and its ``in_hours``."""
    doc = {
        "format": FORMAT,
        "holidays": _holidays_version(),
        "timezone": m.timezone,
        "holiday_zone": m.holiday_zone,
        "whit_monday_open": m.whit_monday_open,
        "closures": sorted(d.isoformat() for d in m.closures),
        "services": [
            {
                "slug": s.slug,
                "lines": list(s.lines),
                "queues": list(s.queues),
                "hours": {
                    str(wd): [[lo.isoformat(), hi.isoformat()] for lo, hi in ivs]
                    for wd, ivs in sorted(s.hours.items())
                },
                "closures": sorted(d.isoformat() for d in s.closures),
            }
            for s in m.services
        ],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Round:
    rebuilt: int  # days rebuilt, dirty or missing
    missing: int  # of which never built before


async def refresh_round(
    conn: asyncpg.Connection, m: Municipality, fp: str, *, wait: bool = False
) -> Round | None:
    """Rebuild the dirty days and up to :data:`MAX_DAYS_PER_ROUND` missing ones.

    Returns what it did, or None when another instance holds the refresher's lock (with
    ``wait``, waits for it instead).
    """
    # The lock is taken before the transaction: its snapshot must come after the previous
    # holder's commit, or this round would not see that round's rows.
    if wait:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    elif not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_ID):
        return None
    try:
        return await _round(conn, m, fp)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)


async def _round(conn: asyncpg.Connection, m: Municipality, fp: str) -> Round:
    async with conn.transaction(isolation="repeatable_read"):
        stored = await conn.fetchval("SELECT fingerprint FROM rollup_state")
        if stored != fp:
            # The configuration changed: everything is rebuilt under the new fingerprint.
            for table in ("call_rollup", "rollup_days", "call_rollup_month", "rollup_months"):
                await conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
            await conn.execute("DELETE FROM rollup_dirty")
            await conn.execute(
                "INSERT INTO rollup_state (fingerprint) VALUES ($1) ON CONFLICT (id) "
                "DO UPDATE SET fingerprint = EXCLUDED.fingerprint, built_at = now()",
                fp,
            )
            marks: list[asyncpg.Record] = []
        else:
            marks = await conn.fetch("SELECT id, utc_day FROM rollup_dirty ORDER BY id LIMIT 10000")
        days: set[date] = set()
        for r in marks:
            days.update(r["utc_day"] + timedelta(days=k) for k in (-1, 0, 1))
        # Days never built, newest first (recent reports are the most read), between the
        # first and the last call.
        missing = await conn.fetch(
            """
            WITH span AS (SELECT (min(started_at) AT TIME ZONE $1)::date AS a,
                                 (max(started_at) AT TIME ZONE $1)::date AS b FROM calls)
            SELECT g::date AS day FROM span, generate_series(span.a, span.b, '1 day') AS g
            WHERE NOT EXISTS (SELECT 1 FROM rollup_days r WHERE r.day = g::date)
            ORDER BY g DESC LIMIT $2
            """,
            m.timezone,
            MAX_DAYS_PER_ROUND,
        )
        days.update(r["day"] for r in missing)
        if not days:
            return Round(0, 0)
        ordered = sorted(days)
        await conn.execute("DELETE FROM call_rollup WHERE day = ANY($1::date[])", ordered)
        await build_rollup_days(conn, m, ordered)
        await conn.execute(
            "INSERT INTO rollup_days (day) SELECT unnest($1::date[]) ON CONFLICT DO NOTHING",
            ordered,
        )
        await _rebuild_months(conn, sorted({d.replace(day=1) for d in ordered}))
        if marks:
            await conn.execute(
                "DELETE FROM rollup_dirty WHERE id = ANY($1::bigint[])", [r["id"] for r in marks]
            )
        return Round(len(ordered), len(missing))


async def _rebuild_months(conn: asyncpg.Connection, months: list[date]) -> None:
    """Re-sum the given months from their day rows, for those whose every day is built."""
    await conn.execute("DELETE FROM call_rollup_month WHERE month = ANY($1::date[])", months)
    await conn.execute("DELETE FROM rollup_months WHERE month = ANY($1::date[])", months)
    complete = [
        r["month"]
        for r in await conn.fetch(
            """
            SELECT m.month FROM unnest($1::date[]) AS m(month)
            WHERE (SELECT count(*) FROM rollup_days d
                   WHERE d.day >= m.month AND d.day < m.month + interval '1 month')
                  = (m.month + interval '1 month')::date - m.month
            """,
            months,
        )
    ]
    if not complete:
        return
    await conn.execute(
        """
        INSERT INTO call_rollup_month (month, service, in_hours, answered, wait_s, n)
        SELECT m.month, r.service, r.in_hours, r.answered, r.wait_s, sum(r.n)
        FROM unnest($1::date[]) AS m(month)
        JOIN call_rollup r ON r.day >= m.month AND r.day < (m.month + interval '1 month')::date
        GROUP BY 1, 2, 3, 4, 5
        """,
        complete,
    )
    await conn.execute("INSERT INTO rollup_months (month) SELECT unnest($1::date[])", complete)


async def span_days(pool: asyncpg.Pool, m: Municipality) -> int:
    """Local days from the first call to the last: the most a full build rebuilds."""
    span = await pool.fetchval(
        "SELECT (max(started_at) AT TIME ZONE $1)::date - (min(started_at) AT TIME ZONE $1)::date"
        " + 1 FROM calls",
        m.timezone,
    )
    return int(span or 0)


async def refresh(
    pool: asyncpg.Pool,
    m: Municipality,
    *,
    wait: bool = False,
    on_round: Callable[[int], None] | None = None,
) -> int:
    """Bring the rollup up to date; returns the number of days rebuilt.

    Without ``wait``, returns early, having done nothing, when another instance is
    refreshing; with it, takes turns with the others until the rollup is up to date.
    """
    fp = fingerprint(m)
    total = 0
    while True:
        async with pool.acquire() as conn:
            done = await refresh_round(conn, m, fp, wait=wait)
        if done is None:
            return total
        total += done.rebuilt
        if on_round is not None and done.rebuilt:
            on_round(done.rebuilt)
        # Rounds go on while days are still missing; marked days are taken once per call,
        # or a steady stream of calls would keep the loop turning on today.
        if not done.missing:
            return total


class Refresher:
    """Keeps the rollup fresh in the background: at start, then every ``interval_s``."""

    def __init__(self, pool: asyncpg.Pool, m: Municipality, interval_s: float = 30.0) -> None:
        self._pool = pool
        self._m = m
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rollup-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await refresh(self._pool, self._m)
            except Exception as exc:
                # Reports stay right without the rollup (they read the calls): log and retry.
                if not is_unavailable(exc):
                    log.exception("rollup refresh failed; retrying")
            await asyncio.sleep(self._interval_s)

"""The daily rollup: histogram rows of the classified calls, per local day and service.

Reports over long periods read these rows instead of every call (``queries.py``; the
rollup's own SQL is in ``rollup_queries.py``). The rollup is a cache derived from the calls
and the configuration, never a source of truth:

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
from service.db.queries import advisory_lock, advisory_unlock, try_advisory_lock
from service.metrics import rollup_queries as q
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
        await advisory_lock(conn, _LOCK_ID)
    elif not await try_advisory_lock(conn, _LOCK_ID):
        return None
    try:
        return await _round(conn, m, fp)
    finally:
        await advisory_unlock(conn, _LOCK_ID)


async def _round(conn: asyncpg.Connection, m: Municipality, fp: str) -> Round:
    async with conn.transaction(isolation="repeatable_read"):
        if await q.stored_fingerprint(conn) != fp:
            # The configuration changed: everything is rebuilt under the new fingerprint.
            await q.reset(conn, fp)
            marks: list[asyncpg.Record] = []
        else:
            marks = await q.dirty_marks(conn)
        days: set[date] = set()
        for r in marks:
            days.update(r["utc_day"] + timedelta(days=k) for k in (-1, 0, 1))
        missing = await q.missing_days(conn, m.timezone, MAX_DAYS_PER_ROUND)
        days.update(missing)
        if not days:
            return Round(0, 0)
        ordered = sorted(days)
        await q.rebuild_days(conn, m, ordered)
        await q.rebuild_months(conn, sorted({d.replace(day=1) for d in ordered}))
        if marks:
            await q.delete_marks(conn, [r["id"] for r in marks])
        return Round(len(ordered), len(missing))


async def span_days(pool: asyncpg.Pool, m: Municipality) -> int:
    """Local days from the first call to the last: the most a full build rebuilds."""
    return await q.span_days(pool, m.timezone)


async def forget(pool: asyncpg.Pool) -> None:
    """Make the next refresh rebuild the whole rollup (``decroche rollup --rebuild``)."""
    await q.forget_fingerprint(pool)


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

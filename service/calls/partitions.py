"""The monthly partitions of ``events`` and ``calls`` (migration 0012).

A call's month — its partition, for its events and its row — is fixed by its first events
(the earliest of their instants, UTC) and kept in ``call_keys``; SQL computes it (see
:data:`service.calls.queries.INSERT_EVENTS`). This module says which months a batch may
need, so that their partitions exist before it is written, and keeps partitions made ahead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime

import asyncpg

from service.calls.model import Event
from service.calls.partition_queries import ensure_month_partitions

log = logging.getLogger(__name__)

AHEAD_MONTHS = 3  # the scheduler keeps the partitions of this many months ahead made


def month_of(at: datetime) -> date:
    """The first day of the month (UTC) of ``at``: the partition it falls in."""
    return at.astimezone(UTC).date().replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_of(events: Iterable[Event]) -> set[date]:
    """The months a batch could create calls in: for each call, the month of the earliest
    instant among its events here (a call already known keeps its own month, whose
    partition exists since its first events were stored)."""
    first: dict[tuple[str, str], datetime] = {}
    for e in events:
        at = e.at or e.received_at
        key = (e.source, e.call_key)
        if key not in first or at < first[key]:
            first[key] = at
    return {month_of(at) for at in first.values()}


def months_ahead(now: datetime, ahead: int = AHEAD_MONTHS) -> list[date]:
    """This month and the ``ahead`` next."""
    this = month_of(now)
    return [add_months(this, n) for n in range(ahead + 1)]


class Partitions:
    """Which months' partitions this process knows exist; makes the others on demand.

    Knowing spares a round trip per batch: partitions are only ever added (an administrator
    detaching an old month is a case the writers survive: see :meth:`forget`).
    """

    def __init__(self) -> None:
        self._known: set[date] = set()
        self._making = asyncio.Lock()  # one maker per process at a time (the others wait)

    async def ensure(self, conn: asyncpg.Connection | asyncpg.Pool, months: Iterable[date]) -> int:
        """Make the partitions of ``months`` that do not exist; returns how many were made."""
        if not set(months) - self._known:
            return 0
        async with self._making:
            missing = sorted(set(months) - self._known)
            if not missing:
                return 0
            made = await ensure_month_partitions(conn, missing)
            self._known.update(missing)
        if made:
            log.info("partitions made for %s", ", ".join(m.strftime("%Y-%m") for m in missing))
        return made

    def forget(self) -> None:
        self._known.clear()


def no_partition(exc: BaseException) -> bool:
    """Whether a write failed for want of its month's partition."""
    return isinstance(exc, asyncpg.CheckViolationError) and "no partition" in str(exc)


async def make_ahead(pool: asyncpg.Pool, now: datetime | None = None) -> int:
    """The scheduled job: this month's partitions and those of the months ahead, so that
    writers never have to make one (it locks the table while it is made)."""
    months = months_ahead(now or datetime.now(UTC))
    async with pool.acquire() as conn:
        made = await ensure_month_partitions(conn, months)
    if made:
        log.info("partitions made ahead, up to %s", months[-1].strftime("%Y-%m"))
    return made

"""SQL of the monthly partitions of ``events`` and ``calls`` (:mod:`service.calls.partitions`).
Every function takes a connection (or the pool); none opens one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import asyncpg

_ENSURE = "SELECT ensure_month_partitions($1::date[])"

_EXISTING = """
SELECT to_date(substr(c.relname, 8), 'YYYY_MM') AS month FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass
ORDER BY 1
"""


async def ensure_month_partitions(
    conn: asyncpg.Connection | asyncpg.Pool, months: Iterable[date]
) -> int:
    """Make the partitions of ``months`` that do not exist (the migrations' function, which
    locks the tables while it makes one); returns how many were made."""
    return int(await conn.fetchval(_ENSURE, list(months)))


async def existing_months(conn: asyncpg.Connection | asyncpg.Pool) -> Sequence[date]:
    """The months whose partitions exist, oldest first (for docs and checks)."""
    return [r["month"] for r in await conn.fetch(_EXISTING)]

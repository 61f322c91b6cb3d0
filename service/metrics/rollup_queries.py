"""SQL of the daily rollup (``rollup.py``): its state, its dirty marks, its day and month
rows, which of them a report may read, and the sizes of a full rebuild (the CLI's progress
bars). Every function takes a connection; none opens one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import asyncpg

from service.metrics.classified_queries import CLASSIFIED, HISTOGRAM, calendar_params, prepare
from service.municipality.model import Municipality

_ROLLUP_TABLES = ("call_rollup", "rollup_days", "call_rollup_month", "rollup_months")

_ROLLUP_INSERT = (
    "INSERT INTO call_rollup (day, service, in_hours, answered, wait_s, n) "
    + CLASSIFIED
    + HISTOGRAM
)

# Days never built, newest first (recent reports are the most read), between the first and
# the last call.
_MISSING_DAYS = """
WITH span AS (SELECT (min(started_at) AT TIME ZONE $1)::date AS a,
                     (max(started_at) AT TIME ZONE $1)::date AS b FROM calls)
SELECT g::date AS day FROM span, generate_series(span.a, span.b, '1 day') AS g
WHERE NOT EXISTS (SELECT 1 FROM rollup_days r WHERE r.day = g::date)
ORDER BY g DESC LIMIT $2
"""

# Of the given months, those whose every day is built.
_COMPLETE_MONTHS = """
SELECT m.month FROM unnest($1::date[]) AS m(month)
WHERE (SELECT count(*) FROM rollup_days d
       WHERE d.day >= m.month AND d.day < m.month + interval '1 month')
      = (m.month + interval '1 month')::date - m.month
"""

_SUM_MONTHS = """
INSERT INTO call_rollup_month (month, service, in_hours, answered, wait_s, n)
SELECT m.month, r.service, r.in_hours, r.answered, r.wait_s, sum(r.n)
FROM unnest($1::date[]) AS m(month)
JOIN call_rollup r ON r.day >= m.month AND r.day < (m.month + interval '1 month')::date
GROUP BY 1, 2, 3, 4, 5
"""

# Days of a period whose rollup is usable: built under this configuration, and no call of
# theirs changed since (a changed call marks its UTC day, which touches the local days on
# either side of it).
_CLEAN_DAYS = """
SELECT r.day FROM rollup_days r
WHERE r.day BETWEEN $1 AND $2
  AND EXISTS (SELECT 1 FROM rollup_state WHERE fingerprint = $3)
  AND NOT EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.utc_day BETWEEN r.day - 1 AND r.day + 1)
"""


# --- the refresher's side -------------------------------------------------------------------


async def stored_fingerprint(conn: asyncpg.Connection) -> str | None:
    """The fingerprint the rollup was built under; None before the first build."""
    fp: str | None = await conn.fetchval("SELECT fingerprint FROM rollup_state")
    return fp


async def reset(conn: asyncpg.Connection, fp: str) -> None:
    """Empty the rollup and its marks, and stamp it with the fingerprint ``fp``."""
    for table in _ROLLUP_TABLES:
        await conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
    await conn.execute("DELETE FROM rollup_dirty")
    await conn.execute(
        "INSERT INTO rollup_state (fingerprint) VALUES ($1) ON CONFLICT (id) "
        "DO UPDATE SET fingerprint = EXCLUDED.fingerprint, built_at = now()",
        fp,
    )


async def forget_fingerprint(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Drop the rollup's stamp, so that its next refresh rebuilds it all."""
    await conn.execute("DELETE FROM rollup_state")


async def dirty_marks(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The oldest marks of changed calls (``id``, ``utc_day``), at most 10,000."""
    return list(await conn.fetch("SELECT id, utc_day FROM rollup_dirty ORDER BY id LIMIT 10000"))


async def delete_marks(conn: asyncpg.Connection, ids: list[int]) -> None:
    await conn.execute("DELETE FROM rollup_dirty WHERE id = ANY($1::bigint[])", ids)


async def missing_days(conn: asyncpg.Connection, timezone: str, limit: int) -> list[date]:
    """Up to ``limit`` local days never built, newest first, between the first and the last
    call."""
    return [r["day"] for r in await conn.fetch(_MISSING_DAYS, timezone, limit)]


async def build_rollup_days(
    conn: asyncpg.Connection, m: Municipality, days: Sequence[date]
) -> None:
    """Write the rollup rows of ``days`` (whose old rows the caller has deleted)."""
    await prepare(conn)
    await conn.execute(_ROLLUP_INSERT, *calendar_params(m, days).args())


async def rebuild_days(conn: asyncpg.Connection, m: Municipality, days: list[date]) -> None:
    """Replace the rows of ``days`` with ones built from the calls, and record them built."""
    await conn.execute("DELETE FROM call_rollup WHERE day = ANY($1::date[])", days)
    await build_rollup_days(conn, m, days)
    await conn.execute(
        "INSERT INTO rollup_days (day) SELECT unnest($1::date[]) ON CONFLICT DO NOTHING",
        days,
    )


async def rebuild_months(conn: asyncpg.Connection, months: list[date]) -> None:
    """Re-sum the given months from their day rows, for those whose every day is built."""
    await conn.execute("DELETE FROM call_rollup_month WHERE month = ANY($1::date[])", months)
    await conn.execute("DELETE FROM rollup_months WHERE month = ANY($1::date[])", months)
    complete = [r["month"] for r in await conn.fetch(_COMPLETE_MONTHS, months)]
    if not complete:
        return
    await conn.execute(_SUM_MONTHS, complete)
    await conn.execute("INSERT INTO rollup_months (month) SELECT unnest($1::date[])", complete)


# --- the reports' side ----------------------------------------------------------------------


async def clean_days(
    conn: asyncpg.Connection, first: date, last: date, fingerprint: str
) -> set[date]:
    """The days of ``first``..``last`` whose rollup rows a report may read."""
    return {r["day"] for r in await conn.fetch(_CLEAN_DAYS, first, last, fingerprint)}


async def whole_months(conn: asyncpg.Connection, days: list[date], rolled: set[date]) -> list[date]:
    """The months lying wholly in ``days`` whose days are all clean and whose sum is built."""
    by_month: dict[date, list[date]] = {}
    for d in days:
        by_month.setdefault(d.replace(day=1), []).append(d)
    candidates = [
        mo
        for mo, ds in by_month.items()
        if len(ds) == _month_length(mo) and all(d in rolled for d in ds)
    ]
    if not candidates:
        return []
    rows = await conn.fetch(
        "SELECT month FROM rollup_months WHERE month = ANY($1::date[]) ORDER BY month", candidates
    )
    return [r["month"] for r in rows]


def _month_length(first_day: date) -> int:
    nxt = (first_day + timedelta(days=32)).replace(day=1)
    return (nxt - first_day).days


# --- the sizes of a full rebuild, for progress bars ----------------------------------------


async def span_days(conn: asyncpg.Connection | asyncpg.Pool, timezone: str) -> int:
    """Local days from the first call to the last: the most a full build rebuilds."""
    span = await conn.fetchval(
        "SELECT (max(started_at) AT TIME ZONE $1)::date - (min(started_at) AT TIME ZONE $1)::date"
        " + 1 FROM calls",
        timezone,
    )
    return int(span or 0)


async def stored_events(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The number of stored events: what ``decroche refold --reparse`` reads again."""
    return int(await conn.fetchval("SELECT count(*) FROM events"))

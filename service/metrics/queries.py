"""SQL of the Engagement 8 figures, computed from the stored calls with the *current*
configuration (the classified calls, ``classified_queries.py``).

Figures per service, day or week read the rollup (``service/metrics/rollup.py``) for the
days it holds clean under this configuration — whole months summed, when figures are per
service — and classify the calls of the other days on the fly; both give the same
histogram rows, from which counts, mean, maximum and the exact 90th percentile are
computed. Breakdowns per hour, line or agent, the affluence map and the digest's
half-hours classify every call of the period.
"""

from __future__ import annotations

from datetime import date

import asyncpg

from service.metrics.classified_queries import (
    CLASSIFIED,
    HISTOGRAM,
    UNKNOWN,
    calendar_params,
    period_days,
    prepare,
    where_service,
)
from service.metrics.rollup_queries import clean_days, whole_months
from service.municipality.model import Municipality

__all__ = [
    "BREAKDOWNS",
    "CALL_KEYS",
    "ROLLUP_KEYS",
    "UNKNOWN",
    "affluence_rows",
    "figure_rows",
    "half_hour_rows",
]

# Breakdowns the daily rollup can serve: their key is a function of (service, local day).
# Each: (the group, as cheap to hash as can be; its label, from ``counts.key``).
ROLLUP_KEYS = {
    "service": ("service", "counts.key"),
    "day": ("day", "to_char(counts.key, 'YYYY-MM-DD')"),
    "week": ("date_trunc('week', day)::date", "to_char(counts.key, 'IYYY-\"W\"IW')"),
}
# Breakdowns that need every call.
CALL_KEYS = {
    "hour": "to_char(local_ts, 'HH24')",
    "line": "coalesce(line, '')",
    "agent": "coalesce(agent, '')",
}
BREAKDOWNS = (*ROLLUP_KEYS, *CALL_KEYS)


# Figures per key from histogram rows (rollup days, plus the other days classified now).
# The 90th percentile is percentile_cont's: with N waits in order, the value at position
# p = 0.9 (N - 1) interpolated between its neighbours floor(p) and ceil(p).
_FIGURES_FROM_HISTOGRAM = """
, u AS (
    SELECT month AS day, service, in_hours, answered, wait_s, n FROM call_rollup_month
    WHERE month = ANY($16::date[])
    UNION ALL
    SELECT day, service, in_hours, answered, wait_s, n FROM call_rollup
    WHERE day = ANY($15::date[])
    UNION ALL
    SELECT * FROM ({histogram}) AS raw
),
hist AS (
    SELECT {key} AS key, u.service, in_hours, answered, wait_s, sum(n)::bigint AS n
    FROM u {where}
    GROUP BY 1, 2, 3, 4, 5
),
v AS (
    SELECT key, in_hours, answered, wait_s, n,
           (in_hours AND NOT answered AND wait_s < pol.short_s) AS short_ab,
           (in_hours AND answered AND wait_s <= pol.within_s) AS within
    FROM hist LEFT JOIN pol ON pol.slug = hist.service
),
g AS (
    SELECT key, GROUPING(key) = 1 AS is_total, in_hours, answered, short_ab, within, wait_s,
           sum(n) AS n
    FROM v
    GROUP BY GROUPING SETS ((key, in_hours, answered, short_ab, within, wait_s),
                            (in_hours, answered, short_ab, within, wait_s))
),
counts AS (
    SELECT key, is_total,
           sum(n)::bigint AS received,
           coalesce(sum(n) FILTER (WHERE NOT in_hours), 0)::bigint AS out_of_hours,
           coalesce(sum(n) FILTER (WHERE short_ab), 0)::bigint AS short_abandoned,
           coalesce(sum(n) FILTER (WHERE in_hours AND answered), 0)::bigint AS answered,
           coalesce(sum(n) FILTER (WHERE within), 0)::bigint AS answered_within,
           sum(wait_s * n) FILTER (WHERE in_hours AND answered)
               / sum(n) FILTER (WHERE in_hours AND answered) AS asa_s,
           max(wait_s) FILTER (WHERE in_hours AND NOT short_ab) AS max_wait_s
    FROM g
    GROUP BY key, is_total
),
cum AS (
    SELECT key, is_total, wait_s,
           sum(n) OVER (PARTITION BY key, is_total ORDER BY wait_s) AS upto,
           0.9 * (sum(n) OVER (PARTITION BY key, is_total) - 1) AS pos
    FROM (SELECT key, is_total, wait_s, sum(n) AS n FROM g
          WHERE in_hours AND answered GROUP BY key, is_total, wait_s) AS w
),
p90 AS (
    SELECT key, is_total,
           min(wait_s) FILTER (WHERE upto > floor(pos)) AS lo_v,
           min(wait_s) FILTER (WHERE upto > ceil(pos)) AS hi_v,
           (min(pos) - floor(min(pos)))::float8 AS frac
    FROM cum
    GROUP BY key, is_total
)
SELECT {label} AS key, counts.is_total, received, out_of_hours, short_abandoned, answered,
       answered_within, asa_s, max_wait_s,
       p90.lo_v + p90.frac * (p90.hi_v - p90.lo_v) AS wait_p90_s
FROM counts
LEFT JOIN p90 ON p90.key IS NOT DISTINCT FROM counts.key AND p90.is_total = counts.is_total
"""

_FIGURES_FROM_CALLS = """
SELECT {key} AS key,
       GROUPING({key}) = 1 AS is_total,
       count(*) AS received,
       count(*) FILTER (WHERE NOT in_hours) AS out_of_hours,
       count(*) FILTER (WHERE short_ab) AS short_abandoned,
       count(*) FILTER (WHERE ans) AS answered,
       count(*) FILTER (WHERE within) AS answered_within,
       avg(wait_s) FILTER (WHERE ans) AS asa_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_s) FILTER (WHERE ans) AS wait_p90_s,
       max(wait_s) FILTER (WHERE in_hours AND NOT short_ab) AS max_wait_s
FROM f
{where}
GROUP BY GROUPING SETS (({key}), ())
"""

_AFFLUENCE = """
SELECT extract(isodow FROM local_ts)::int AS weekday,
       (extract(hour FROM local_ts)::int * 2 + (extract(minute FROM local_ts) >= 30)::int)
           AS slot,
       count(*) AS received,
       count(*) FILTER (WHERE in_hours AND NOT short_ab AND NOT ans) AS lost
FROM f
{where}
GROUP BY 1, 2
ORDER BY 1, 2
"""

# In-hours calls per service, local day and half-hour: what the digest's « worst half-hours »
# rank. Offered and lost as in the figures (short abandons are not offered).
_HALF_HOURS = """
SELECT svc AS service, local_ts::date AS day,
       (extract(hour FROM local_ts)::int * 2 + (extract(minute FROM local_ts) >= 30)::int)
           AS slot,
       count(*) FILTER (WHERE in_hours AND NOT short_ab) AS offered,
       count(*) FILTER (WHERE ans) AS answered
FROM f
WHERE svc IS NOT NULL
GROUP BY 1, 2, 3
HAVING count(*) FILTER (WHERE in_hours AND NOT short_ab AND NOT ans) > 0
"""
# (in_hours is filtered inside the aggregates, not in WHERE: there the planner would turn
# the join to the opening intervals into an inner join on the day alone, 25 times the rows.)


async def figure_rows(
    pool: asyncpg.Pool | asyncpg.Connection,
    m: Municipality,
    first: date,
    last: date,
    fingerprint: str | None,
    by: str = "service",
    service: str | None = None,
) -> list[asyncpg.Record]:
    """Counts per group (``key``; ``UNKNOWN`` for unclaimed lines when grouping by service)
    plus the grand total (``is_total``), for calls of the local days ``first``..``last``.

    ``fingerprint`` is the configuration's (rollup.py); None reads no rollup.
    """
    if isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as conn:
            return await figure_rows(conn, m, first, last, fingerprint, by, service)
    conn = pool
    days = period_days(first, last)
    # One snapshot for both statements: the rollup days read in the first and the calls
    # read in the second are consistent with each other.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await prepare(conn)
        if by in ROLLUP_KEYS:
            rolled: set[date] = set()
            if fingerprint is not None:
                rolled = await clean_days(conn, first, last, fingerprint)
            months: list[date] = []
            if by == "service":  # a month's rows have lost their days: no use per day or week
                months = await whole_months(conn, days, rolled)
            in_months = {d for d in rolled if d.replace(day=1) in months}
            day_rows = sorted(rolled - in_months)
            raw = [d for d in days if d not in rolled]
            args = [*calendar_params(m, raw).args(), day_rows, months]
            where = where_service(args, "u.service", service)
            sql = CLASSIFIED + _FIGURES_FROM_HISTOGRAM.format(
                histogram=HISTOGRAM, key=ROLLUP_KEYS[by][0], label=ROLLUP_KEYS[by][1], where=where
            )
            return list(await conn.fetch(sql, *args))
        args = calendar_params(m, days).args()
        where = where_service(args, "svc", service)
        return list(
            await conn.fetch(
                CLASSIFIED + _FIGURES_FROM_CALLS.format(key=CALL_KEYS[by], where=where), *args
            )
        )


async def affluence_rows(
    pool: asyncpg.Pool | asyncpg.Connection,
    m: Municipality,
    first: date,
    last: date,
    service: str | None = None,
) -> list[asyncpg.Record]:
    """Received and lost calls by ISO weekday and half-hour slot (0 = 00:00) of local time."""
    if isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as conn:
            return await affluence_rows(conn, m, first, last, service)
    args = calendar_params(m, period_days(first, last)).args()
    where = where_service(args, "svc", service)
    async with pool.transaction(readonly=True):
        conn = pool
        await prepare(conn)
        return list(await conn.fetch(CLASSIFIED + _AFFLUENCE.format(where=where), *args))


async def half_hour_rows(
    pool: asyncpg.Pool | asyncpg.Connection, m: Municipality, first: date, last: date
) -> list[asyncpg.Record]:
    """Offered and answered in-hours calls per service, local day and half-hour slot
    (0 = 00:00), for the half-hours that lost at least one call."""
    if isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as conn:
            return await half_hour_rows(conn, m, first, last)
    args = calendar_params(m, period_days(first, last)).args()
    async with pool.transaction(readonly=True):
        await prepare(pool)
        return list(await pool.fetch(CLASSIFIED + _HALF_HOURS, *args))

"""SQL of the Engagement 8 figures, computed from the stored calls with the *current*
configuration: which service owns a call, whether it came in opening hours and which
thresholds apply are all decided inside the query, from parameters built here out of the
municipality. Nothing is frozen at ingestion, so a corrected calendar or threshold
recomputes history.

Opening hours come from the :class:`Calendar` as the period's intervals, turned into
instants in the configured zone (DST days have their 23 or 25 hours); a call is matched to
its service's interval of its local day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.calendar import Calendar
from service.municipality import Municipality

UNKNOWN = "~unknown"  # the group key of calls on lines no service claims (no slug has "~")

BREAKDOWNS = {
    "service": "svc",
    "day": "to_char(local_ts, 'YYYY-MM-DD')",
    "week": "to_char(local_ts, 'IYYY-\"W\"IW')",
    "hour": "to_char(local_ts, 'HH24')",
    "line": "coalesce(line, '')",
    "agent": "coalesce(agent, '')",
}


@dataclass(frozen=True)
class CalendarParams:
    """The configuration, flattened into arrays the query joins against."""

    lines: tuple[list[str], list[str]]
    queues: tuple[list[str], list[str]]
    policy: tuple[list[str], list[float], list[float]]
    open_intervals: tuple[list[str], list[date], list[datetime], list[datetime]]
    tz: str


def _instant(day: date, t: time, tz: ZoneInfo) -> datetime:
    if t == time.max:  # "24:00": the next local midnight
        return datetime.combine(day + timedelta(days=1), time(), tz)
    return datetime.combine(day, t, tz)


def calendar_params(m: Municipality, first: date, last: date) -> CalendarParams:
    """Flatten the mapping, the policy, and every opening interval of the period.

    The intervals come from :class:`Calendar` (holidays, closures, weekly hours), turned into
    instants in the configured zone: the calendar's rules live in one place, and matching a
    call is an equality join on (service, local day) plus a range check.
    """
    cal = Calendar(m)
    tz = m.tz
    lines = (
        [ln for s in m.services for ln in s.lines],
        [s.slug for s in m.services for _ in s.lines],
    )
    queues = (
        [q for s in m.services for q in s.queues],
        [s.slug for s in m.services for _ in s.queues],
    )
    policy = (
        [s.slug for s in m.services],
        [s.policy.answer_within_s for s in m.services],
        [s.policy.short_abandon_s for s in m.services],
    )
    slugs: list[str] = []
    days: list[date] = []
    los: list[datetime] = []
    his: list[datetime] = []
    day = first
    while day <= last:
        for s in m.services:
            for lo, hi in cal.intervals(s, day):
                slugs.append(s.slug)
                days.append(day)
                los.append(_instant(day, lo, tz))
                his.append(_instant(day, hi, tz))
        day += timedelta(days=1)
    return CalendarParams(lines, queues, policy, (slugs, days, los, his), m.timezone)


# The classified calls of a period: one row per finished inbound call, with its service,
# whether it was in hours, whether it was a short abandon and answered within the target.
# Calls still ringing (no disposition, not answered) are left out until they end.
_CLASSIFIED = """
WITH lm(line, slug) AS (SELECT * FROM unnest($3::text[], $4::text[])),
     qm(queue, slug) AS (SELECT * FROM unnest($5::text[], $6::text[])),
     pol(slug, within_s, short_s) AS (SELECT * FROM unnest($7::text[], $8::float8[],
                                                           $9::float8[])),
     open_iv(slug, day, lo, hi) AS (SELECT * FROM unnest($10::text[], $11::date[],
                                                         $12::timestamptz[], $13::timestamptz[])),
     c AS (
        SELECT coalesce(qm.slug, lm.slug) AS svc, calls.line, calls.agent, calls.answered,
               calls.wait_s, calls.started_at, (calls.started_at AT TIME ZONE $14) AS local_ts
        FROM calls
        LEFT JOIN qm ON qm.queue = calls.queue
        LEFT JOIN lm ON lm.line = calls.line
        WHERE calls.direction = 'inbound'
          AND calls.started_at >= $1 AND calls.started_at < $2
          AND (calls.answered OR calls.disposition IS NOT NULL)
     ),
     h AS (
        SELECT c.*, pol.within_s, pol.short_s, (o.slug IS NOT NULL) AS in_hours
        FROM c
        LEFT JOIN pol ON pol.slug = c.svc
        LEFT JOIN open_iv o ON o.slug = c.svc AND o.day = c.local_ts::date
                           AND c.started_at >= o.lo AND c.started_at < o.hi
     ),
     f AS (
        SELECT h.*,
               (in_hours AND NOT answered AND wait_s < short_s) AS short_ab,
               (in_hours AND answered) AS ans,
               (in_hours AND answered AND wait_s <= within_s) AS within
        FROM h
     )
"""

_FIGURES = """
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


async def _fetch(
    conn: asyncpg.Connection | asyncpg.Pool, sql: str, args: list[Any]
) -> list[asyncpg.Record]:
    """Run a classification query with the planner steered away from a merge join.

    Left to itself the planner joins calls to their opening intervals with a merge join on
    (service, local day), which sorts every call of the period first; the hash join on the
    same keys is faster (bench/report.py, a week of 96,000 calls: 489 → 264 ms, measured
    with EXPLAIN ANALYZE). SET LOCAL confines the setting to this transaction.
    """
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            return await _fetch(c, sql, args)
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_mergejoin = off")
        return list(await conn.fetch(sql, *args))


def _args(start: datetime, end: datetime, p: CalendarParams) -> list[Any]:
    return [start, end, *p.lines, *p.queues, *p.policy, *p.open_intervals, p.tz]


async def figure_rows(
    conn: asyncpg.Connection | asyncpg.Pool,
    start: datetime,
    end: datetime,
    params: CalendarParams,
    by: str = "service",
    service: str | None = None,
) -> list[asyncpg.Record]:
    """Counts per group (``key``; ``UNKNOWN`` for unclaimed lines when grouping by service)
    plus the grand total (``is_total``), for calls starting in [start, end)."""
    key = f"coalesce(svc, '{UNKNOWN}')" if by == "service" else BREAKDOWNS[by]
    args = _args(start, end, params)
    where = ""
    if service is not None:
        args.append(service)
        where = f"WHERE svc = ${len(args)}"
    return await _fetch(conn, _CLASSIFIED + _FIGURES.format(key=key, where=where), args)


async def affluence_rows(
    conn: asyncpg.Connection | asyncpg.Pool,
    start: datetime,
    end: datetime,
    params: CalendarParams,
    service: str | None = None,
) -> list[asyncpg.Record]:
    args = _args(start, end, params)
    where = ""
    if service is not None:
        args.append(service)
        where = f"WHERE svc = ${len(args)}"
    return await _fetch(conn, _CLASSIFIED + _AFFLUENCE.format(where=where), args)

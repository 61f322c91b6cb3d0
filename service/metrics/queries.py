"""SQL of the Engagement 8 figures, computed from the stored calls with the *current*
configuration: which service owns a call, whether it came in opening hours and which
thresholds apply are all decided inside the query, from parameters built here out of the
municipality. Nothing is frozen at ingestion, so a corrected calendar or threshold
recomputes history.

Opening hours are matched on local wall-clock time (``started_at AT TIME ZONE tz``), which
keeps DST days right; holidays and closures of the period are passed as dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

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
    hours: tuple[list[str], list[int], list[time], list[time]]
    closed: tuple[list[str], list[date]]
    tz: str


def calendar_params(m: Municipality, first: date, last: date) -> CalendarParams:
    """Flatten mapping, policy, weekly hours and the period's closed days."""
    cal = Calendar(m)
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
    h_slug, h_dow, h_lo, h_hi = [], [], [], []
    for s in m.services:
        for weekday, intervals in s.hours.items():
            for lo, hi in intervals:
                h_slug.append(s.slug)
                h_dow.append(weekday + 1)  # ISO day of week, as PostgreSQL's isodow
                h_lo.append(lo)
                h_hi.append(hi)
    c_slug: list[str] = []
    c_day: list[date] = []
    day = first
    while day <= last:
        if cal.holiday(day) or day in m.closures:
            c_slug.append("*")
            c_day.append(day)
        for s in m.services:
            if day in s.closures:
                c_slug.append(s.slug)
                c_day.append(day)
        day += timedelta(days=1)
    return CalendarParams(
        lines, queues, policy, (h_slug, h_dow, h_lo, h_hi), (c_slug, c_day), m.timezone
    )


# The classified calls of a period: one row per finished inbound call, with its service,
# whether it was in hours, whether it was a short abandon and answered within the target.
# Calls still ringing (no disposition, not answered) are left out until they end.
_CLASSIFIED = """
WITH lm(line, slug) AS (SELECT * FROM unnest($3::text[], $4::text[])),
     qm(queue, slug) AS (SELECT * FROM unnest($5::text[], $6::text[])),
     pol(slug, within_s, short_s) AS (SELECT * FROM unnest($7::text[], $8::float8[],
                                                           $9::float8[])),
     hours(slug, dow, lo, hi) AS (SELECT * FROM unnest($10::text[], $11::int[], $12::time[],
                                                       $13::time[])),
     closed(slug, day) AS (SELECT * FROM unnest($14::text[], $15::date[])),
     c AS (
        SELECT coalesce(qm.slug, lm.slug) AS svc, calls.line, calls.agent, calls.answered,
               calls.wait_s, (calls.started_at AT TIME ZONE $16) AS local_ts
        FROM calls
        LEFT JOIN qm ON qm.queue = calls.queue
        LEFT JOIN lm ON lm.line = calls.line
        WHERE calls.direction = 'inbound'
          AND calls.started_at >= $1 AND calls.started_at < $2
          AND (calls.answered OR calls.disposition IS NOT NULL)
     ),
     h AS (
        SELECT c.*, pol.within_s, pol.short_s,
               (c.svc IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM closed
                                WHERE closed.day = c.local_ts::date
                                  AND closed.slug IN (c.svc, '*'))
                AND EXISTS (SELECT 1 FROM hours
                            WHERE hours.slug = c.svc
                              AND hours.dow = extract(isodow FROM c.local_ts)
                              AND c.local_ts::time >= hours.lo
                              AND c.local_ts::time < hours.hi)) AS in_hours
        FROM c LEFT JOIN pol ON pol.slug = c.svc
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


def _args(start: datetime, end: datetime, p: CalendarParams) -> list[Any]:
    return [start, end, *p.lines, *p.queues, *p.policy, *p.hours, *p.closed, p.tz]


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
    sql = _CLASSIFIED + _FIGURES.format(key=key, where=where)
    return list(await conn.fetch(sql, *args))


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
    return list(await conn.fetch(_CLASSIFIED + _AFFLUENCE.format(where=where), *args))

"""The classified calls: the SQL fragment every figure starts from, and the parameters it
takes, built here out of the municipality.

Which service owns a call, whether it came in opening hours and which thresholds apply are
all decided inside the query: nothing is frozen at ingestion, so a corrected calendar or
threshold recomputes history. Opening hours come from the :class:`Calendar` as each day's
intervals, turned into instants in the configured zone (DST days have their 23 or 25
hours); a call is matched to its service's interval of its local day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.municipality.calendar import Calendar, day_start
from service.municipality.model import Municipality

UNKNOWN = "~unknown"  # the group key of calls on lines no service claims (no slug has "~")


@dataclass(frozen=True)
class CalendarParams:
    """The configuration, flattened into arrays the query joins against."""

    ranges: tuple[list[datetime], list[datetime]]  # the instants whose calls are read
    lines: tuple[list[str], list[str]]
    queues: tuple[list[str], list[str]]
    policy: tuple[list[str], list[float], list[float]]
    open_intervals: tuple[list[str], list[date], list[datetime], list[datetime]]
    tz: str

    def args(self) -> list[Any]:
        """Parameters $1..$14 of :data:`CLASSIFIED`."""
        return [
            *self.ranges,
            *self.lines,
            *self.queues,
            *self.policy,
            *self.open_intervals,
            self.tz,
        ]


def _instant(day: date, t: time, tz: ZoneInfo) -> datetime:
    if t == time.max:  # "24:00": the next local midnight
        return datetime.combine(day + timedelta(days=1), time(), tz)
    return datetime.combine(day, t, tz)


def day_ranges(days: Iterable[date], tz: ZoneInfo) -> tuple[list[datetime], list[datetime]]:
    """The instants of local ``days``, consecutive days merged: ([starts], [ends])."""
    los: list[datetime] = []
    his: list[datetime] = []
    prev: date | None = None
    for day in sorted(set(days)):
        if prev is not None and day == prev + timedelta(days=1):
            his[-1] = day_start(day + timedelta(days=1), tz)
        else:
            los.append(day_start(day, tz))
            his.append(day_start(day + timedelta(days=1), tz))
        prev = day
    return los, his


def period_days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def calendar_params(m: Municipality, days: Sequence[date]) -> CalendarParams:
    """Flatten the mapping, the policy, and every opening interval of ``days``.

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
    ivdays: list[date] = []
    los: list[datetime] = []
    his: list[datetime] = []
    for day in days:
        for s in m.services:
            for lo, hi in cal.intervals(s, day):
                slugs.append(s.slug)
                ivdays.append(day)
                los.append(_instant(day, lo, tz))
                his.append(_instant(day, hi, tz))
    return CalendarParams(
        day_ranges(days, tz), lines, queues, policy, (slugs, ivdays, los, his), m.timezone
    )


# The classified calls of some ranges of instants: one row per finished inbound call, with
# its service (``svc``, NULL when unclaimed) and whether it came in hours (``h``); then the
# policy's verdicts (``f``). Calls still ringing (no disposition, not answered) are left out
# until they end.
CLASSIFIED = """
WITH rng(lo, hi) AS (SELECT * FROM unnest($1::timestamptz[], $2::timestamptz[])),
     lm(line, slug) AS (SELECT * FROM unnest($3::text[], $4::text[])),
     qm(queue, slug) AS (SELECT * FROM unnest($5::text[], $6::text[])),
     pol(slug, within_s, short_s) AS (SELECT * FROM unnest($7::text[], $8::float8[],
                                                           $9::float8[])),
     open_iv(slug, day, lo, hi) AS (SELECT * FROM unnest($10::text[], $11::date[],
                                                         $12::timestamptz[], $13::timestamptz[])),
     c AS (
        SELECT coalesce(qm.slug, lm.slug) AS svc, calls.line, calls.agent, calls.answered,
               calls.wait_s, calls.started_at, (calls.started_at AT TIME ZONE $14) AS local_ts
        FROM rng
        JOIN calls ON calls.started_at >= rng.lo AND calls.started_at < rng.hi
        LEFT JOIN qm ON qm.queue = calls.queue
        LEFT JOIN lm ON lm.line = calls.line
        WHERE calls.direction = 'inbound'
          AND (calls.answered OR calls.disposition IS NOT NULL)
          -- The ranges' hull, as index conditions the planner knows (immutable functions
          -- of the parameters, computed at planning): joined to the unnested ranges alone,
          -- it cannot bound the scan and reads every month's every row (2 s at 10 M calls).
          AND calls.started_at >= ranges_start($1::timestamptz[])
          AND calls.started_at < ranges_end($2::timestamptz[])
          AND calls.month >= first_month_of(ranges_start($1::timestamptz[]))
     ),
     h AS (
        SELECT c.*, (o.slug IS NOT NULL) AS in_hours
        FROM c
        LEFT JOIN open_iv o ON o.slug = c.svc AND o.day = c.local_ts::date
                           AND c.started_at >= o.lo AND c.started_at < o.hi
     ),
     f AS (
        SELECT h.*,
               (in_hours AND NOT answered AND wait_s < short_s) AS short_ab,
               (in_hours AND answered) AS ans,
               (in_hours AND answered AND wait_s <= within_s) AS within
        FROM h LEFT JOIN pol ON pol.slug = h.svc
     )
"""

# One histogram row per (day, service, in hours, answered, wait): what the rollup stores.
# The wait is dropped out of hours, where no figure reads it. ('~unknown' is UNKNOWN.)
HISTOGRAM = """
SELECT local_ts::date AS day, coalesce(svc, '~unknown') AS service, in_hours, answered,
       CASE WHEN in_hours THEN wait_s END AS wait_s, count(*)::int AS n
FROM h
GROUP BY 1, 2, 3, 4, 5
"""


async def prepare(conn: asyncpg.Connection) -> None:
    """Set this transaction's planner settings for the classified calls."""
    # Left to itself the planner joins calls to their opening intervals with a merge join
    # on (service, local day), which sorts every call of the period first; the hash join on
    # the same keys is faster (bench/report.py, a week of 96,000 calls: 489 → 264 ms,
    # measured with EXPLAIN ANALYZE). SET LOCAL confines the setting to this transaction.
    await conn.execute("SET LOCAL enable_mergejoin = off")
    # Histograms are aggregated by hashing; with the default 4 MB a year of them spills to
    # disk and the planner sorts instead (bench/report.py, one year: 1.4 s → 0.45 s).
    await conn.execute("SET LOCAL work_mem = '64MB'")


def where_service(args: list[Any], column: str, service: str | None) -> str:
    """A WHERE clause keeping ``service``'s rows of ``column`` (nothing when None), its
    value appended to ``args``."""
    if service is None:
        return ""
    args.append(service)
    return f"WHERE {column} = ${len(args)}"

"""SQL of the Engagement 8 figures, computed from the stored calls with the *current*
configuration: which service owns a call, whether it came in opening hours and which
thresholds apply are all decided inside the query, from parameters built here out of the
municipality. Nothing is frozen at ingestion, so a corrected calendar or threshold
recomputes history.

Opening hours come from the :class:`Calendar` as each day's intervals, turned into instants
in the configured zone (DST days have their 23 or 25 hours); a call is matched to its
service's interval of its local day.

Figures per service, day or week read the rollup (``service/metrics/rollup.py``) for the
days it holds clean under this configuration — whole months summed, when figures are per
service — and classify the calls of the other days on the fly; both give the same
histogram rows, from which counts, mean, maximum and the exact 90th percentile are
computed. Breakdowns per hour, line or agent and the affluence
map classify every call of the period.
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
        """Parameters $1..$14 of :data:`_CLASSIFIED`."""
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
_CLASSIFIED = """
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
_HISTOGRAM = """
SELECT local_ts::date AS day, coalesce(svc, '~unknown') AS service, in_hours, answered,
       CASE WHEN in_hours THEN wait_s END AS wait_s, count(*)::int AS n
FROM h
GROUP BY 1, 2, 3, 4, 5
"""

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

# Days of a period whose rollup is usable: built under this configuration, and no call of
# theirs changed since (a changed call marks its UTC day, which touches the local days on
# either side of it).
_ROLLED_DAYS = """
SELECT r.day FROM rollup_days r
WHERE r.day BETWEEN $1 AND $2
  AND EXISTS (SELECT 1 FROM rollup_state WHERE fingerprint = $3)
  AND NOT EXISTS (SELECT 1 FROM rollup_dirty d WHERE d.utc_day BETWEEN r.day - 1 AND r.day + 1)
"""


async def _whole_months(
    conn: asyncpg.Connection, days: list[date], rolled: set[date]
) -> list[date]:
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


async def _prepare(conn: asyncpg.Connection) -> None:
    # Left to itself the planner joins calls to their opening intervals with a merge join
    # on (service, local day), which sorts every call of the period first; the hash join on
    # the same keys is faster (bench/report.py, a week of 96,000 calls: 489 → 264 ms,
    # measured with EXPLAIN ANALYZE). SET LOCAL confines the setting to this transaction.
    await conn.execute("SET LOCAL enable_mergejoin = off")
    # Histograms are aggregated by hashing; with the default 4 MB a year of them spills to
    # disk and the planner sorts instead (bench/report.py, one year: 1.4 s → 0.45 s).
    await conn.execute("SET LOCAL work_mem = '64MB'")


_ROLLUP_INSERT = (
    "INSERT INTO call_rollup (day, service, in_hours, answered, wait_s, n) "
    + _CLASSIFIED
    + _HISTOGRAM
)


async def build_rollup_days(
    conn: asyncpg.Connection, m: Municipality, days: Sequence[date]
) -> None:
    """Write the rollup rows of ``days`` (whose old rows the caller has deleted)."""
    await _prepare(conn)
    await conn.execute(_ROLLUP_INSERT, *calendar_params(m, days).args())


def _where(args: list[Any], column: str, service: str | None) -> str:
    if service is None:
        return ""
    args.append(service)
    return f"WHERE {column} = ${len(args)}"


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
        await _prepare(conn)
        if by in ROLLUP_KEYS:
            rolled: set[date] = set()
            if fingerprint is not None:
                rows = await conn.fetch(_ROLLED_DAYS, first, last, fingerprint)
                rolled = {r["day"] for r in rows}
            months: list[date] = []
            if by == "service":  # a month's rows have lost their days: no use per day or week
                months = await _whole_months(conn, days, rolled)
            in_months = {d for d in rolled if d.replace(day=1) in months}
            day_rows = sorted(rolled - in_months)
            raw = [d for d in days if d not in rolled]
            args = [*calendar_params(m, raw).args(), day_rows, months]
            where = _where(args, "u.service", service)
            sql = _CLASSIFIED + _FIGURES_FROM_HISTOGRAM.format(
                histogram=_HISTOGRAM, key=ROLLUP_KEYS[by][0], label=ROLLUP_KEYS[by][1], where=where
            )
            return list(await conn.fetch(sql, *args))
        args = calendar_params(m, days).args()
        where = _where(args, "svc", service)
        return list(
            await conn.fetch(
                _CLASSIFIED + _FIGURES_FROM_CALLS.format(key=CALL_KEYS[by], where=where), *args
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
    where = _where(args, "svc", service)
    async with pool.transaction(readonly=True):
        conn = pool
        await _prepare(conn)
        return list(await conn.fetch(_CLASSIFIED + _AFFLUENCE.format(where=where), *args))


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
        await _prepare(pool)
        return list(await pool.fetch(_CLASSIFIED + _HALF_HOURS, *args))

"""Build a week's digest from the stored calls: the same figures as the API's for that week
(``engagement8`` itself is called), with the week before, the four-week trend, the
half-hours that lost most, the call-backs still open, and the mystery calls."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

import asyncpg

from service.callbacks.listing import open_callbacks
from service.digest.model import (
    Digest,
    HalfHour,
    MysteryWeek,
    ServiceWeek,
    TrendPoint,
)
from service.digest.weeks import IsoWeek
from service.metrics.definitions import Counts, figures
from service.metrics.queries import half_hour_rows
from service.metrics.report import engagement8
from service.municipality.calendar import Calendar
from service.municipality.model import Municipality, Policy

TREND_WEEKS = 4
WORST_PER_SERVICE = 3
ZERO = figures(Counts(), Policy())  # a group with no call: zeros and nulls

# Where the mystery-call section comes from: the campaigns package, wired in by the
# composition root (the core never imports it).
MysterySource = Callable[
    [asyncpg.Pool, Municipality, date, date, datetime], Awaitable[list[MysteryWeek]]
]


def worst_half_hours(rows: Iterable[HalfHour], n: int = WORST_PER_SERVICE) -> list[HalfHour]:
    """The ``n`` half-hours that lost most calls; ties go to the lower answer rate, then to
    the earlier half-hour."""
    return sorted(rows, key=lambda h: (-h.lost, h.answer_rate or 0.0, h.day, h.slot))[:n]


def _pick(report: Mapping[str, Any], slug: str | None) -> Mapping[str, Any]:
    """A service's row of a report; zeros when it has none (the unknown line that week)."""
    for row in report["services"]:
        if row["service"] == slug:
            return row  # type: ignore[no-any-return]
    return ZERO


def _trend(weeks: list[IsoWeek], rows: list[Mapping[str, Any]]) -> list[TrendPoint]:
    """Oldest week first, from rows given in the order of ``weeks`` (newest first)."""
    return [
        TrendPoint(w, f["answer_rate"], f["service_level"], f["lost"])
        for w, f in zip(reversed(weeks), reversed(rows), strict=True)
    ]


async def build_digest(
    pool: asyncpg.Pool,
    m: Municipality,
    week: IsoWeek,
    *,
    now: datetime,
    mystery: MysterySource | None = None,
) -> Digest:
    """The digest of ``week`` as things stand at ``now`` (call-backs are those open now)."""
    weeks = [week.shift(-i) for i in range(TREND_WEEKS)]  # this week first
    reports = list(await asyncio.gather(*(engagement8(pool, m, w.monday, w.sunday) for w in weeks)))
    halves, callbacks = await asyncio.gather(
        half_hour_rows(pool, m, week.monday, week.sunday),
        open_callbacks(pool, Calendar(m), now),
    )
    by_service: dict[str, list[HalfHour]] = defaultdict(list)
    for h in halves:
        by_service[h["service"]].append(
            HalfHour(h["day"], h["slot"], int(h["offered"]), int(h["answered"]))
        )
    open_n = Counter(cb.service.slug for cb in callbacks)
    overdue_n = Counter(cb.service.slug for cb in callbacks if cb.overdue(now))

    services = []
    for row in reports[0]["services"]:
        slug = row["service"]
        rows = [_pick(r, slug) for r in reports]
        policy = row["policy"]
        services.append(
            ServiceWeek(
                slug=slug,
                name=row["name"],
                figures=dict(row),
                previous=dict(rows[1]),
                trend=_trend(weeks, rows),
                worst=worst_half_hours(by_service.get(slug, [])) if slug else (),
                callbacks_open=open_n[slug] if slug else 0,
                callbacks_overdue=overdue_n[slug] if slug else 0,
                targets=(policy["target_answer_rate"], policy["target_service_level"])
                if policy
                else None,
            )
        )
    totals = [r["total"] for r in reports]
    total = ServiceWeek(
        slug=None,
        name="Ensemble des services",
        figures=dict(totals[0]),
        previous=dict(totals[1]),
        trend=_trend(weeks, totals),
        worst=(),  # the half-hours are each service's: its own hours and staff
        callbacks_open=len(callbacks),
        callbacks_overdue=sum(overdue_n.values()),
        targets=(m.policy.target_answer_rate, m.policy.target_service_level),
    )
    found: list[MysteryWeek] = []
    if mystery is not None:
        found = await mystery(pool, m, week.monday, week.sunday, now)
    return Digest(
        week=week,
        municipality=m.name,
        timezone=m.timezone,
        services=services,
        total=total,
        policy=reports[0]["policy"],
        generated_at=now,
        mystery=found,
    )

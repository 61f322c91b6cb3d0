"""Build a week's digest from the stored calls: the same figures as the API's for that week
(``engagement8`` itself is called), with the week before, the four-week trend, the
half-hours that lost most, the call-backs still open, and the mystery calls."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

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
from service.metrics.model import Engagement8Report, Figures, ServiceRow
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


def _pick(report: Engagement8Report, slug: str | None) -> Figures:
    """A service's row of a report; zeros when it has none (the unknown line that week)."""
    for row in report["services"]:
        if row["service"] == slug:
            return row
    return ZERO


def _trend(weeks: list[IsoWeek], rows: list[Figures]) -> list[TrendPoint]:
    """Oldest week first, from rows given in the order of ``weeks`` (newest first)."""
    return [
        TrendPoint(w, f["answer_rate"], f["service_level"], f["lost"])
        for w, f in zip(reversed(weeks), reversed(rows), strict=True)
    ]


@dataclass(frozen=True)
class _Gathered:
    """What a week's digest is built from: the reports of the trend's weeks (this week
    first), the half-hours that lost calls per service, and the call-backs open now."""

    weeks: list[IsoWeek]
    reports: list[Engagement8Report]
    halves: Mapping[str, list[HalfHour]]
    open_n: Counter[str]
    overdue_n: Counter[str]

    def service(self, row: ServiceRow) -> ServiceWeek:
        """The week of the service of ``row`` (a row of this week's report)."""
        slug = row["service"]
        rows = [_pick(r, slug) for r in self.reports]
        policy = row["policy"]
        return ServiceWeek(
            slug=slug,
            name=row["name"],
            figures=row.copy(),
            previous=rows[1].copy(),
            trend=_trend(self.weeks, rows),
            worst=worst_half_hours(self.halves.get(slug, [])) if slug else (),
            callbacks_open=self.open_n[slug] if slug else 0,
            callbacks_overdue=self.overdue_n[slug] if slug else 0,
            targets=(policy["target_answer_rate"], policy["target_service_level"])
            if policy
            else None,
        )

    def total(self, m: Municipality) -> ServiceWeek:
        """The week of every service together."""
        totals = [r["total"] for r in self.reports]
        return ServiceWeek(
            slug=None,
            name="Ensemble des services",
            figures=totals[0].copy(),
            previous=totals[1].copy(),
            trend=_trend(self.weeks, totals),
            worst=(),  # the half-hours are each service's: its own hours and staff
            callbacks_open=self.open_n.total(),
            callbacks_overdue=sum(self.overdue_n.values()),
            targets=(m.policy.target_answer_rate, m.policy.target_service_level),
        )


async def _gather(pool: asyncpg.Pool, m: Municipality, week: IsoWeek, now: datetime) -> _Gathered:
    """Read the figures of the trend's weeks, the half-hours of ``week`` and the call-backs
    open at ``now``."""
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
    return _Gathered(
        weeks,
        reports,
        by_service,
        open_n=Counter(cb.service.slug for cb in callbacks),
        overdue_n=Counter(cb.service.slug for cb in callbacks if cb.overdue(now)),
    )


async def build_digest(
    pool: asyncpg.Pool,
    m: Municipality,
    week: IsoWeek,
    *,
    now: datetime,
    mystery: MysterySource | None = None,
) -> Digest:
    """The digest of ``week`` as things stand at ``now`` (call-backs are those open now)."""
    gathered = await _gather(pool, m, week, now)
    services = [gathered.service(row) for row in gathered.reports[0]["services"]]
    total = gathered.total(m)
    found: list[MysteryWeek] = []
    if mystery is not None:
        found = await mystery(pool, m, week.monday, week.sunday, now)
    return Digest(
        week=week,
        municipality=m.name,
        timezone=m.timezone,
        services=services,
        total=total,
        policy=gathered.reports[0]["policy"],
        generated_at=now,
        mystery=found,
    )

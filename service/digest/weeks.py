"""ISO weeks and when a week's digest falls due (pure).

A digest covers one ISO week, Monday to Sunday in local time, and is sent in the week after
it, on the configured weekday and time (``[digest] send_at``, default « mon 07:30 »).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# ASCII digits only: ``\d`` would take "２０２６" or "٢٠٢٦" too.
WEEK_RE = re.compile(r"([0-9]{4})-W([0-9]{2})")
# The years the service answers for (dates and weeks, in the API and the CLI): its calendar,
# the holidays library and PostgreSQL's timestamps all hold them, and one week either side
# never leaves what Python's dates can hold (9999-W52 and the next week would not).
FIRST_YEAR = 1970
LAST_YEAR = 2100
# A digest whose time passed while no instance ran still goes out when one comes back, for
# this long; later, it is news nobody needs (``decroche digest send`` sends it by hand).
CATCH_UP = timedelta(hours=24)


@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """``2026-W48`` (a year from ``FIRST_YEAR`` to ``LAST_YEAR``); ValueError says what
        is wrong."""
        m = WEEK_RE.fullmatch(text.strip())
        if not m:
            raise ValueError(f"{text[:30]!r} is not an ISO week like 2026-W48")
        year, week = int(m.group(1)), int(m.group(2))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(f"{text!r}: weeks of the years {FIRST_YEAR} to {LAST_YEAR} only")
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValueError(f"{text!r}: {year} has no week {week}") from None
        return cls(year, week)

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    def shift(self, weeks: int) -> IsoWeek:
        return IsoWeek.of(self.monday + timedelta(weeks=weeks))

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """``day`` at wall-clock ``at`` in ``tz`` (a time in a DST gap reads as before the
    change, i.e. an hour later on the clock once it has moved)."""
    return datetime.combine(day, at, tzinfo=tz)


def send_instant(week: IsoWeek, weekday: int, at: time, tz: ZoneInfo) -> datetime:
    """When the digest of ``week`` falls due: ``weekday`` (Monday = 0) of the next week."""
    return local_instant(week.shift(1).monday + timedelta(days=weekday), at, tz)


def due_week(now: datetime, weekday: int, at: time, tz: ZoneInfo) -> tuple[IsoWeek, datetime]:
    """The latest week whose digest fell due at or before ``now``, and when it did."""
    current = IsoWeek.of(now.astimezone(tz).date())
    week = current.shift(-1)
    due = send_instant(week, weekday, at, tz)
    if due > now:
        week = week.shift(-1)
        due = send_instant(week, weekday, at, tz)
    return week, due


def previous_week(now: datetime, tz: ZoneInfo) -> IsoWeek:
    """The last whole ISO week before ``now`` (the default of the CLI and the page)."""
    return IsoWeek.of(now.astimezone(tz).date()).shift(-1)

"""Opening hours, public holidays and closures: is this instant inside a service's hours?

An instant is in hours when, in the configured time zone, its local day is neither a
public holiday of the holiday zone nor a closure (global or of the service), and its local
time falls in one of that weekday's intervals (start included, end excluded). Working on
local wall-clock time keeps DST days right: 08:30 is 08:30 whether the day has 23 or 25 hours.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from service.municipality.model import Municipality, ServiceConfig

WHIT_MONDAY = "Lundi de Pentecôte"


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The instant a local day begins (its midnight, whatever DST does that day)."""
    return datetime.combine(day, time(), tz)


def days_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Instants bounding the local days ``first``..``last``, both included: [start, end)."""
    return day_start(first, tz), day_start(last + timedelta(days=1), tz)


@lru_cache(maxsize=64)
def public_holidays(zone: str, whit_monday_open: bool, year: int) -> dict[date, str]:
    """French public holidays of a year, with their French names.

    ``alsace-moselle`` adds Good Friday and 26 December (local law of Alsace-Moselle).
    Whit Monday is a public holiday but many towns open on it (« journée de solidarité »).
    """
    subdiv = "57" if zone == "alsace-moselle" else None
    days = holidays.country_holidays("FR", years=year, subdiv=subdiv, language="fr")
    out = {d: str(name) for d, name in days.items()}
    if whit_monday_open:
        out = {d: n for d, n in out.items() if n != WHIT_MONDAY}
    return out


class Calendar:
    """The municipality's calendar; answers ``in_hours`` for any service and instant."""

    def __init__(self, municipality: Municipality) -> None:
        self.m = municipality
        self.tz = municipality.tz

    def holiday(self, day: date) -> str | None:
        """The public holiday's name on a local day, or None."""
        return public_holidays(self.m.holiday_zone, self.m.whit_monday_open, day.year).get(day)

    def is_open_day(self, service: ServiceConfig, day: date) -> bool:
        """True when the service has hours that day and it is no holiday or closure."""
        return (
            day.weekday() in service.hours
            and day not in self.m.closures
            and day not in service.closures
            and self.holiday(day) is None
        )

    def intervals(self, service: ServiceConfig, day: date) -> tuple[tuple[time, time], ...]:
        """The opening intervals of a local day (empty when closed)."""
        if not self.is_open_day(service, day):
            return ()
        return service.hours[day.weekday()]

    def in_hours(self, service: ServiceConfig | None, instant: datetime) -> bool:
        """Whether ``instant`` (timezone-aware) falls inside the service's opening hours.

        Calls on unknown lines (``service`` None) have no hours: never in hours.
        """
        if service is None:
            return False
        if instant.tzinfo is None:
            raise ValueError("in_hours needs a timezone-aware instant")
        local = instant.astimezone(self.tz)
        t = local.time().replace(tzinfo=None)
        return any(start <= t < end for start, end in self.intervals(service, local.date()))

"""Opening hours, holidays, closures and DST: the ``in_hours`` of every call."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.municipality.calendar import Calendar
from service.municipality.model import Municipality, parse_municipality

PARIS = ZoneInfo("Europe/Paris")


def town(**top: object) -> Municipality:
    data = {
        "closures": ["2026-12-24"],
        "services": [
            {
                "slug": "accueil",
                "lines": ["+33100000001"],
                "closures": ["2026-11-20"],
                "hours": {
                    "mon": ["08:30-12:00", "13:30-17:30"],
                    "thu": ["10:00-19:00"],
                    "fri": ["08:30-12:00"],
                    "sat": ["09:00-12:00"],
                },
            },
            {"slug": "dimanche", "lines": ["+33100000003"], "hours": {"sun": ["08:30-12:00"]}},
            {
                "slug": "nuit",
                "lines": ["+33100000002"],
                "hours": {
                    d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
                },
            },
        ],
        **top,
    }
    return parse_municipality(data, "test.toml")


def at(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=PARIS)


@pytest.fixture
def cal() -> Calendar:
    return Calendar(town())


def test_interval_start_included_end_excluded(cal: Calendar) -> None:
    s = cal.m.service("accueil")
    assert cal.in_hours(s, at(2026, 11, 16, 8, 30))  # Monday, opening instant
    assert not cal.in_hours(s, at(2026, 11, 16, 8, 29, 59))
    assert cal.in_hours(s, at(2026, 11, 16, 11, 59, 59))
    assert not cal.in_hours(s, at(2026, 11, 16, 12, 0, 0))  # lunch starts
    assert not cal.in_hours(s, at(2026, 11, 16, 13, 29, 59))
    assert cal.in_hours(s, at(2026, 11, 16, 13, 30))
    assert not cal.in_hours(s, at(2026, 11, 17, 10, 0))  # Tuesday: no entry, closed


def test_late_day_and_saturday_morning(cal: Calendar) -> None:
    s = cal.m.service("accueil")
    assert cal.in_hours(s, at(2026, 11, 19, 18, 59))
    assert not cal.in_hours(s, at(2026, 11, 19, 9, 59))
    assert cal.in_hours(s, at(2026, 11, 21, 11, 0))
    assert not cal.in_hours(s, at(2026, 11, 21, 12, 0))


def test_instants_in_other_zones_are_converted(cal: Calendar) -> None:
    s = cal.m.service("accueil")
    # 07:30 UTC on a winter Monday is 08:30 in Paris.
    assert cal.in_hours(s, datetime(2026, 11, 16, 7, 30, tzinfo=UTC))
    assert not cal.in_hours(s, datetime(2026, 11, 16, 7, 29, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.in_hours(s, datetime(2026, 11, 16, 9, 0))


def test_national_holiday_closes_every_service(cal: Calendar) -> None:
    # 11 November 2026 is a Wednesday; 2026-05-25 Whit Monday; 2026-01-01 Thursday.
    assert cal.holiday(date(2026, 11, 11)) == "Armistice"
    assert not cal.in_hours(cal.m.service("nuit"), at(2026, 11, 11, 10, 0))
    assert not cal.in_hours(cal.m.service("accueil"), at(2026, 5, 25, 9, 0))
    assert not cal.in_hours(cal.m.service("accueil"), at(2026, 1, 1, 11, 0))


def test_whit_monday_can_be_open() -> None:
    cal = Calendar(town(whit_monday_open=True))
    assert cal.holiday(date(2026, 5, 25)) is None
    assert cal.in_hours(cal.m.service("accueil"), at(2026, 5, 25, 9, 0))


def test_alsace_moselle_adds_good_friday_and_st_stephen() -> None:
    metro = Calendar(town())
    am = Calendar(town(holiday_zone="alsace-moselle"))
    good_friday = at(2026, 4, 3, 9, 0)  # Friday
    assert metro.in_hours(metro.m.service("accueil"), good_friday)
    assert not am.in_hours(am.m.service("accueil"), good_friday)
    assert am.holiday(date(2026, 12, 26)) is not None
    assert metro.holiday(date(2026, 12, 26)) is None


def test_global_and_service_closures(cal: Calendar) -> None:
    assert not cal.in_hours(cal.m.service("nuit"), at(2026, 12, 24, 10, 0))
    assert not cal.in_hours(cal.m.service("accueil"), at(2026, 11, 20, 9, 0))  # its own
    assert cal.in_hours(cal.m.service("nuit"), at(2026, 11, 20, 9, 0))  # not the others'


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_dst_sundays_keep_local_hours(cal: Calendar, day: date) -> None:
    s = cal.m.service("nuit")
    start = datetime.combine(day, datetime.min.time(), PARIS)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), PARIS)
    hours = (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600
    assert hours == (23 if day.month == 3 else 25)
    # Every instant of the local day is in hours for an always-open service, and the day
    # boundary falls at local midnight, not at a UTC hour.
    t = start.astimezone(UTC)
    while t < end.astimezone(UTC):
        assert cal.in_hours(s, t)
        t += timedelta(minutes=30)
    assert cal.in_hours(s, end - timedelta(seconds=1))


def test_dst_shifts_the_utc_opening_instant(cal: Calendar) -> None:
    s = cal.m.service("dimanche")
    # Winter Sunday: 08:30 Paris is 07:30 UTC. The spring-forward Sunday: 06:30 UTC.
    assert cal.in_hours(s, datetime(2026, 3, 22, 7, 30, tzinfo=UTC))
    assert not cal.in_hours(s, datetime(2026, 3, 22, 7, 29, 59, tzinfo=UTC))
    assert cal.in_hours(s, datetime(2026, 3, 29, 6, 30, tzinfo=UTC))
    assert not cal.in_hours(s, datetime(2026, 3, 29, 6, 29, 59, tzinfo=UTC))
    assert not cal.in_hours(s, datetime(2026, 3, 29, 10, 0, tzinfo=UTC))  # 12:00 CEST
    # Fall-back Sunday: 08:30 Paris is 07:30 UTC again, and 12:00 is 11:00 UTC.
    assert cal.in_hours(s, datetime(2026, 10, 25, 7, 30, tzinfo=UTC))
    assert cal.in_hours(s, datetime(2026, 10, 25, 10, 59, 59, tzinfo=UTC))
    assert not cal.in_hours(s, datetime(2026, 10, 25, 11, 0, tzinfo=UTC))


def test_unknown_line_is_never_in_hours(cal: Calendar) -> None:
    assert not cal.in_hours(None, at(2026, 11, 16, 10, 0))

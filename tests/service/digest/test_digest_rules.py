"""The digest's pure rules: ISO weeks (week 53, year ends, parse errors), when a week falls
due (any weekday, summer time), French numbers and plurals, the worst half-hours' order,
the headline's grammar and the recipients' order."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.digest import formatting as fmt
from service.digest import story
from service.digest.build import ZERO, worst_half_hours
from service.digest.model import Digest, HalfHour, ServiceWeek
from service.digest.weeks import IsoWeek, due_week, previous_week, send_instant
from service.metrics.model import Figures, PolicyStatement

PARIS = ZoneInfo("Europe/Paris")
NOUMEA = ZoneInfo("Pacific/Noumea")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("2026-W54", "2026 has no week 54"),
        ("2025-W53", "2025 has no week 53"),
        ("2026-W00", "2026 has no week 0"),
        ("2026-w48", "is not an ISO week like 2026-W48"),
        ("2026-W4", "is not an ISO week like 2026-W48"),
        ("semaine 48", "is not an ISO week like 2026-W48"),
    ],
)
def test_bad_weeks_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        IsoWeek.parse(text)


def test_week_53_and_the_turn_of_the_year() -> None:
    w53 = IsoWeek.parse("2026-W53")
    assert (w53.monday, w53.sunday) == (date(2026, 12, 28), date(2027, 1, 3))
    assert str(w53.shift(1)) == "2027-W01"
    assert str(IsoWeek.parse("2027-W01").shift(-1)) == "2026-W53"
    assert str(IsoWeek.of(date(2027, 1, 3))) == "2026-W53"
    assert fmt.week_span(w53) == "du 28 décembre 2026 au 3 janvier 2027"
    assert fmt.week_span(IsoWeek(2026, 49)) == "du 30 novembre au 6 décembre 2026"
    assert fmt.week_span(IsoWeek(2026, 48)) == "du 23 au 29 novembre 2026"
    assert fmt.week_span(IsoWeek(2027, 9)) == "du 1er au 7 mars 2027"
    assert fmt.week_span(IsoWeek(2027, 13)) == "du 29 mars au 4 avril 2027"
    assert fmt.short_day(date(2026, 12, 1)) == "mar. 1er déc."
    assert fmt.long_day(date(2026, 12, 1)) == "mardi 1er décembre 2026"


@given(st.dates(min_value=date(2000, 1, 3), max_value=date(2099, 12, 28)))
def test_every_day_lies_in_its_week(day: date) -> None:
    week = IsoWeek.of(day)
    assert week.monday <= day <= week.sunday
    assert week.monday.weekday() == 0
    assert IsoWeek.parse(str(week)) == week
    assert week.shift(1).shift(-1) == week
    assert week.shift(1).monday == week.sunday + timedelta(days=1)


def test_due_on_the_configured_day_and_time_local() -> None:
    week = IsoWeek(2026, 48)  # 23–29 November
    monday = send_instant(week, 0, time(7, 30), PARIS)
    assert monday == datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # winter: UTC+1
    assert due_week(monday, 0, time(7, 30), PARIS) == (week, monday)
    before = monday - timedelta(seconds=1)
    assert due_week(before, 0, time(7, 30), PARIS)[0] == IsoWeek(2026, 47)
    # Due on Friday 17:00: all of the following week until then still points at week 47.
    friday = send_instant(week, 4, time(17, 0), PARIS)
    assert friday == datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    assert due_week(friday - timedelta(minutes=1), 4, time(17), PARIS)[0] == IsoWeek(2026, 47)
    assert due_week(friday, 4, time(17), PARIS)[0] == week
    # Nouméa's Monday starts ten hours before Paris's (no summer time there).
    assert send_instant(week, 0, time(7, 30), NOUMEA) == datetime(2026, 11, 29, 20, 30, tzinfo=UTC)


def test_summer_time_and_a_time_the_clock_skips() -> None:
    # Week 12 of 2026 ends on Sunday 22 March; the clocks go forward on Sunday 29 March.
    assert send_instant(IsoWeek(2026, 12), 0, time(7, 30), PARIS) == datetime(
        2026, 3, 23, 6, 30, tzinfo=UTC
    )
    assert send_instant(IsoWeek(2026, 13), 0, time(7, 30), PARIS) == datetime(
        2026, 3, 30, 5, 30, tzinfo=UTC
    )
    # Sunday 02:30 does not exist on 29 March: read as 03:30 summer time (01:30 UTC).
    # (compared in UTC: Python calls times in a gap unequal to any other zone's)
    skipped = send_instant(IsoWeek(2026, 12), 6, time(2, 30), PARIS)
    assert skipped.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_previous_week_is_local() -> None:
    # Monday 30 November 00:30 in Paris is still Sunday 23:30 UTC.
    assert previous_week(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), PARIS) == IsoWeek(2026, 48)
    assert previous_week(datetime(2026, 11, 29, 22, 30, tzinfo=UTC), PARIS) == IsoWeek(2026, 47)


def test_french_numbers() -> None:
    nbsp, nnbsp = "\u00a0", "\u202f"
    assert fmt.pct(0.853) == f"85,3{nbsp}%"
    assert fmt.pct(1.0) == f"100,0{nbsp}%"
    assert fmt.pct(None) == "—"
    assert fmt.count(1234567) == f"1{nnbsp}234{nnbsp}567"
    assert fmt.points(0.021) == f"+2,1{nbsp}pts"
    assert fmt.points(-0.004) == f"−0,4{nbsp}pt"  # a true minus, singular under 2
    assert fmt.points(0.00004) == "="
    assert fmt.points(None) == "—"
    assert fmt.seconds(18.4) == f"18{nbsp}s"
    assert fmt.seconds(65) == f"1{nbsp}min{nbsp}05{nbsp}s"
    assert fmt.half_hour(20) == f"10{nbsp}h{nbsp}00 – 10{nbsp}h{nbsp}30"
    assert fmt.half_hour(47) == f"23{nbsp}h{nbsp}30 – 24{nbsp}h{nbsp}00"
    assert fmt.long_day(date(2026, 11, 23)) == "lundi 23 novembre 2026"
    assert fmt.score(15.25, 20) == f"15,2{nbsp}/{nbsp}20"
    assert [fmt.many(n, "appel perdu", "appels perdus") for n in (0, 1, 2)] == [
        "0 appel perdu",
        "1 appel perdu",
        "2 appels perdus",
    ]


def test_worst_half_hours_most_lost_then_lowest_rate_then_earliest() -> None:
    d1, d2 = date(2026, 10, 19), date(2026, 10, 20)
    rows = [
        HalfHour(d2, 20, offered=4, answered=2),  # 2 lost, 50 %
        HalfHour(d1, 30, offered=2, answered=0),  # 2 lost, 0 %
        HalfHour(d1, 18, offered=3, answered=0),  # 3 lost
        HalfHour(d1, 19, offered=2, answered=1),  # 1 lost, 50 %
        HalfHour(d1, 21, offered=4, answered=2),  # 2 lost, 50 %, earlier day than d2
    ]
    got = worst_half_hours(rows)
    assert [(h.day, h.slot) for h in got] == [(d1, 18), (d1, 30), (d1, 21)]
    assert worst_half_hours(rows, n=10)[-1] == rows[3]
    assert worst_half_hours([]) == []


def service(slug: str | None, met: bool | None, rate: float | None = None) -> ServiceWeek:
    figures: Figures = {**ZERO, "met": met, "answer_rate": rate, "service_level": rate}
    return ServiceWeek(slug, slug or "Ligne inconnue", figures, ZERO.copy(), ())


def digest(*services: ServiceWeek) -> Digest:
    return Digest(
        week=IsoWeek(2026, 48),
        municipality="Ville",
        timezone="Europe/Paris",
        services=services,
        total=service(None, None),
        policy=cast(PolicyStatement, {}),
        generated_at=datetime(2026, 11, 30, tzinfo=UTC),
    )


def test_the_headline_counts_only_services_with_offered_calls() -> None:
    a, b, c = service("a", True, 0.9), service("b", False, 0.5), service("c", None)
    assert story.headline(digest(a, b, c, service(None, True))) == (
        "Engagement tenu par 1 service sur 2"
    )
    assert story.headline(digest(b)) == "Engagement tenu par 0 service sur 1"
    assert story.headline(digest(a, a)) == "Engagement tenu par 2 services sur 2"
    assert story.headline(digest(c)) == "Aucun appel présenté cette semaine"
    worse = service("d", False, 0.2)
    assert [p.split(" :")[0] for p in story.sore_points(digest(a, b, worse))] == ["d", "b"]


def test_a_recipient_gets_their_services_first_in_configuration_order() -> None:
    a, b, c, u = service("a", True), service("b", True), service("c", True), service(None, None)
    d = digest(a, b, c, u)
    assert [s.slug for s in story.ordered(d, ("c", "a"))] == ["a", "c", "b", None]
    assert [s.slug for s in story.ordered(d, ())] == ["a", "b", "c", None]
    assert story.subject(d, ("b",)).startswith("Décroché — b, semaine 48 (du 23 au 29")

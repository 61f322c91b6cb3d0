"""A slot the service missed moves to a later slot of its stratum that keeps every rule of
a plan, checked here independently of the planner's code (tests/support/plan_checks.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from campaigns.plan.misfire import Busy, Slot, new_slot
from campaigns.plan.planner import PlannedCall, plan_campaign
from campaigns.spec import CampaignSpec, parse_campaign
from service.municipality.calendar import Calendar
from tests.campaigns.plan.test_planner import metz, metz_campaign  # noqa: F401 - the fixture
from tests.support.plan_checks import available, edge_kinds_at, fits


def as_slot(c: PlannedCall) -> Slot:
    return Slot(c.scheduled_at, c.service, c.number, c.evaluator, c.half_day, c.moment)


def busy(calls: list[PlannedCall]) -> list[Busy]:
    return [Busy(c.scheduled_at, c.service, c.number, c.evaluator) for c in calls]


def check(
    spec: CampaignSpec,
    cal: Calendar,
    missed: PlannedCall,
    others: list[PlannedCall],
    at: datetime,
    evaluator: str,
    now: datetime,
) -> None:
    tz = cal.tz
    local = at.astimezone(tz)
    target = next(t for t in spec.targets if t.service == missed.service)
    svc = cal.m.service(missed.service)
    assert svc is not None
    assert at >= now
    assert local.date() <= spec.ends_on
    assert fits(cal.intervals(svc, local.date()), at, spec.call_minutes, cal)
    assert ("morning" if local.time() < time(13) else "afternoon") == missed.half_day
    kinds = edge_kinds_at(spec, cal, target, at)
    assert missed.moment in kinds if missed.moment != "core" else not kinds
    e = next(e for e in spec.evaluators if e.email == evaluator)
    assert available(e, at, spec.call_minutes, cal)
    same = [o for o in others if o.service == missed.service]
    assert local.date() not in {o.scheduled_at.astimezone(tz).date() for o in same}
    gap = timedelta(minutes=spec.min_gap_minutes)
    assert all(abs(o.scheduled_at - at) >= gap for o in same)
    calls = timedelta(minutes=spec.call_minutes)
    assert all(abs(o.scheduled_at - at) >= calls for o in others if o.evaluator == evaluator)


def test_every_missed_slot_of_the_first_weeks_finds_its_stratum_again(metz: Calendar) -> None:  # noqa: F811
    spec = parse_campaign(metz_campaign(), "x", metz.m)
    plan = list(plan_campaign(spec, metz).calls)
    early = [
        c
        for c in plan
        if c.scheduled_at.astimezone(metz.tz).date() < spec.starts_on + timedelta(days=21)
    ]
    assert {c.moment for c in early} >= {"opening", "closing", "lunch", "core"}
    same_weekday = 0
    for missed in early:
        now = missed.scheduled_at + timedelta(minutes=15)
        others = [c for c in plan if c is not missed]
        got = new_slot(spec, metz, as_slot(missed), busy(others), now)
        assert got is not None, missed
        at, evaluator = got
        check(spec, metz, missed, others, at, evaluator, now)
        same_weekday += (
            at.astimezone(metz.tz).weekday() == missed.scheduled_at.astimezone(metz.tz).weekday()
        )
        if evaluator != missed.evaluator:
            planned = next(e for e in spec.evaluators if e.email == missed.evaluator)
            assert not available(planned, at, spec.call_minutes, metz) or any(
                abs(o.scheduled_at - at) < timedelta(minutes=spec.call_minutes)
                for o in others
                if o.evaluator == missed.evaluator
            )
    assert same_weekday > len(early) // 2  # the weekday is kept whenever it can be


def test_a_slot_missed_at_the_end_of_the_period_is_missed(metz: Calendar) -> None:  # noqa: F811
    spec = parse_campaign(metz_campaign(), "x", metz.m)
    plan = list(plan_campaign(spec, metz).calls)
    last = max(plan, key=lambda c: c.scheduled_at)
    now = last.scheduled_at + timedelta(minutes=15)
    others = [c for c in plan if c is not last]
    assert new_slot(spec, metz, as_slot(last), busy(others), now) is None
    # and a target that left the campaign has no stratum at all
    gone = Slot(last.scheduled_at, "inconnu", "+33100000000", last.evaluator, "morning", "core")
    assert new_slot(spec, metz, gone, busy(others), plan[0].scheduled_at) is None

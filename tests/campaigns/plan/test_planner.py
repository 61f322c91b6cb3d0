"""The planner: the seven guarantees over many random campaigns, a real town's calendar,
impossible campaigns refused with the reason, and the same plan for the same seed."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.plan.planner import KeptCall, PlanError, PlannedCall, plan_campaign
from campaigns.spec import CampaignSpec, parse_campaign
from service.municipality.calendar import Calendar
from service.municipality.model import Municipality, load_municipality, parse_municipality
from tests.support.paths import DATA
from tests.support.plan_checks import open_days, violations

# More examples for a long hunt:
# DECROCHE_PLANNER_EXAMPLES=2000 pytest tests/campaigns/plan/test_planner.py
EXAMPLES = int(os.environ.get("DECROCHE_PLANNER_EXAMPLES", "60"))

DAY_PATTERNS = [
    ["08:30-12:00", "13:30-17:30"],
    ["08:30-12:00"],
    ["13:30-17:00"],
    ["10:00-19:00"],
    ["09:00-09:40"],
    ["00:00-24:00"],
    ["08:00-10:00", "10:00-12:00", "14:00-16:00"],
]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@st.composite
def municipalities(draw: Any) -> Municipality:
    services = []
    for i in range(draw(st.integers(1, 3))):
        hours = {}
        for day in WEEKDAYS:
            pattern = draw(st.sampled_from([None, None, *range(len(DAY_PATTERNS))]))
            if pattern is not None:
                hours[day] = DAY_PATTERNS[pattern]
        if not hours:
            hours["mon"] = DAY_PATTERNS[0]
        services.append(
            {
                "slug": f"s{i}",
                "lines": [f"+3310000000{i}"],
                "hours": hours,
                "closures": [
                    (date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 730)))).isoformat()
                    for _ in range(draw(st.integers(0, 3)))
                ],
            }
        )
    return parse_municipality(
        {
            "holiday_zone": draw(st.sampled_from(["metropole", "alsace-moselle"])),
            "whit_monday_open": draw(st.booleans()),
            "services": services,
        },
        "generated",
    )


@st.composite
def availabilities(draw: Any) -> dict[str, list[str]] | None:
    if draw(st.booleans()):
        return None
    out = {}
    for day in draw(st.lists(st.sampled_from(WEEKDAYS[:6]), min_size=1, max_size=4, unique=True)):
        start = draw(st.integers(7, 15))
        out[day] = [f"{start:02d}:00-{start + draw(st.integers(1, 4)):02d}:30"]
    return out


@st.composite
def campaigns(draw: Any, generous: bool) -> tuple[CampaignSpec, Calendar]:
    m = draw(municipalities())
    cal = Calendar(m)
    start = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 700)))
    length = draw(st.integers(1, 91))
    base: dict[str, Any] = {
        "name": "Campagne générée",
        "grid": "accueil-telephonique",
        "starts_on": start.isoformat(),
        "ends_on": (start + timedelta(days=length - 1)).isoformat(),
        "seed": draw(st.integers(0, 10_000)),
        "min_gap_minutes": draw(st.sampled_from([0, 30, 120, 240])),
        "call_minutes": draw(st.sampled_from([10, 15, 30])),
        "targets": [{"service": s.slug, "calls": 1} for s in m.services],
        "scenarios": [
            {"id": f"sc{i}", "question": "?", "services": draw(st.sampled_from([[], ["s0"]]))}
            for i in range(draw(st.integers(0, 4)))
        ],
        # Generous: one evaluator free at any time per target, so nobody is ever too busy.
        "evaluators": [
            {
                "name": f"E{i}",
                "email": f"e{i}@example.org",
                **(
                    {}
                    if generous and i < len(m.services)
                    else {"availability": draw(availabilities())}
                ),
            }
            for i in range(draw(st.integers(len(m.services) if generous else 1, 4)))
        ],
    }
    base["evaluators"] = [
        {k: v for k, v in e.items() if not (k == "availability" and v is None)}
        for e in base["evaluators"]
    ]
    if base["scenarios"] and all(s["services"] for s in base["scenarios"]):
        base["scenarios"][0]["services"] = []  # every target has a scenario
    spec = parse_campaign(base, "generated", m)
    targets = []
    for t in spec.targets:
        days = len(open_days(spec, cal, t))
        most = max(1, days if generous else 2 * days)
        targets.append({"service": t.service, "calls": draw(st.integers(1, most))})
    spec = parse_campaign({**base, "targets": targets}, "generated", m)
    return spec, cal


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaigns(generous=True))
def test_generous_campaigns_plan_with_every_guarantee(case: tuple[CampaignSpec, Calendar]) -> None:
    spec, cal = case
    if any(not open_days(spec, cal, t) for t in spec.targets):
        with pytest.raises(PlanError, match=r"no opening time|no evaluator is available"):
            plan_campaign(spec, cal)
        return
    try:
        plan = plan_campaign(spec, cal)
    except PlanError as exc:
        problems = exc.problems
    else:
        assert violations(spec, plan.calls, cal) == []
        assert plan_campaign(spec, cal) == plan  # 7. same file, same seed, same plan
        return
    # Only a gap too wide for the open days may stop a generous campaign.
    assert all("fit in its opening hours" in p for p in problems), problems
    assert spec.min_gap_minutes > 0


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campaigns(generous=False))
def test_any_campaign_is_planned_right_or_refused_with_reasons(
    case: tuple[CampaignSpec, Calendar],
) -> None:
    spec, cal = case
    try:
        plan = plan_campaign(spec, cal)
    except PlanError as exc:
        problems = exc.problems
    else:
        # Scarce evaluators may leave an edge to another target: see check_edges.
        assert violations(spec, plan.calls, cal, edges_sampled=False) == []
        return
    assert problems
    assert all(p.split(":")[0] for p in problems)  # each names where


# -- a real town's calendar ------------------------------------------------------------------

METZ = DATA / "metz.toml"


def metz_campaign(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Appels mystères — printemps 2027",
        "grid": "accueil-telephonique",
        "starts_on": "2027-03-22",
        "ends_on": "2027-05-30",
        "seed": 2027,
        "min_gap_minutes": 120,
        "call_minutes": 15,
        "targets": [
            {"service": "etat-civil", "calls": 30},
            {"service": "allo-mairie", "calls": 40},
            {"service": "cimetieres", "calls": 10},
        ],
        "scenarios": [
            {"id": "cni", "question": "Carte d'identité ?", "services": ["etat-civil"]},
            {"id": "acte", "question": "Acte de naissance ?", "services": ["etat-civil"]},
            {"id": "horaires", "question": "Quels sont vos horaires ?"},
            {"id": "concession", "question": "Concession ?", "services": ["cimetieres"]},
        ],
        "evaluators": [
            {"name": "Claire Martin", "email": "claire.martin@metz.test"},
            {
                "name": "Paul Durand",
                "email": "paul.durand@metz.test",
                "availability": {
                    "mon": ["09:00-12:00"],
                    "tue": ["08:30-17:30"],
                    "thu": ["14:00-19:00"],
                    "sat": ["09:00-12:00"],
                },
                "unavailable": ["2027-04-13", "2027-04-15"],
            },
            {"name": "Inès Bensaïd", "email": "ines.bensaid@metz.test"},
        ],
    }
    return {**base, **overrides}


@pytest.fixture(scope="module")
def metz() -> Calendar:
    return Calendar(load_municipality(METZ))


def test_a_real_town_spring(metz: Calendar) -> None:
    spec = parse_campaign(metz_campaign(), "metz-printemps", metz.m)
    plan = plan_campaign(spec, metz).calls
    assert violations(spec, plan, metz) == []
    local = [c.scheduled_at.astimezone(metz.tz) for c in plan]
    days = {t.date() for t in local}
    # Alsace-Moselle's Good Friday and Easter Monday, Ascension, the town's bridge day,
    # Whit Monday (closed here), and the service's own closure: no call.
    for closed in ("2027-03-26", "2027-03-29", "2027-05-06", "2027-05-07", "2027-05-17"):
        assert date.fromisoformat(closed) not in days
    assert date(2027, 4, 20) not in {
        t.date() for t, c in zip(local, plan, strict=True) if c.service == "etat-civil"
    }
    # Saturday mornings and the late Thursday evening of the état civil are sampled.
    ec = [t for t, c in zip(local, plan, strict=True) if c.service == "etat-civil"]
    assert any(t.weekday() == 5 for t in ec)
    assert all(t.hour < 12 for t in ec if t.weekday() == 5)
    assert any(t.weekday() == 3 and t.hour >= 17 for t in ec)
    # The DST change (28 March 2027) is crossed: offsets follow the local time.
    assert {t.utcoffset() for t in local} == {timedelta(hours=1), timedelta(hours=2)}
    # Paul's days off are respected; scenarios rotate on the état civil.
    assert not any(
        c.evaluator == "paul.durand@metz.test"
        and t.date() in (date(2027, 4, 13), date(2027, 4, 15))
        for t, c in zip(local, plan, strict=True)
    )
    scen = Counter(c.scenario for c in plan if c.service == "etat-civil")
    assert sorted(scen.values()) == [10, 10, 10]
    moments = Counter(c.moment for c in plan if c.service == "allo-mairie")
    assert moments["opening"] >= 4
    assert moments["closing"] >= 4
    assert moments["lunch"] >= 4


def test_same_file_and_seed_same_plan_and_another_seed_another(metz: Calendar) -> None:
    spec = parse_campaign(metz_campaign(), "a", metz.m)
    again = parse_campaign(metz_campaign(), "b", metz.m)
    assert plan_campaign(spec, metz) == plan_campaign(again, metz)
    other = parse_campaign(metz_campaign(seed=2028), "c", metz.m)
    a = [c.scheduled_at for c in plan_campaign(spec, metz).calls]
    b = [c.scheduled_at for c in plan_campaign(other, metz).calls]
    assert a != b


def test_a_plan_spreads_weeks_weekdays_and_halves_evenly(metz: Calendar) -> None:
    spec = parse_campaign(
        metz_campaign(targets=[{"service": "allo-mairie", "calls": 40}]), "x", metz.m
    )
    plan = plan_campaign(spec, metz).calls
    local = [c.scheduled_at.astimezone(metz.tz) for c in plan]
    weeks = Counter(t.isocalendar()[1] for t in local)
    weekdays = Counter(t.weekday() for t in local)
    halves = Counter(t.hour >= 13 for t in local)
    # Ten weeks, four calls each — but the week of Ascension and the bridge day has three
    # open days: it is full at three, and one week takes five.
    assert weeks[18] == 3
    assert sorted(weeks.values()) == [3, 4, 4, 4, 4, 4, 4, 4, 4, 5], weeks
    assert max(weekdays.values()) - min(weekdays.values()) <= 1, weekdays
    assert abs(halves[True] - halves[False]) <= 1, halves


# -- impossible campaigns ------------------------------------------------------------------------


def refusal(metz: Calendar, **overrides: Any) -> list[str]:
    spec = parse_campaign(metz_campaign(**overrides), "x", metz.m)
    with pytest.raises(PlanError) as info:
        plan_campaign(spec, metz)
    return info.value.problems


def test_too_many_calls_for_the_open_days_says_which_target(metz: Calendar) -> None:
    problems = refusal(
        metz,
        starts_on="2027-05-03",
        ends_on="2027-05-09",
        min_gap_minutes=600,
        targets=[{"service": "cimetieres", "calls": 9}, {"service": "etat-civil", "calls": 3}],
    )
    assert len(problems) == 1
    assert problems[0].startswith("cimetieres: 9 calls to place but only 3 fit")
    assert "600 minutes apart" in problems[0]


def test_a_period_with_no_opening_is_refused(metz: Calendar) -> None:
    problems = refusal(
        metz,
        starts_on="2027-05-06",
        ends_on="2027-05-07",
        targets=[{"service": "etat-civil", "calls": 1}],
    )
    assert problems == [
        "etat-civil: no opening time between 2027-05-06 and 2027-05-07 leaves 15 minutes "
        "before closing (hours, holidays and closures considered)"
    ]


def test_no_evaluator_available_during_a_services_hours(metz: Calendar) -> None:
    problems = refusal(
        metz,
        targets=[{"service": "cimetieres", "calls": 2}],
        evaluators=[
            {"name": "Soirée", "email": "soir@metz.test", "availability": {"mon": ["18:00-20:00"]}}
        ],
    )
    assert problems[0].startswith("cimetieres: no evaluator is available during its opening hours")


def test_evaluators_short_of_time_are_refused(metz: Calendar) -> None:
    problems = refusal(
        metz,
        starts_on="2027-04-05",
        ends_on="2027-04-09",
        call_minutes=60,
        min_gap_minutes=0,
        targets=[{"service": "allo-mairie", "calls": 10}, {"service": "etat-civil", "calls": 5}],
        evaluators=[
            {
                "name": "Seule",
                "email": "seule@metz.test",
                "availability": {"mon": ["09:00-12:00"], "tue": ["09:00-12:00"]},
            }
        ],
    )
    assert problems[0].startswith("evaluators: 15 calls to place but the evaluators' availability")


def test_a_target_without_a_suited_scenario_is_refused(metz: Calendar) -> None:
    problems = refusal(metz, scenarios=[{"id": "cni", "question": "?", "services": ["etat-civil"]}])
    assert "allo-mairie: no scenario suits this service" in problems


def test_more_calls_than_days_gives_an_even_share_per_day(metz: Calendar) -> None:
    spec = parse_campaign(
        metz_campaign(
            starts_on="2027-04-05",
            ends_on="2027-04-09",
            min_gap_minutes=60,
            targets=[{"service": "allo-mairie", "calls": 12}],
        ),
        "x",
        metz.m,
    )
    plan = plan_campaign(spec, metz)
    per_day = Counter(c.scheduled_at.astimezone(metz.tz).date() for c in plan.calls)
    assert sorted(per_day.values()) == [2, 2, 2, 3, 3]
    assert "up to 3 calls a day" in plan.notes[0]
    assert violations(spec, plan.calls, metz) == []


def kept_before(calls: Sequence[PlannedCall], now: datetime) -> list[KeptCall]:
    """The calls a re-plan at ``now`` keeps, as if all before it were done."""
    return [
        KeptCall(c.scheduled_at, c.service, c.number, c.evaluator, c.scenario, c.moment)
        for c in calls
        if c.scheduled_at < now
    ]


def test_a_re_plan_keeps_what_is_done_and_fills_the_rest(metz: Calendar) -> None:
    spec = parse_campaign(metz_campaign(), "x", metz.m)
    first = plan_campaign(spec, metz).calls
    now = datetime(2027, 4, 20, 12, 0, tzinfo=UTC)
    kept = kept_before(first, now)
    # Paul leaves the campaign; the rest is planned again without him, after noon.
    evaluators = [e for e in metz_campaign()["evaluators"] if not e["email"].startswith("paul")]
    spec2 = parse_campaign(metz_campaign(evaluators=evaluators), "x", metz.m)
    again = plan_campaign(spec2, metz, kept=kept, not_before=now).calls
    assert len(again) + len(kept) == spec.total_calls
    assert all(c.scheduled_at >= now for c in again)
    assert not any(c.evaluator.startswith("paul") for c in again)
    before = [c for c in first if c.scheduled_at < now]
    whole = [*again, *before]
    problems = violations(spec, whole, metz, fixed=before)
    # Paul's kept calls make the load uneven by construction; everything else holds.
    assert [p for p in problems if not (p.startswith("check_rotation") and "paul" in p)] == []
    loads = Counter(c.evaluator for c in whole)
    assert abs(loads["claire.martin@metz.test"] - loads["ines.bensaid@metz.test"]) <= 1
    for t in spec.targets:
        mine = [c for c in whole if c.service == t.service]
        days = Counter(c.scheduled_at.astimezone(metz.tz).date() for c in mine)
        assert max(days.values()) == 1


def test_a_re_plan_refuses_to_lose_what_is_done(metz: Calendar) -> None:
    spec = parse_campaign(metz_campaign(), "x", metz.m)
    now = datetime(2027, 5, 10, 12, 0, tzinfo=UTC)
    kept = kept_before(plan_campaign(spec, metz).calls, now)
    done = Counter(k.service for k in kept)
    last = max(k.scheduled_at for k in kept).astimezone(metz.tz).date()
    fewer = [
        {"service": "etat-civil", "calls": done["etat-civil"] - 1},
        {"service": "allo-mairie", "calls": 40},
    ]
    shorter = (last - timedelta(days=1)).isoformat()
    spec2 = parse_campaign(metz_campaign(targets=fewer, ends_on=shorter), "x", metz.m)
    with pytest.raises(PlanError) as info:
        plan_campaign(spec2, metz, kept=kept, not_before=now)
    text = "; ".join(info.value.problems)
    assert f"etat-civil: {done['etat-civil']} call(s) are done or awaiting evaluation" in text
    assert "cimetieres" in text
    assert "cannot leave the campaign" in text
    assert f"a kept call is on {last:%d/%m/%Y}, after ends_on" in text
    # the same re-plan with the targets kept whole goes through
    spec3 = parse_campaign(metz_campaign(), "x", metz.m)
    assert plan_campaign(spec3, metz, kept=kept, not_before=now).calls

"""Closed-hours probes: planned outside opening hours (checked here against the calendar,
not the planner's code), then placed through the fake Twilio, recorded, and left to a
person to complete on the closed-hours grid."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any

import pytest

from campaigns.plan.planner import PlanError, PlannedCall, plan_campaign
from campaigns.plan.slots import PROBE_HOURS
from campaigns.run.voice import PROBE_LISTEN_S
from campaigns.spec import CampaignSpec, parse_campaign
from service.municipality.calendar import Calendar
from service.municipality.model import load_municipality
from tests.campaigns.web.test_campaigns_api import body
from tests.conftest import TEST_CONFIG
from tests.support.fake_twilio import Behaviour
from tests.support.plan_checks import check_gaps, local_end
from tests.support.rig import ACCUEIL, CALLER_ID, ETAT_CIVIL, Rig


def probe_campaign(**overrides: Any) -> dict[str, Any]:
    return body(
        **(
            {
                "name": "Messages hors horaires — printemps 2027",
                "grid": "message-fermeture",
                "mode": "probe",
                "starts_on": "2027-03-22",
                "ends_on": "2027-04-30",  # across the change to summer time (28 March)
                "targets": [
                    {"service": "accueil", "calls": 12},
                    {"service": "etat-civil", "calls": 8},
                ],
                "scenarios": [],
            }
            | overrides
        )
    )


@pytest.fixture(scope="module")
def cal() -> Calendar:
    return Calendar(load_municipality(TEST_CONFIG))


def closed_at(spec: CampaignSpec, cal: Calendar, call: PlannedCall) -> list[str]:
    """What is wrong with a probe's start (empty: it is a proper closed-hours probe)."""
    svc = cal.m.service(call.service)
    assert svc is not None
    local = call.scheduled_at.astimezone(cal.tz)
    day = local.date()
    end = call.scheduled_at + timedelta(minutes=spec.call_minutes)
    bad = []
    if not PROBE_HOURS[0] <= local.time() or end > datetime.combine(day, PROBE_HOURS[1], cal.tz):
        bad.append(f"{local} is outside {PROBE_HOURS}")
    for a, b in cal.intervals(svc, day):
        opens = datetime.combine(day, a, cal.tz)
        closes = local_end(day, b, cal)
        if call.scheduled_at < closes and end > opens:
            bad.append(f"{local} overlaps the opening {a}-{b}")
    return bad


def test_probes_fall_outside_opening_hours_and_spread_like_calls(cal: Calendar) -> None:
    spec = parse_campaign(probe_campaign(), "x", cal.m)
    calls = plan_campaign(spec, cal).calls
    assert Counter(c.service for c in calls) == {"accueil": 12, "etat-civil": 8}
    assert all(c.mode == "probe" for c in calls)
    assert [p for c in calls for p in closed_at(spec, cal, c)] == []
    assert check_gaps(spec, list(calls), cal) == []
    assert all(spec.starts_on <= c.scheduled_at.astimezone(cal.tz).date() <= spec.ends_on
               for c in calls)  # fmt: skip
    # the fragile moments of a closed service are sampled: just after closing, lunch, dawn
    moments = Counter(c.moment for c in calls if c.service == "accueil")
    assert moments["closing"] >= 1
    assert moments["lunch"] >= 1
    assert moments["opening"] >= 1
    halves = Counter(c.half_day for c in calls if c.service == "accueil")
    assert abs(halves["morning"] - halves["afternoon"]) <= 2
    # evaluators complete probes later: their availability does not hold the times
    loads = Counter(c.evaluator for c in calls)
    assert max(loads.values()) - min(loads.values()) <= 1
    for c in calls:  # each moment is truthful
        local = c.scheduled_at.astimezone(cal.tz)
        svc = cal.m.service(c.service)
        assert svc is not None
        opens = [
            datetime.combine(local.date(), a, cal.tz) for a, _ in cal.intervals(svc, local.date())
        ]
        closes = [local_end(local.date(), b, cal) for _, b in cal.intervals(svc, local.date())]
        if c.moment == "closing":
            assert any(timedelta(0) <= c.scheduled_at - t < timedelta(minutes=15) for t in closes)
        if c.moment == "opening":
            assert any(
                timedelta(minutes=15) <= t - c.scheduled_at < timedelta(minutes=30) for t in opens
            )


def test_a_probe_campaign_on_a_service_open_round_the_clock_is_refused(cal: Calendar) -> None:
    spec = parse_campaign(
        probe_campaign(
            targets=[{"service": "astreinte", "calls": 3}],
            starts_on="2027-04-01",
            ends_on="2027-04-30",  # no holiday (on Easter Monday it would close, and be probed)
        ),
        "x",
        cal.m,
    )
    with pytest.raises(PlanError) as info:
        plan_campaign(spec, cal)
    assert info.value.problems == [
        "astreinte: it is never closed between 07:30 and 20:00 for 15 minutes "
        "between 2027-04-01 and 2027-04-30: nothing to probe"
    ]


def test_probe_evaluators_need_no_phone_and_their_hours_do_not_bind(cal: Calendar) -> None:
    evening_only = [{"name": "Claire Martin", "email": "claire@ville.test",
                     "availability": {"mon": ["09:00-10:00"]}}]  # fmt: skip
    spec = parse_campaign(probe_campaign(evaluators=evening_only), "x", cal.m)
    calls = plan_campaign(spec, cal).calls
    assert len(calls) == 20
    assert {c.scheduled_at.astimezone(cal.tz).time() >= time(9) for c in calls} == {True, False}


async def test_a_probe_calls_the_closed_service_records_it_and_awaits_a_person(
    rig: Rig,
) -> None:
    rig.fake.behaviours[ACCUEIL] = Behaviour("answer", ring_s=4)  # a message picks up
    rig.fake.behaviours[ETAT_CIVIL] = Behaviour("no-answer")  # rings out: no message at all
    calls = await rig.campaign(mode="probe", grid="message-fermeture", scenarios=[])
    for c in calls:
        await rig.at(c["scheduled_at"] + timedelta(seconds=30))
    assert len(rig.fake.calls) == len(calls)
    for c, placed in zip(calls, rig.fake.calls, strict=True):
        assert (placed["To"], placed["From"], placed["Record"]) == (c["number"], CALLER_ID, "true")
        assert placed["StatusCallback"].endswith(f"/webhooks/twilio/mystery/{c['id']}/probe")
        svc = rig.settings.municipality.service(c["service"])
        assert not Calendar(rig.settings.municipality).in_hours(svc, c["scheduled_at"])
        run = await rig.run(c["id"])
        assert (run["kind"], run["state"]) == ("probe", "ended")
        if c["number"] == ACCUEIL:
            assert (run["outcome"], run["ring_seconds"]) == ("answered", 4)
            assert run["recording_seconds"] == PROBE_LISTEN_S
            assert run["recording_sid"] in rig.fake.recordings
        else:
            assert run["outcome"] == "target-no-answer"
            assert run["recording_sid"] is None
    page = await (await rig.client.get(f"/api/v1/mystery-calls/{calls[0]['id']}")).json()
    assert page["grid"]["slug"] == "message-fermeture"
    assert page["run"]["kind"] == "probe"
    assert page["evaluation"] is None  # a person completes it from the recording

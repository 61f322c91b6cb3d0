"""Folding events into a call: both Twilio topologies, against the simulated truth, in any
order and with any duplicates."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.calls.fold import fold
from service.calls.model import Disposition, Event, Kind
from service.demo.traffic import SimCall, TrafficGenerator, build_callbacks
from service.municipality.model import load_municipality
from tests.conftest import TEST_CONFIG
from tests.support.traffic import RECEIVED, events_of

M = load_municipality(TEST_CONFIG)
T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Paris: open


def sim(
    topology: str,
    answered: bool,
    wait: int,
    talk: int = 90,
    agents: int = 2,
    timed_out: bool = False,
    line: str = "+33100000001",
) -> SimCall:
    call = SimCall(
        "CA" + "1" * 32,
        line,
        "+33612345678",
        topology,
        T0,
        answered,
        wait,
        talk if answered else 0,
        agents=agents,
        timed_out=timed_out,
    )
    build_callbacks(call, random.Random(7))
    return call


def check_truth(call: SimCall) -> None:
    folded = fold(events_of(call))
    assert folded is not None
    assert folded.external_id == call.sid
    assert folded.line == call.line
    assert folded.caller == call.caller
    assert folded.direction == "inbound"
    assert folded.started_at == call.started_at
    assert folded.answered is call.answered
    assert folded.answered_at == call.answered_at
    assert folded.ended_at == call.ended_at
    assert folded.wait_s == call.wait_s
    assert folded.time_from_events


@pytest.mark.parametrize("topology", ["dial", "queue"])
@pytest.mark.parametrize(
    ("answered", "wait"),
    [(True, 0), (True, 17), (True, 25), (True, 26), (False, 3), (False, 40), (False, 140)],
)
def test_both_topologies_match_the_truth(topology: str, answered: bool, wait: int) -> None:
    check_truth(sim(topology, answered, wait))


def test_closed_hours_call_is_received_without_answer() -> None:
    call = sim("closed", False, 12)
    folded = fold(events_of(call))
    assert folded is not None
    assert not folded.answered
    assert folded.wait_s == 12
    assert folded.disposition is Disposition.ABANDONED


def test_inbound_leg_pickup_is_not_an_agent_answer() -> None:
    # The inbound leg goes in-progress when the IVR picks up; no agent ever does.
    call = sim("dial", False, 30, agents=3)
    evs = events_of(call)
    assert any(e.kind is Kind.SYSTEM_ANSWERED for e in evs)
    folded = fold(evs)
    assert folded is not None
    assert not folded.answered
    assert folded.answered_at is None
    assert folded.disposition is Disposition.ABANDONED


def test_parallel_ringing_earliest_pickup_wins() -> None:
    call = sim("dial", True, 20, agents=3)
    evs = events_of(call)
    # A second agent also picks up, two seconds later (a race Twilio resolves by itself).
    late = next(e for e in evs if e.kind is Kind.AGENT_ANSWERED)
    other_leg = next(e for e in evs if e.kind is Kind.LEG and e.leg != late.leg)
    assert late.at is not None
    evs.append(
        replace(
            late,
            dedup_key=f"{other_leg.leg}:status:2",
            leg=other_leg.leg,
            agent=other_leg.agent,
            at=late.at + timedelta(seconds=2),
        )
    )
    folded = fold(evs)
    assert folded is not None
    assert folded.answered_at == T0 + timedelta(seconds=20)
    assert folded.wait_s == 20
    assert folded.agent == late.agent


def test_dial_timeout_is_no_answer() -> None:
    folded = fold(events_of(sim("dial", False, 40, timed_out=True)))
    assert folded is not None
    assert folded.disposition is Disposition.NO_ANSWER


def test_queue_abandon_wait_is_queue_time() -> None:
    folded = fold(events_of(sim("queue", False, 52)))
    assert folded is not None
    assert folded.disposition is Disposition.ABANDONED
    assert folded.wait_s == 52


def test_call_in_progress_has_no_disposition_yet() -> None:
    call = sim("dial", True, 10)
    evs = [
        e
        for e in events_of(call)
        if e.kind not in (Kind.ENDED, Kind.DIAL_RESULT)
        and not (
            e.kind is Kind.LEG and e.leg is not None and e.at and e.at > T0 + timedelta(seconds=60)
        )
    ]
    folded = fold(evs)
    assert folded is not None
    assert folded.ended_at is None
    assert folded.answered
    assert folded.disposition is Disposition.ANSWERED


def test_only_action_callbacks_fall_back_on_receipt_time() -> None:
    call = sim("queue", True, 30)
    evs = [e for e in events_of(call) if e.at is None]
    folded = fold(evs)
    assert folded is not None
    assert not folded.time_from_events
    assert folded.started_at == RECEIVED
    assert folded.wait_s == 30


def test_end_minus_duration_dates_a_lone_completed_callback() -> None:
    call = sim("dial", False, 33)
    ended = [e for e in events_of(call) if e.kind is Kind.ENDED]
    folded = fold(ended)
    assert folded is not None
    assert folded.started_at == T0
    assert folded.wait_s == 33


def test_no_events_no_call() -> None:
    assert fold([]) is None


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10**6), data=st.data())
def test_any_order_any_duplicates_same_call(seed: int, data: st.DataObject) -> None:
    gen = TrafficGenerator(M, seed=seed)
    svc = M.services[seed % len(M.services)]
    start = T0 + timedelta(minutes=seed % 600)
    call = gen.call(svc, start)
    evs = events_of(call)
    reference = fold(evs)
    perm = data.draw(st.permutations(evs))
    dups = data.draw(st.lists(st.sampled_from(evs), max_size=len(evs)))
    # Redeliveries arrive later; their receipt time must not change anything.
    redelivered = [
        replace(e, received_at=e.received_at + timedelta(seconds=i + 1)) for i, e in enumerate(dups)
    ]
    mixed = list(perm) + redelivered
    random.Random(seed).shuffle(mixed)
    assert fold(mixed) == reference
    assert reference is not None
    assert reference.wait_s == call.wait_s
    assert reference.answered is call.answered


def test_a_stored_event_reads_back_the_same_in_either_row_format() -> None:
    """Stored rows keep the event's columns apart and its other fields in ``norm``; rows
    written before that repeated every field in ``norm``. Both read back to the event."""
    ended = datetime(2026, 11, 19, 9, 5, tzinfo=UTC)
    event = Event(
        "asterisk",
        "1763543100.42",
        "k1",
        Kind.ENDED,
        ended + timedelta(seconds=1),
        at=ended,
        queue="accueil",
        status="answered",
        answered=True,
        wait_s=12.0,
        duration_s=240.0,
    )
    columns = ("asterisk", "1763543100.42", "k1", "ended", ended, ended + timedelta(seconds=1))
    now = orjson.loads(orjson.dumps(event.details()))
    before = orjson.loads(orjson.dumps(event.as_dict()))
    assert "kind" not in now
    assert "at" not in now
    assert Event.from_stored(*columns, now) == event
    assert Event.from_stored(*columns, before) == event

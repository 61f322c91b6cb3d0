"""Fold the events of one call into the call: a pure function of the *set* of events.

The result depends neither on arrival order nor on duplicates (sources deliver late, twice
and out of order), so any permutation of any multiset of the same events folds to the same
call. The rules are those of ``shared/spec/engagement8.md`` (« The call »):

* ``started_at`` — the earliest instant any event gives (a leg's end minus its duration
  counts as an instant too); only when no event carries one, the earliest receipt time.
* ``answered_at`` — the earliest pick-up by a human agent; an IVR or the PBX answering the
  inbound leg is not one. Where the source only reports the wait (Twilio ``QueueTime``),
  the pick-up is the queue entry (or the start) plus that wait.
* ``wait_s`` — the wait the source reports when it reports one (authoritative), otherwise
  pick-up minus start for answered calls, end minus start for the others.

A source of call-detail records describes whole calls (``Kind.SUMMARY``) and sends a call
again when it changes: the record received last describes the call, its wait counted from
the offer (queue entry) when the record gives one, else from the start. Events that say
nothing about a call (``Kind.OTHER`` alone: an agent logging in, a queue reloading) make no
call.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from service.calls.model import Call, Disposition, Event, Kind

# Which event's own wait figure wins when several report one: the pick-up itself first,
# then the dequeue, then the queue's verdict, then the end of the leg.
_WAIT_PRIORITY = {Kind.AGENT_ANSWERED: 0, Kind.AGENT_TAKEN: 1, Kind.QUEUE_RESULT: 2, Kind.ENDED: 3}


def _order(e: Event) -> tuple[datetime, int, str, str]:
    # The kind is a str itself: its .value would cost an enum property lookup per event.
    return (e.at or e.received_at, e.seq if e.seq is not None else -1, e.kind, e.dedup_key)


def fold(events: Iterable[Event]) -> Call | None:
    """The call described by ``events`` (all of one ``call_key``), or None when empty."""
    evs = _distinct(events)
    if all(e.kind is Kind.OTHER for e in evs):
        return None
    summaries = [e for e in evs if e.kind is Kind.SUMMARY]
    if summaries:
        return _from_summary(max(summaries, key=lambda e: (e.received_at, e.dedup_key)))
    return _from_events(evs)


def _distinct(events: Iterable[Event]) -> list[Event]:
    """Each delivery once, in the order of :func:`_order`."""
    unique: dict[str, Event] = {}
    for e in events:
        # A redelivery differs only by its receipt time; keep the earliest copy.
        kept = unique.get(e.dedup_key)
        if kept is None or e.received_at < kept.received_at:
            unique[e.dedup_key] = e
    return sorted(unique.values(), key=_order)


def _from_events(evs: list[Event]) -> Call:
    """The call the events of a leg-by-leg source describe (``evs``: distinct, in order)."""
    first = evs[0]
    started_at, from_events = _start(evs)
    ends = [e for e in evs if e.kind is Kind.ENDED]
    ended_at = max((e.at for e in ends if e.at is not None), default=None)
    first_answer = _first_answer(evs)
    results = [e for e in evs if e.kind in (Kind.QUEUE_RESULT, Kind.DIAL_RESULT)]
    answered = _answered(evs, results, ends)
    reported_wait = _reported_wait(evs, answered)
    answered_at = first_answer.at if first_answer else None
    if answered and answered_at is None:
        answered_at = _inferred_answer(evs, results, started_at, ended_at, reported_wait)
    return Call(
        source=first.source,
        external_id=first.call_key,
        direction=_direction(evs),
        line=next((e.line for e in evs if e.line), None),
        queue=next((e.queue for e in evs if e.queue), None),
        caller=next((e.caller for e in evs if e.caller), None),
        agent=_agent(evs, first_answer),
        started_at=started_at,
        answered_at=answered_at,
        ended_at=ended_at,
        wait_s=_wait(reported_wait, answered, started_at, answered_at, ended_at),
        answered=answered,
        disposition=_disposition(answered, results, ends),
        time_from_events=from_events,
        recording_url=next((e.recording_url for e in reversed(evs) if e.recording_url), None),
    )


def _direction(evs: list[Event]) -> str:
    directions = {e.direction for e in evs if e.direction}
    return "outbound" if directions == {"outbound"} else "inbound"


def _start(evs: list[Event]) -> tuple[datetime, bool]:
    """When the call started, and whether an event gave that instant (else: the earliest
    receipt)."""
    instants = [e.at for e in evs if e.at is not None]
    instants += [
        e.at - timedelta(seconds=e.duration_s)
        for e in evs
        if e.kind is Kind.ENDED and e.at is not None and e.duration_s is not None
    ]
    if instants:
        return min(instants), True
    return min(e.received_at for e in evs), False


def _first_answer(evs: list[Event]) -> Event | None:
    """The earliest timed pick-up by an agent."""
    timed = [e for e in evs if e.kind is Kind.AGENT_ANSWERED and e.at is not None]
    return min(timed, key=_order) if timed else None


def _answered(evs: list[Event], results: list[Event], ends: list[Event]) -> bool:
    """Whether anything says an agent answered: a pick-up (timed or not), a dequeue, an
    answered queue or dial verdict, an end that says so."""
    return (
        any(e.kind is Kind.AGENT_ANSWERED or e.kind is Kind.AGENT_TAKEN for e in evs)
        or any(e.answered for e in results)
        or any(e.answered for e in ends)
    )


def _reported_wait(evs: list[Event], answered: bool) -> float | None:
    """The wait the source itself reports, by :data:`_WAIT_PRIORITY`."""
    waits = sorted(
        (e for e in evs if e.wait_s is not None and e.kind in _WAIT_PRIORITY),
        key=lambda e: (_WAIT_PRIORITY[e.kind], _order(e)),
    )
    if answered:
        # An answered call's reported wait comes from answer-side events only: a queue
        # verdict of "hangup" next to an agent answer would be contradictory noise.
        waits = [e for e in waits if e.kind is not Kind.QUEUE_RESULT or e.answered]
    return waits[0].wait_s if waits else None


def _inferred_answer(
    evs: list[Event],
    results: list[Event],
    started_at: datetime,
    ended_at: datetime | None,
    reported_wait: float | None,
) -> datetime | None:
    """The pick-up of an answered call no event dates: the queue entry (or the start) plus
    the reported wait, else the end minus the talk time; None when neither is known."""
    if reported_wait is not None:
        queue_entered = min(
            (e.at for e in evs if e.kind is Kind.STARTED and e.queue and e.at), default=None
        )
        return (queue_entered or started_at) + timedelta(seconds=reported_wait)
    talk = next((e.duration_s for e in results if e.answered and e.duration_s), None)
    if ended_at is not None and talk is not None:
        return max(started_at, ended_at - timedelta(seconds=talk))
    return None


def _wait(
    reported_wait: float | None,
    answered: bool,
    started_at: datetime,
    answered_at: datetime | None,
    ended_at: datetime | None,
) -> float | None:
    """The reported wait, else up to the pick-up (answered) or the end (the others); never
    negative."""
    if reported_wait is not None:
        wait_s: float | None = reported_wait
    elif answered:
        wait_s = (answered_at - started_at).total_seconds() if answered_at else None
    else:
        wait_s = (ended_at - started_at).total_seconds() if ended_at else None
    return None if wait_s is None else max(0.0, wait_s)


def _agent(evs: list[Event], first_answer: Event | None) -> str | None:
    """The agent of the first pick-up, else the first agent an answer-side event names."""
    return (first_answer.agent if first_answer else None) or next(
        (
            e.agent
            for e in evs
            if e.agent and e.kind in (Kind.AGENT_ANSWERED, Kind.AGENT_TAKEN, Kind.DIAL_RESULT)
        ),
        None,
    )


def _from_summary(e: Event) -> Call:
    """The call a call-detail record describes."""
    started = e.at if e.at is not None else e.received_at
    base = e.offered_at or started
    if e.answered_at is not None:
        wait_s: float | None = (e.answered_at - base).total_seconds()
    elif e.ended_at is not None:
        wait_s = (e.ended_at - base).total_seconds()
    else:
        wait_s = None
    answered = e.answered_at is not None
    if answered:
        disposition: Disposition | None = Disposition.ANSWERED
    elif e.ended_at is not None:
        disposition = Disposition(e.status) if e.status else Disposition.ABANDONED
    else:
        disposition = None
    return Call(
        source=e.source,
        external_id=e.call_key,
        direction=e.direction or "inbound",
        line=e.line,
        queue=e.queue,
        caller=e.caller,
        agent=e.agent,
        started_at=started,
        answered_at=e.answered_at,
        ended_at=e.ended_at,
        wait_s=None if wait_s is None else max(0.0, wait_s),
        answered=answered,
        disposition=disposition,
        time_from_events=e.at is not None,
        recording_url=e.recording_url,
    )


def _disposition(answered: bool, results: list[Event], ends: list[Event]) -> Disposition | None:
    """How the call ended; None while nothing says it is over."""
    if answered:
        return Disposition.ANSWERED
    # The queue's or the dial's verdict is more precise than the inbound leg's final status
    # (which is "completed" whenever the caller hangs up after an IVR pick-up).
    for kind in (Kind.QUEUE_RESULT, Kind.DIAL_RESULT):
        verdicts = [e.status for e in results if e.kind is kind and e.status]
        if verdicts:
            return Disposition(sorted(verdicts)[0])
    statuses = sorted(e.status for e in ends if e.status)
    if statuses:
        return Disposition(statuses[0])
    return Disposition.ABANDONED if ends else None

"""Simulated switchboard traffic: calls with a known truth and the Twilio callbacks they cause.

Pure and seeded. Used by ``decroche simulate`` / ``serve --demo`` to feed a service through
its real webhook path, by the tests as traffic whose truth is known, and by the benchmarks.

Both Twilio topologies are produced: **Dial** (the inbound call rings one to three agents in
parallel; child legs report with ``ParentCallSid``) and **Queue** (``<Enqueue action>``,
agents dequeue with ``<Queue url>``). Calls outside opening hours hear a message and hang up.
Times are whole seconds, as Twilio's ``Timestamp`` has one-second resolution.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime

from service.municipality.calendar import Calendar
from service.municipality.model import Municipality, ServiceConfig

Params = dict[str, str]


@dataclass
class SimCall:
    """One simulated call and its truth."""

    sid: str
    line: str
    caller: str
    topology: str  # "dial", "queue", "closed", or "callback" (our call out to a caller)
    started_at: datetime
    answered: bool
    wait_s: int  # the truth: seconds until an agent (answered) or until hang-up
    talk_s: int
    agents: int = 1  # legs rung in parallel (dial topology)
    timed_out: bool = False  # dial: nobody answered before the dial timeout
    callbacks: list[tuple[datetime, Params]] = field(default_factory=list)

    @property
    def answered_at(self) -> datetime | None:
        return self.started_at + timedelta(seconds=self.wait_s) if self.answered else None

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(seconds=self.wait_s + self.talk_s)


def sid(rng: random.Random, prefix: str = "CA") -> str:
    return prefix + "".join(rng.choice("0123456789abcdef") for _ in range(32))


def rfc2822(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC))


def _status(
    call: SimCall,
    leg_sid: str,
    seq: int,
    status: str,
    at: datetime,
    parent: str | None = None,
    to: str | None = None,
    duration: int | None = None,
) -> tuple[datetime, Params]:
    p: Params = {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": leg_sid,
        "CallStatus": status,
        "CallbackSource": "call-progress-events",
        "SequenceNumber": str(seq),
        "Timestamp": rfc2822(at),
        "From": call.caller,
        "To": to or call.line,
        "Direction": "outbound-dial" if parent else "inbound",
    }
    if parent:
        p["ParentCallSid"] = parent
    if duration is not None:
        p["CallDuration"] = str(duration)
    return at, p


def _action(call: SimCall, at: datetime, **extra: str) -> tuple[datetime, Params]:
    p: Params = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call.sid,
        "CallStatus": "in-progress",
        "From": call.caller,
        "To": call.line,
        "Direction": "inbound",
    }
    p.update(extra)
    return at, p


def build_callbacks(call: SimCall, rng: random.Random) -> None:
    """Fill ``call.callbacks`` with what Twilio would send, each at its own instant."""
    s, cbs = call.started_at, call.callbacks
    cbs.append(_status(call, call.sid, 0, "ringing", s))
    cbs.append(_status(call, call.sid, 1, "in-progress", s))
    end = call.ended_at
    if call.topology == "dial":
        legs = [(sid(rng), f"+3361{rng.randrange(10**7):07d}") for _ in range(call.agents)]
        hang = s + timedelta(seconds=call.wait_s)
        for i, (leg, agent) in enumerate(legs):
            cbs.append(_status(call, leg, 0, "initiated", s, call.sid, agent))
            cbs.append(_status(call, leg, 1, "ringing", s + timedelta(seconds=1), call.sid, agent))
            if call.answered and i == 0:
                cbs.append(_status(call, leg, 2, "in-progress", hang, call.sid, agent))
                cbs.append(_status(call, leg, 3, "completed", end, call.sid, agent, call.talk_s))
            else:
                final = "no-answer" if call.timed_out else "canceled"
                cbs.append(_status(call, leg, 2, final, hang, call.sid, agent, 0))
        verdict = "completed" if call.answered else "no-answer" if call.timed_out else "canceled"
        extra = {"DialCallStatus": verdict, "DialCallDuration": str(call.talk_s)}
        if call.answered:
            extra["DialCallSid"] = legs[0][0]
        cbs.append(_action(call, end, **extra))
    elif call.topology == "queue":
        wait = str(call.wait_s)
        if call.answered:
            agent_call = sid(rng)
            cbs.append(
                _action(
                    call,
                    s + timedelta(seconds=call.wait_s),
                    QueueSid=sid(rng, "QU"),
                    QueueTime=wait,
                    DequeingCallSid=agent_call,
                )
            )
            cbs.append(
                _action(call, end, QueueResult="bridged", QueueTime=wait, QueueSid=sid(rng, "QU"))
            )
        else:
            cbs.append(
                _action(call, end, QueueResult="hangup", QueueTime=wait, QueueSid=sid(rng, "QU"))
            )
    cbs.append(_status(call, call.sid, 2, "completed", end, duration=call.wait_s + call.talk_s))


def build_callback_call(call: SimCall) -> None:
    """Twilio's callbacks of a call placed through the REST API from our line to a caller
    (``Direction=outbound-api``): ``wait_s`` is how long it rang, ``answered`` whether they
    picked up."""
    base: Params = {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": call.sid,
        "CallbackSource": "call-progress-events",
        "From": call.line,
        "To": call.caller,
        "Direction": "outbound-api",
    }

    def status(seq: int, value: str, at: datetime, duration: int | None = None) -> None:
        p = {**base, "CallStatus": value, "SequenceNumber": str(seq), "Timestamp": rfc2822(at)}
        if duration is not None:
            p["CallDuration"] = str(duration)
        call.callbacks.append((at, p))

    s = call.started_at
    status(0, "initiated", s)
    status(1, "ringing", s + timedelta(seconds=1))
    if call.answered:
        status(2, "in-progress", s + timedelta(seconds=call.wait_s))
        status(3, "completed", call.ended_at, call.talk_s)
    else:
        status(2, "no-answer", call.ended_at, 0)


@dataclass(frozen=True)
class Profile:
    """How busy and how well staffed the simulated switchboard is."""

    calls_per_open_hour: float = 6.0  # per service, outside rush
    rush_factor: float = 2.5  # opening quarter-hours and after lunch
    mean_wait_s: float = 14.0
    patience_s: float = 75.0
    out_of_hours_share: float = 0.08
    queue_share: float = 0.4  # share of services' calls using the Queue topology
    callback_share: float = 0.75  # lost calls the switchboard calls back
    callback_delay_min: tuple[int, int] = (5, 90)  # how long after the lost call
    callback_reached: float = 0.85  # call-backs the caller answers


def staffing(slug: str) -> float:
    """How long a service makes callers wait, relative to the profile: some services keep
    the commitment, others do not (stable per service, so the demo tells a story)."""
    return 0.35 + (zlib.crc32(slug.encode()) % 100) / 80


def _is_rush(t: time, intervals: tuple[tuple[time, time], ...]) -> bool:
    minutes = t.hour * 60 + t.minute
    return any(0 <= minutes - (a.hour * 60 + a.minute) < 45 for a, _ in intervals)


class TrafficGenerator:
    """Generates calls for a municipality, with a known truth."""

    def __init__(
        self, municipality: Municipality, seed: int, profile: Profile | None = None
    ) -> None:
        self.m = municipality
        self.calendar = Calendar(municipality)
        self.rng = random.Random(seed)
        self.profile = profile or Profile()

    def call(self, svc: ServiceConfig, start: datetime, *, topology: str | None = None) -> SimCall:
        """One call to ``svc`` starting at ``start``, its outcome drawn from the profile."""
        rng, prof = self.rng, self.profile
        start = start.replace(microsecond=0)
        line = rng.choice(svc.lines)
        caller = f"+336{rng.randrange(10**8):08d}"
        if not self.calendar.in_hours(svc, start):
            return self._finish(
                SimCall(sid(rng), line, caller, "closed", start, False, rng.randint(8, 25), 0)
            )
        local = start.astimezone(self.m.tz)
        rush = _is_rush(local.time(), self.calendar.intervals(svc, local.date()))
        mean = prof.mean_wait_s * staffing(svc.slug) * (prof.rush_factor if rush else 1)
        wait = int(rng.expovariate(1 / mean))
        patience = int(rng.expovariate(1 / prof.patience_s))
        if rng.random() < 0.05:
            patience = rng.randint(0, 4)  # short abandon: a wrong number, a second thought
        answered = wait <= patience
        topo = topology or ("queue" if rng.random() < prof.queue_share else "dial")
        timed_out = False
        if topo == "dial" and not answered and patience > 40:
            # Agents' phones stop ringing after the <Dial timeout>: the caller is dropped.
            patience, timed_out = 40, True
        call = SimCall(
            sid(rng),
            line,
            caller,
            topo,
            start,
            answered,
            wait if answered else patience,
            rng.randint(40, 420) if answered else 0,
            agents=rng.randint(1, 3),
            timed_out=timed_out,
        )
        return self._finish(call)

    def _finish(self, call: SimCall) -> SimCall:
        build_callbacks(call, self.rng)
        return call

    def day(self, day: date) -> list[SimCall]:
        """A whole local day of calls for every service (rush at opening and after lunch)."""
        rng, prof, tz = self.rng, self.profile, self.m.tz
        calls: list[SimCall] = []
        for svc in self.m.services:
            for start_t, end_t in self.calendar.intervals(svc, day):
                cursor = datetime.combine(day, start_t, tz)
                stop = datetime.combine(day, end_t, tz)
                while cursor < stop:
                    rush = _is_rush(cursor.time(), ((start_t, end_t),))
                    rate = prof.calls_per_open_hour * (prof.rush_factor if rush else 1) / 3600
                    cursor += timedelta(seconds=rng.expovariate(rate))
                    if cursor < stop:
                        calls.append(self.call(svc, cursor))
            closed_calls = int(prof.calls_per_open_hour * 8 * prof.out_of_hours_share)
            for _ in range(closed_calls):
                at = datetime.combine(day, time(rng.randint(6, 21), rng.randint(0, 59)), tz)
                if not self.calendar.in_hours(svc, at):
                    calls.append(self.call(svc, at))
        calls.sort(key=lambda c: c.started_at)
        return calls

    def is_lost(self, call: SimCall) -> bool:
        """Lost as Engagement 8 counts it: in hours, unanswered, waited long enough."""
        svc = self.m.service_for(call.line, None)
        return (
            call.topology in ("dial", "queue")
            and not call.answered
            and svc is not None
            and call.wait_s >= svc.policy.short_abandon_s
        )

    def call_back(self, lost: SimCall) -> SimCall | None:
        """The switchboard's call back to the caller of a lost call (or None: forgotten)."""
        rng, prof = self.rng, self.profile
        if rng.random() >= prof.callback_share:
            return None
        start = lost.ended_at + timedelta(minutes=rng.uniform(*prof.callback_delay_min))
        reached = rng.random() < prof.callback_reached
        back = SimCall(
            sid(rng),
            lost.line,
            lost.caller,
            "callback",
            start.replace(microsecond=0),
            reached,
            rng.randint(5, 20) if reached else 30,
            rng.randint(30, 240) if reached else 0,
        )
        build_callback_call(back)
        return back

    def call_backs(self, calls: list[SimCall]) -> list[SimCall]:
        """Call-backs of the lost calls among ``calls``, in time order."""
        backs = [self.call_back(c) for c in calls if self.is_lost(c)]
        return sorted((b for b in backs if b is not None), key=lambda b: b.started_at)

    def live(self, now: datetime) -> SimCall:
        """One call starting ``now`` on a line chosen at random."""
        svc = self.rng.choice(self.m.services)
        return self.call(svc, now)

"""Who must be called back: pure rules over a caller's lost calls (``engagement8.md``).

A *lost call* is one the figures count as lost: inbound, in hours, not answered, ended,
waited at least ``short_abandon_s``. A caller is to be called back from their first lost
call that nothing has closed since: a later call of theirs answered by an agent, an
answered call the municipality placed to them, or a hand-made mark. Callers whose number
was withheld cannot be called back and are not listed. The call-back is *due* by the end of
the next opening day of the service after the lost call; after that it is overdue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.callbacks.model import LostCallRow
from service.municipality.calendar import Calendar, day_start
from service.municipality.model import ServiceConfig


@dataclass(frozen=True)
class LostCall:
    """A lost call not closed since (the query already applied the closing rules)."""

    call_id: int
    caller_hash: str
    caller_last2: str | None
    caller_number: str | None
    started_at: datetime
    wait_s: float
    service: ServiceConfig


@dataclass(frozen=True)
class Callback:
    """One caller to call back: their first open lost call, and how many they made."""

    id: int  # the first open lost call's id: what ``POST /callbacks/{id}/done`` names
    caller_hash: str
    caller_last2: str | None
    caller_number: str | None
    service: ServiceConfig
    first_call_at: datetime
    last_call_at: datetime
    attempts: int
    wait_s: float  # how long they waited on the first lost call
    due_by: datetime | None  # end of the service's next opening day (None: none in a year)

    def overdue(self, now: datetime) -> bool:
        return self.due_by is not None and now > self.due_by


def is_lost(
    calendar: Calendar, service: ServiceConfig | None, started_at: datetime, wait_s: float | None
) -> bool:
    """Whether an ended, unanswered inbound call counts as lost (offered, not answered)."""
    if service is None or not calendar.in_hours(service, started_at):
        return False
    return wait_s is not None and wait_s >= service.policy.short_abandon_s


def due_by(calendar: Calendar, service: ServiceConfig, at: datetime) -> datetime | None:
    """The end of the service's next opening day after the local day of ``at``."""
    day = at.astimezone(calendar.tz).date()
    for step in range(1, 366):
        nxt = day + timedelta(days=step)
        if calendar.is_open_day(service, nxt):
            return day_start(nxt + timedelta(days=1), calendar.tz)
    return None


def callbacks(calendar: Calendar, lost: Iterable[LostCall]) -> list[Callback]:
    """One entry per caller, oldest first call first."""
    by_caller: dict[str, list[LostCall]] = {}
    for call in lost:
        by_caller.setdefault(call.caller_hash, []).append(call)
    out = []
    for calls in by_caller.values():
        calls.sort(key=lambda c: (c.started_at, c.call_id))
        first, last = calls[0], calls[-1]
        out.append(
            Callback(
                id=first.call_id,
                caller_hash=first.caller_hash,
                caller_last2=last.caller_last2,
                caller_number=next(
                    (c.caller_number for c in reversed(calls) if c.caller_number), None
                ),
                service=first.service,
                first_call_at=first.started_at,
                last_call_at=last.started_at,
                attempts=len(calls),
                wait_s=first.wait_s,
                due_by=due_by(calendar, first.service, first.started_at),
            )
        )
    out.sort(key=lambda c: (c.first_call_at, c.id))
    return out


def open_callbacks_from(calendar: Calendar, rows: Iterable[LostCallRow]) -> list[Callback]:
    """The call-backs from the rows of ``queries.open_unanswered`` (lost calls only)."""
    m = calendar.m
    lost: list[LostCall] = []
    for r in rows:
        svc, wait_s = m.service_for(r["line"], r["queue"]), r["wait_s"]
        # (``is_lost`` refuses a call without a wait; checked here too, it types ``wait_s``.)
        if svc is None or wait_s is None or not is_lost(calendar, svc, r["started_at"], wait_s):
            continue
        lost.append(
            LostCall(
                call_id=r["id"],
                caller_hash=r["caller_hash"],
                caller_last2=r["caller_last2"],
                caller_number=r["caller_number"],
                started_at=r["started_at"],
                wait_s=float(wait_s),
                service=svc,
            )
        )
    return callbacks(calendar, lost)

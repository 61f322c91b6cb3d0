"""Where a slot the service could not honour goes (pure): a later slot of the same stratum.

A slot misfires when no instance could act at its time (the service was down). Its
replacement keeps what the results compare: the same target, the same half-day and the
same moment of the day (opening, lunch, closing or core), later in the period: the same day
when that moment still has room, then the same weekday of later weeks (the weekday is a
stratum of the results too), then any weekday, each in date order. The new slot obeys
the plan's rules: an opening time of the service with ``call_minutes`` left, no other
call to the target that day, at least ``min_gap_minutes`` from the target's other calls,
an evaluator who is available and free (the planned one first, then the others, least
loaded first). None: the call is missed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from campaigns.plan.slots import (
    HALVES,
    availability_for,
    epoch_minutes,
    from_minutes,
    starts,
    target_leaves,
)
from campaigns.spec import CampaignSpec
from service.municipality.calendar import Calendar


@dataclass(frozen=True)
class Slot:
    """A planned call as the scheduler sees it."""

    scheduled_at: datetime
    service: str
    number: str
    evaluator: str
    half_day: str
    moment: str


@dataclass(frozen=True)
class Busy:
    """The other calls of the campaign still to happen or done (not the one being moved)."""

    scheduled_at: datetime
    service: str
    number: str
    evaluator: str


def new_slot(
    spec: CampaignSpec,
    calendar: Calendar,
    slot: Slot,
    others: Sequence[Busy],
    not_before: datetime,
) -> tuple[datetime, str] | None:
    """The replacement start and evaluator for ``slot``, or None when its stratum has no
    room left before ``ends_on``."""
    target = next(
        (t for t in spec.targets if (t.service, t.number) == (slot.service, slot.number)), None
    )
    if target is None:
        return None
    tz = calendar.tz
    avail = availability_for(spec, tz)
    leaves, _ = target_leaves(calendar, spec, target, avail, epoch_minutes(not_before))
    half = HALVES.index(slot.half_day) if slot.half_day in HALVES else None
    mine = [o for o in others if (o.service, o.number) == (slot.service, slot.number)]
    taken_days = {o.scheduled_at.astimezone(tz).date() for o in mine}
    target_starts = [epoch_minutes(o.scheduled_at) for o in mine]
    by_evaluator: dict[str, list[int]] = {}
    for o in others:
        by_evaluator.setdefault(o.evaluator, []).append(epoch_minutes(o.scheduled_at))
    load = Counter(o.evaluator for o in others)
    emails = [e.email for e in spec.evaluators]
    order = sorted(
        range(len(emails)),
        key=lambda i: (emails[i] != slot.evaluator, load[emails[i]], i),
    )
    weekday = slot.scheduled_at.astimezone(tz).weekday()
    candidates = [lf for lf in leaves if lf.half == half and lf.day not in taken_days]
    candidates.sort(key=lambda lf: (lf.day.weekday() != weekday, lf.day))
    for leaf in candidates:
        for s in starts(leaf.ranges_for(slot.moment)):
            if any(abs(s - t) < max(spec.min_gap_minutes, 1) for t in target_starts):
                continue
            for i in order:
                busy = by_evaluator.get(emails[i], [])
                if avail.allows(i, leaf.day, s) and all(
                    abs(s - t) >= spec.call_minutes for t in busy
                ):
                    return from_minutes(s, tz), emails[i]
    return None

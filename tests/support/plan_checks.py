"""The seven guarantees of a plan (``shared/spec/campaigns.md``), checked from scratch.

Written apart from the planner on purpose: it reads the municipality's hours and the
calendar (``Calendar.in_hours``, holidays, closures) directly, in local wall-clock time,
and never uses the planner's slots, so a planner bug cannot hide behind its own helpers.
Each check returns the list of violations (empty when the guarantee holds).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from campaigns.plan.planner import PlannedCall
from campaigns.spec import CampaignSpec, Evaluator, Target
from service.municipality.calendar import Calendar
from service.municipality.tables import Interval

NOON = time(13, 0)


def local_end(day: date, end: time, cal: Calendar) -> datetime:
    if end == time.max:
        return datetime.combine(day + timedelta(days=1), time(), cal.tz)
    return datetime.combine(day, end, cal.tz)


def containing(intervals: Sequence[Interval], t: time) -> Interval | None:
    return next(((a, b) for a, b in intervals if a <= t < b), None)


def fits(intervals: Sequence[Interval], at: datetime, minutes: int, cal: Calendar) -> bool:
    """``at`` lies in one of the local intervals with ``minutes`` left before its end."""
    local = at.astimezone(cal.tz)
    iv = containing(intervals, local.time().replace(tzinfo=None))
    if iv is None:
        return False
    return at + timedelta(minutes=minutes) <= local_end(local.date(), iv[1], cal)


def available(e: Evaluator, at: datetime, minutes: int, cal: Calendar) -> bool:
    local = at.astimezone(cal.tz)
    if local.date() in e.unavailable:
        return False
    if e.availability is None:
        return True
    return fits(e.availability.get(local.weekday(), ()), at, minutes, cal)


def calls_of(plan: Sequence[PlannedCall], t: Target) -> list[PlannedCall]:
    return [c for c in plan if (c.service, c.number) == (t.service, t.number)]


_STARTS: dict[tuple[int, str, date], list[tuple[datetime, int]]] = {}


def possible_starts(
    spec: CampaignSpec, cal: Calendar, t: Target, day: date
) -> list[tuple[datetime, int]]:
    """Every 5-minute start of the day where a call of ``t`` may go, with its half-day."""
    key = (id(spec), t.key, day)
    if key not in _STARTS:
        _STARTS[key] = _possible_starts(spec, cal, t, day)
    return _STARTS[key]


def _possible_starts(
    spec: CampaignSpec, cal: Calendar, t: Target, day: date
) -> list[tuple[datetime, int]]:
    svc = cal.m.service(t.service)
    assert svc is not None
    out = []
    for a, b in cal.intervals(svc, day):
        at = datetime.combine(day, a, cal.tz)
        at += timedelta(minutes=(-at.minute) % 5)
        end = local_end(day, b, cal)
        while at + timedelta(minutes=spec.call_minutes) <= end:
            if any(available(e, at, spec.call_minutes, cal) for e in spec.evaluators):
                half = 0 if at.astimezone(cal.tz).time() < NOON else 1
                out.append((at, half))
            at += timedelta(minutes=5)
    return out


def period_days(spec: CampaignSpec) -> list[date]:
    n = (spec.ends_on - spec.starts_on).days + 1
    return [spec.starts_on + timedelta(days=i) for i in range(n)]


def check_counts_and_period(
    spec: CampaignSpec, plan: Sequence[PlannedCall], cal: Calendar
) -> list[str]:
    """1. each target gets exactly its calls, inside the period."""
    bad = []
    for t in spec.targets:
        mine = calls_of(plan, t)
        if len(mine) != t.calls:
            bad.append(f"{t.key}: {len(mine)} calls instead of {t.calls}")
        for c in mine:
            d = c.scheduled_at.astimezone(cal.tz).date()
            if not spec.starts_on <= d <= spec.ends_on:
                bad.append(f"{t.key}: {c.scheduled_at} outside the period")
    if len(plan) != spec.total_calls:
        bad.append(f"{len(plan)} calls in the plan for {spec.total_calls} asked")
    return bad


def check_hours(spec: CampaignSpec, plan: Sequence[PlannedCall], cal: Calendar) -> list[str]:
    """2. inside an opening interval with call_minutes left; never a holiday or closure."""
    bad = []
    for c in plan:
        svc = cal.m.service(c.service)
        assert svc is not None
        local = c.scheduled_at.astimezone(cal.tz)
        d = local.date()
        if cal.holiday(d) or d in cal.m.closures or d in svc.closures:
            bad.append(f"{c.service}: {local} is a holiday or a closure")
        if not cal.in_hours(svc, c.scheduled_at):
            bad.append(f"{c.service}: {local} is out of hours")
        if not fits(svc.hours.get(d.weekday(), ()), c.scheduled_at, spec.call_minutes, cal):
            bad.append(f"{c.service}: {local} leaves less than {spec.call_minutes} min")
        if c.scheduled_at.utcoffset() != local.utcoffset():
            bad.append(f"{c.scheduled_at} is not given in the municipality's zone")
    return bad


def open_days(spec: CampaignSpec, cal: Calendar, t: Target) -> list[date]:
    return [d for d in period_days(spec) if possible_starts(spec, cal, t, d)]


def check_gaps(spec: CampaignSpec, plan: Sequence[PlannedCall], cal: Calendar) -> list[str]:
    """3. min_gap_minutes between a target's calls; one a day while there are enough days."""
    bad = []
    for t in spec.targets:
        mine = sorted(c.scheduled_at for c in calls_of(plan, t))
        for a, b in itertools.pairwise(mine):
            if (b - a) < timedelta(minutes=spec.min_gap_minutes):
                bad.append(f"{t.key}: {a} and {b} are closer than {spec.min_gap_minutes} min")
        per_day = Counter(x.astimezone(cal.tz).date() for x in mine)
        days = open_days(spec, cal, t)
        if t.calls <= len(days) and per_day and max(per_day.values()) > 1:
            bad.append(f"{t.key}: two calls on one day with {len(days)} open days for {t.calls}")
        if per_day and days:
            even = -(-t.calls // len(days))
            if max(per_day.values()) > max(1, even):
                bad.append(f"{t.key}: {max(per_day.values())} calls on one day (even: {even})")
    return bad


def check_evaluators(spec: CampaignSpec, plan: Sequence[PlannedCall], cal: Calendar) -> list[str]:
    """4. never two calls of one evaluator closer than call_minutes; only in availability."""
    bad = []
    by_email = {e.email: e for e in spec.evaluators}
    for email, e in by_email.items():
        mine = sorted(c.scheduled_at for c in plan if c.evaluator == email)
        for a, b in itertools.pairwise(mine):
            if (b - a) < timedelta(minutes=spec.call_minutes):
                bad.append(f"{email}: {a} and {b} overlap")
        for at in mine:
            if not available(e, at, spec.call_minutes, cal):
                bad.append(f"{email}: {at} outside their availability")
    for c in plan:
        if c.evaluator not in by_email:
            bad.append(f"{c.evaluator} is not an evaluator of the campaign")
    return bad


def _leaf_key(at: datetime, cal: Calendar, monday: date) -> tuple[int, int, int, date]:
    local = at.astimezone(cal.tz)
    return (
        (local.date() - monday).days // 7,
        local.weekday(),
        int(local.time() >= NOON),
        local.date(),
    )


def check_spread(
    spec: CampaignSpec,
    plan: Sequence[PlannedCall],
    cal: Calendar,
    fixed: Sequence[PlannedCall] = (),
) -> list[str]:
    """5. counts per week, weekday and half-day as even as the calendar allows.

    For a target with at most one call a day: a week (weekday, half-day) holding two calls
    more than another has no call that could move there — to a free date of the other week
    with the same weekday and half-day (resp. the same week and half-day; the same date),
    where a call at a fragile edge must find the same edge, and some evaluator available
    then has no other call within call_minutes (another target's call may hold the only
    one). Calls in ``fixed`` (kept by a re-plan) count but cannot move.
    """
    bad = []
    monday = spec.starts_on - timedelta(days=spec.starts_on.weekday())
    call = timedelta(minutes=spec.call_minutes)
    gap = timedelta(minutes=spec.min_gap_minutes)
    for t in spec.targets:
        mine = calls_of(plan, t)
        if t.calls > len(open_days(spec, cal, t)):
            continue  # several calls a day: covered by check_gaps' even share
        taken = {c.scheduled_at.astimezone(cal.tz).date() for c in mine}

        def usable(at: datetime, day: date, mine: list[PlannedCall] = mine) -> bool:
            others = [c for c in plan if c.scheduled_at.astimezone(cal.tz).date() != day
                      or c not in mine]  # fmt: skip
            if any(
                abs(c.scheduled_at - at) < gap
                for c in mine
                if c.scheduled_at.astimezone(cal.tz).date() != day
            ):
                return False
            return any(
                available(e, at, spec.call_minutes, cal)
                and not any(
                    c.evaluator == e.email and abs(c.scheduled_at - at) < call for c in others
                )
                for e in spec.evaluators
            )

        # (week, weekday, half) and (date, half) with a free date → the edges offered there
        free: dict[tuple[int, int, int], set[str]] = defaultdict(set)
        halves_free: dict[tuple[date, int], set[str]] = defaultdict(set)
        for d in period_days(spec):
            for at, half in possible_starts(spec, cal, t, d):
                if not usable(at, d):
                    continue
                kinds = edge_kinds_at(spec, cal, t, at) | {"core"}
                if d not in taken:
                    free[((d - monday).days // 7, d.weekday(), half)] |= kinds
                halves_free[(d, half)] |= kinds
        keys = [_leaf_key(c.scheduled_at, cal, monday) for c in mine]
        movable = [
            (_leaf_key(c.scheduled_at, cal, monday), c.moment) for c in mine if c not in fixed
        ]
        weeks = Counter(k[0] for k in keys)
        weekdays = Counter(k[1] for k in keys)
        halves = Counter(k[2] for k in keys)
        for (wb, wd, h), offered in free.items():
            for (w, dw, hh, _), moment in movable:
                if (dw, hh) == (wd, h) and moment in offered and weeks[wb] + 2 <= weeks[w]:
                    bad.append(f"{t.key}: week {w} has {weeks[w]} calls, week {wb} {weeks[wb]}")
                if (w, hh) == (wb, h) and moment in offered and weekdays[wd] + 2 <= weekdays[dw]:
                    bad.append(
                        f"{t.key}: weekday {dw} has {weekdays[dw]} calls, weekday {wd} "
                        f"{weekdays[wd]}"
                    )
        for (_, _, h, day), moment in movable:
            other = 1 - h
            if halves[other] + 2 <= halves[h] and moment in halves_free.get((day, other), set()):
                bad.append(
                    f"{t.key}: half-day {h} has {halves[h]} calls, the other {halves[other]}"
                )
    return bad


def edge_kinds_at(spec: CampaignSpec, cal: Calendar, t: Target, at: datetime) -> set[str]:
    """The fragile edges a start falls in: the first or last quarter-hour in which a call
    may start after an opening / before a closing (the day's own, or lunch)."""
    svc = cal.m.service(t.service)
    assert svc is not None
    local = at.astimezone(cal.tz)
    ivs = cal.intervals(svc, local.date())
    kinds = set()
    for i, (a, b) in enumerate(ivs):
        start = datetime.combine(local.date(), a, cal.tz)
        last = local_end(local.date(), b, cal) - timedelta(minutes=spec.call_minutes)
        if start <= at < start + timedelta(minutes=15):
            kinds.add("opening" if i == 0 else "lunch")
        if last - timedelta(minutes=15) < at <= last:
            kinds.add("closing" if i == len(ivs) - 1 else "lunch")
    return kinds


def check_edges(
    spec: CampaignSpec, plan: Sequence[PlannedCall], cal: Calendar, sampled_too: bool = True
) -> list[str]:
    """5 (end). The opening, closing and lunch edges are sampled; moments are truthful.

    ``sampled_too=False`` checks only that moments are truthful: when evaluators are scarce
    (one evaluator, edges shorter than a call), two targets may compete for one edge."""
    bad = []
    for t in spec.targets:
        mine = calls_of(plan, t)
        present: set[str] = set()
        for d in period_days(spec):
            for at, _ in possible_starts(spec, cal, t, d):
                present |= edge_kinds_at(spec, cal, t, at)
        sampled: Counter[str] = Counter()
        for c in mine:
            kinds = edge_kinds_at(spec, cal, t, c.scheduled_at)
            if c.moment == "core" and kinds:
                bad.append(f"{t.key}: {c.scheduled_at} is at the {kinds} edge but says core")
            if c.moment != "core" and c.moment not in kinds:
                bad.append(f"{t.key}: {c.scheduled_at} says {c.moment}, is at {kinds or 'none'}")
            sampled.update(kinds)
        if sampled_too and t.calls >= 2 * len(present):
            for kind in present:
                if not sampled[kind]:
                    bad.append(f"{t.key}: the {kind} edge is never sampled")
    return bad


def check_rotation(spec: CampaignSpec, plan: Sequence[PlannedCall], cal: Calendar) -> list[str]:
    """6. scenarios rotate evenly per target; evaluators share the load evenly."""
    bad = []
    for t in spec.targets:
        suited = [s.id for s in spec.scenarios if s.suits(t.service)]
        got = Counter(c.scenario for c in calls_of(plan, t))
        if not suited:
            if set(got) != {None}:
                bad.append(f"{t.key}: scenarios {set(got)} without any defined")
            continue
        if set(got) - set(suited):
            bad.append(f"{t.key}: unsuited scenarios {set(got) - set(suited)}")
        counts = [got.get(s, 0) for s in suited]
        if max(counts) - min(counts) > 1:
            bad.append(f"{t.key}: scenarios unevenly used {dict(got)}")
    loads = Counter(c.evaluator for c in plan)
    by_email = {e.email: e for e in spec.evaluators}
    starts = defaultdict(list)
    for c in plan:
        starts[c.evaluator].append(c.scheduled_at)
    for heavy in by_email:
        for light, e in by_email.items():
            if loads[heavy] < loads[light] + 2:
                continue
            for c in plan:
                if c.evaluator != heavy or not available(e, c.scheduled_at, spec.call_minutes, cal):
                    continue
                near = [
                    x
                    for x in starts[light]
                    if abs(x - c.scheduled_at) < timedelta(minutes=spec.call_minutes)
                ]
                if not near:
                    bad.append(
                        f"{heavy} has {loads[heavy]} calls, {light} {loads[light]} "
                        f"could take {c.scheduled_at}"
                    )
                    break
    return bad


CHECKS = (
    check_counts_and_period,
    check_hours,
    check_gaps,
    check_evaluators,
    check_spread,
    check_edges,
    check_rotation,
)


def violations(
    spec: CampaignSpec,
    plan: Sequence[PlannedCall],
    cal: Calendar,
    fixed: Sequence[PlannedCall] = (),
    *,
    edges_sampled: bool = True,
) -> list[str]:
    """Every guarantee broken by ``plan``; ``fixed`` are calls a re-plan kept."""
    out: list[str] = []
    _STARTS.clear()
    for check in CHECKS:
        if check is check_spread:
            found = check_spread(spec, plan, cal, fixed)
        elif check is check_edges:
            found = check_edges(spec, plan, cal, edges_sampled)
        else:
            found = check(spec, plan, cal)
        out.extend(f"{check.__name__}: {v}" for v in found)
    return out

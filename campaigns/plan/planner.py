"""The mystery-call planner (pure, seeded): a campaign and a calendar in, a plan out.

A plan holds the seven guarantees of ``shared/spec/campaigns.md`` (« The plan »), or the
planner raises :class:`PlanError` saying which cannot be met and where. In four steps:

1. **Where calls may start** (``slots.py``): each target's half-days with the starts its
   opening hours, holidays, closures and the evaluators' availability allow.
2. **Which half-days** (``balance.py``): per target, counts per week, weekday and half-day
   made as even as the calendar allows; at most one call a day while the period has enough
   open days, else an even share per day. Then the fragile edges (opening, closing, lunch)
   are given their share of the calls; the other calls start outside the edges.
3. **Which minute and which evaluator** (``placement.py``): the calls with the fewest
   possible starts first; each takes a seeded draw among the starts where the least-loaded
   evaluator who can call then is free (no other call within ``call_minutes``) and the
   target's other calls are ``min_gap_minutes`` away; evaluators are then evened out.
4. **Which scenario**: per target, in time order, the suited scenario used least so far
   (a seeded order breaks ties), so scenarios rotate evenly.

A re-plan passes the calls to keep (``kept``): they count in every balance, block their
evaluator's time and their target's day, and only the missing calls are planned, from
``not_before`` on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypedDict

from campaigns.plan.balance import (
    Placed,
    Spread,
    assign_edges,
    choose_leaves,
    edge_quotas,
    reach_edges,
)
from campaigns.plan.placement import NoRoom, Placer, TargetState, Unit, merge, moment_of, spaced
from campaigns.plan.rng import Rng
from campaigns.plan.slots import (
    HALVES,
    NOON,
    PROBE_HOURS,
    STEP,
    Range,
    availability_for,
    ceil_step,
    epoch_minutes,
    from_minutes,
    intersect,
    target_leaves,
)
from campaigns.spec import CampaignSpec, Target
from service.municipality.calendar import Calendar


class PlanError(ValueError):
    """The campaign cannot be planned; ``problems`` says which guarantee fails, and where."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class PlannedCallJson(TypedDict):
    """A planned call's JSON form (times ISO 8601 with their offset)."""

    scheduled_at: str
    service: str
    number: str
    scenario: str | None
    evaluator: str
    mode: str
    half_day: str
    moment: str


@dataclass(frozen=True)
class PlannedCall:
    scheduled_at: datetime
    service: str
    number: str
    scenario: str | None
    evaluator: str
    mode: str
    half_day: str  # morning | afternoon
    moment: str  # opening | lunch | closing | core

    def as_dict(self) -> PlannedCallJson:
        return {
            "scheduled_at": self.scheduled_at.isoformat(),
            "service": self.service,
            "number": self.number,
            "scenario": self.scenario,
            "evaluator": self.evaluator,
            "mode": self.mode,
            "half_day": self.half_day,
            "moment": self.moment,
        }


@dataclass(frozen=True)
class KeptCall:
    """A call a re-plan keeps (already evaluated)."""

    scheduled_at: datetime
    service: str
    number: str
    evaluator: str
    scenario: str | None
    moment: str


@dataclass(frozen=True)
class Plan:
    calls: tuple[PlannedCall, ...]
    notes: tuple[str, ...] = ()


def plan_campaign(
    spec: CampaignSpec,
    calendar: Calendar,
    *,
    kept: Sequence[KeptCall] = (),
    not_before: datetime | None = None,
) -> Plan:
    """Plan ``spec`` on ``calendar``; raise :class:`PlanError` when it cannot be done."""
    return _Planner(spec, calendar, kept, not_before).run()


class _Planner:
    def __init__(
        self,
        spec: CampaignSpec,
        calendar: Calendar,
        kept: Sequence[KeptCall],
        not_before: datetime | None,
    ) -> None:
        self.spec = spec
        self.cal = calendar
        self.tz = calendar.tz
        self.kept = kept
        self.not_before = epoch_minutes(not_before) if not_before is not None else None
        self.avail = availability_for(spec, self.tz)
        self.rng = Rng(f"{spec.seed}")
        self.monday = spec.starts_on - timedelta(days=spec.starts_on.weekday())
        self.weeks = (spec.ends_on - self.monday).days // 7 + 1
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.gap = spec.min_gap_minutes
        self.call = spec.call_minutes
        self.evaluator_index = {e.email: i for i, e in enumerate(spec.evaluators)}
        self.placer = Placer(self.avail, spec.seed, spec.min_gap_minutes, spec.call_minutes)

    # -- the checks that say what cannot be done ------------------------------------------

    def _where(self, t: Target) -> str:
        several = sum(x.service == t.service for x in self.spec.targets) > 1
        return f"{t.service} ({t.number})" if several else t.service

    def _period(self) -> str:
        return f"between {self.spec.starts_on} and {self.spec.ends_on}"

    def _check_target(self, tt: TargetState, opened: int, kept_days: Counter[date]) -> None:
        t, spec = tt.target, self.spec
        where = self._where(t)
        if not tt.leaves:
            if opened == 0 and spec.mode == "probe":
                lo, hi = (f"{t:%H:%M}" for t in PROBE_HOURS)
                self.problems.append(
                    f"{where}: it is never closed between {lo} and {hi} for "
                    f"{spec.call_minutes} minutes {self._period()}: nothing to probe"
                )
            elif opened == 0:
                self.problems.append(
                    f"{where}: no opening time {self._period()} leaves {spec.call_minutes} "
                    "minutes before closing (hours, holidays and closures considered)"
                )
            else:
                self.problems.append(
                    f"{where}: no evaluator is available during its opening hours "
                    f"{self._period()} (check the evaluators' availability)"
                )
            return
        free_days = {lf.day for lf in tt.leaves} - set(kept_days)
        all_days = {lf.day for lf in tt.leaves}
        if tt.missing <= len(free_days):
            tt.day_cap = 1
        else:
            cap = 2
            while sum(max(0, cap - kept_days.get(d, 0)) for d in all_days) < tt.missing:
                cap += 1
            tt.day_cap = cap
            self.notes.append(
                f"{where}: {t.calls} calls for {len(all_days)} days when a call is possible "
                f"{self._period()}: up to {cap} calls a day"
            )
        fits = self._most_calls(tt, kept_days)
        if fits < tt.missing:
            detail = ("one a day" if tt.day_cap == 1 else f"at most {tt.day_cap} a day") + (
                f", {spec.min_gap_minutes} minutes apart" if spec.min_gap_minutes else ""
            )
            self.problems.append(
                f"{where}: {tt.missing} calls to place but only {fits} fit in its opening "
                f"hours {self._period()} ({len(all_days)} days when a call is possible; "
                f"{detail})"
            )

    def _most_calls(self, tt: TargetState, kept_days: Counter[date]) -> int:
        """The largest number of calls the target's starts can hold with the gap and the
        day cap: taking the earliest possible start each time is optimal for both."""
        step = max(STEP, ceil_step(self.gap)) if self.gap else STEP
        day_count = Counter(kept_days)
        taken, last = 0, None
        for leaf in tt.leaves:
            for lo, hi in leaf.ranges:
                s = lo if last is None else max(lo, ceil_step(last + self.gap))
                while s <= hi and day_count[leaf.day] < tt.day_cap:
                    taken += 1
                    day_count[leaf.day] += 1
                    last = s
                    s += step
                    if taken >= tt.missing:
                        return taken
        return taken

    def _check_evaluators(self, targets: list[TargetState]) -> None:
        """Enough evaluator time in all for the calls asked."""
        by_day: dict[date, list[Range]] = {}
        for tt in targets:
            for lf in tt.leaves:
                by_day.setdefault(lf.day, []).extend(lf.ranges)
        step = ceil_step(self.call)
        capacity = 0
        for day, ranges in by_day.items():
            merged = merge(sorted(ranges))
            for i in range(len(self.spec.evaluators)):
                own = self.avail.of(i, day)
                capacity += spaced(merged if own is None else intersect(merged, own), step)
        needed = sum(tt.missing for tt in targets)
        if capacity < needed:
            self.problems.append(
                f"evaluators: {needed} calls to place but the evaluators' availability holds "
                f"at most {capacity} calls of {self.call} minutes during the services' opening "
                f"hours {self._period()} (add evaluators or widen their availability)"
            )

    def _check_kept(self, kept_by_target: dict[str, list[KeptCall]]) -> None:
        """A re-plan keeps what is done: the new campaign must still hold every kept call."""
        by_key = {t.key: t for t in self.spec.targets}
        for key, kept in kept_by_target.items():
            t = by_key.get(key)
            if t is None:
                self.problems.append(
                    f"{key}: {len(kept)} call(s) done or awaiting evaluation cannot leave "
                    "the campaign (keep this target)"
                )
                continue
            if len(kept) > t.calls:
                self.problems.append(
                    f"{self._where(t)}: {len(kept)} call(s) are done or awaiting evaluation, "
                    f"so calls cannot drop to {t.calls}"
                )
            last = max(k.scheduled_at.astimezone(self.tz).date() for k in kept)
            if last > self.spec.ends_on:
                self.problems.append(
                    f"{self._where(t)}: a kept call is on {last:%d/%m/%Y}, after ends_on "
                    f"{self.spec.ends_on:%d/%m/%Y}"
                )

    # -- the steps -------------------------------------------------------------------------

    def run(self) -> Plan:
        spec = self.spec
        kept_by_target: dict[str, list[KeptCall]] = {}
        for k in self.kept:
            kept_by_target.setdefault(f"{k.service} {k.number}", []).append(k)
        self._check_kept(kept_by_target)
        targets: list[TargetState] = []
        for i, t in enumerate(spec.targets):
            kept = kept_by_target.get(t.key, [])
            leaves, opened = target_leaves(self.cal, spec, t, self.avail, self.not_before)
            tt = TargetState(i, t, leaves, max(0, t.calls - len(kept)))
            kept_days = Counter(k.scheduled_at.astimezone(self.tz).date() for k in kept)
            tt.starts = sorted(epoch_minutes(k.scheduled_at) for k in kept)
            tt.days = Counter(kept_days)
            if spec.scenarios and not any(s.suits(t.service) for s in spec.scenarios):
                self.problems.append(f"{self._where(t)}: no scenario suits this service")
            if tt.missing:
                self._check_target(tt, opened, kept_days)
            targets.append(tt)
        for k in self.kept:
            ei = self.evaluator_index.get(k.evaluator)
            if ei is not None:
                self.placer.book(ei, epoch_minutes(k.scheduled_at))
        if not self.problems:
            self._check_evaluators([tt for tt in targets if tt.missing])
        if self.problems:
            raise PlanError(self.problems)
        units: list[Unit] = []
        for tt in targets:
            units.extend(self._spread(tt, kept_by_target.get(tt.target.key, [])))
        try:
            self.placer.place_all(units)
        except NoRoom as exc:
            raise PlanError([self._no_room(exc.unit)]) from None
        self.placer.settle(units)
        self.placer.even_out(units)
        return Plan(self._calls(units, targets, kept_by_target), tuple(self.notes))

    def _spread(self, tt: TargetState, kept: list[KeptCall]) -> list[Unit]:
        """Step 2 for one target: its half-days and their edges."""
        if not tt.missing:
            return []
        rng = Rng(f"{self.spec.seed}:{tt.target.key}")
        step = max(STEP, ceil_step(self.gap)) if self.gap else STEP
        leaf_cap = [
            1 if tt.day_cap == 1 else max(1, min(tt.day_cap, spaced(lf.ranges, step)))
            for lf in tt.leaves
        ]
        spread = Spread(tt.leaves, self.weeks, leaf_cap, tt.day_cap)
        for k in kept:
            local = k.scheduled_at.astimezone(self.tz)
            spread.place_fixed(
                Placed(
                    week=(local.date() - self.monday).days // 7,
                    weekday=local.weekday(),
                    half=0 if local.time() < NOON else 1,
                    day_index=spread.day_index.get(local.date()),
                )
            )
        tt.spread = spread
        chosen = choose_leaves(spread, tt.missing, rng)
        kinds = frozenset().union(*(lf.kinds for lf in tt.leaves))
        quotas = edge_quotas(tt.target.calls, kinds)
        for k in kept:
            if k.moment in quotas:
                quotas[k.moment] = max(0, quotas[k.moment] - 1)
        moments = assign_edges(tt.leaves, chosen, quotas, rng)
        reach_edges(spread, tt.leaves, chosen, moments, quotas, rng)
        return [Unit(tt, leaf, moment) for leaf, moment in zip(chosen, moments, strict=True)]

    def _no_room(self, unit: Unit) -> str:
        leaf = unit.t.leaves[unit.leaf]
        return (
            f"{self._where(unit.t.target)}: no evaluator free for a call on {leaf.day} "
            f"({HALVES[leaf.half]}) nor on any other day still open to it: every evaluator "
            f"available then already has a call within {self.call} minutes"
            + (f", or its other calls are closer than {self.gap} minutes" if self.gap else "")
        )

    def _calls(
        self, units: list[Unit], targets: list[TargetState], kept: dict[str, list[KeptCall]]
    ) -> tuple[PlannedCall, ...]:
        """Step 4, scenarios, then the plan in time order."""
        spec = self.spec
        out: list[PlannedCall] = []
        for tt in targets:
            t = tt.target
            mine = sorted((u for u in units if u.t is tt), key=lambda u: u.start)
            suited = [s.id for s in spec.scenarios if s.suits(t.service)]
            order = Rng(f"{spec.seed}:{t.key}:scenarios").shuffled(suited)
            used = Counter(k.scenario for k in kept.get(t.key, []))
            for u in mine:
                scenario = None
                if order:
                    scenario = min(order, key=lambda sid: (used[sid], order.index(sid)))
                    used[scenario] += 1
                leaf = tt.leaves[u.leaf]
                out.append(
                    PlannedCall(
                        scheduled_at=from_minutes(u.start, self.tz),
                        service=t.service,
                        number=t.number,
                        scenario=scenario,
                        evaluator=spec.evaluators[u.evaluator].email,
                        mode=spec.mode,
                        half_day=HALVES[leaf.half],
                        moment=moment_of(leaf, u.start),
                    )
                )
        out.sort(key=lambda c: (c.scheduled_at, c.service, c.number))
        return tuple(out)

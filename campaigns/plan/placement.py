"""Step 3 of the planner: a minute and an evaluator for every call (pure, seeded).

The calls with the fewest possible starts go first (those sampling an edge before the
others); each takes a seeded draw among the starts where the least-loaded evaluator who can
call then is free (no other call within ``call_minutes``) and its target's other calls are
``min_gap_minutes`` away. A call that finds none moves to another half-day of its target,
the one keeping its counts most even. Once all are placed, calls displaced that way are
given back a better half-day where one has room (``settle``), and evaluators are evened out
by moving calls from the most loaded to the least loaded wherever the latter can take them.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from campaigns.plan.balance import MAX_PASSES, Spread
from campaigns.plan.rng import Rng
from campaigns.plan.slots import CORE, EDGE_KINDS, STEP, Availability, Leaf, Range, count, starts
from campaigns.spec import Target


@dataclass
class TargetState:
    """What the planner knows of one target while it works."""

    index: int
    target: Target
    leaves: list[Leaf]
    missing: int
    day_cap: int = 1
    spread: Spread | None = None
    starts: list[int] = field(default_factory=list)  # sorted starts of its calls
    days: Counter[date] = field(default_factory=Counter)  # its calls per day


@dataclass
class Unit:
    t: TargetState
    leaf: int
    moment: str | None
    start: int = 0
    evaluator: int = -1


class NoRoom(Exception):
    """No minute with a free evaluator is left for ``unit`` on any day open to it."""

    def __init__(self, unit: Unit) -> None:
        super().__init__(unit)
        self.unit = unit


class Placer:
    """The evaluators' time while calls are placed."""

    def __init__(self, avail: Availability, seed: int, gap: int, call: int) -> None:
        self.avail = avail
        self.seed = seed
        self.gap = gap
        self.call = call
        self.eval_starts: list[list[int]] = [[] for _ in avail.evaluators]
        self.loads = [0] * len(avail.evaluators)

    def book(self, evaluator: int, start: int) -> None:
        """A call kept by a re-plan holds its evaluator's time."""
        bisect.insort(self.eval_starts[evaluator], start)
        self.loads[evaluator] += 1

    def _candidates(self, unit: Unit, leaf: Leaf, moment: str | None, rng: Rng) -> list[int]:
        """The starts to try, in order: an edge's own; else the core's, then the edges'."""
        if moment is not None:
            ordered = rng.shuffled(list(starts(leaf.ranges_for(moment))))
        else:
            core = rng.shuffled(list(starts(leaf.ranges_for(CORE))))
            taken = set(core)
            ordered = core + rng.shuffled([s for s in starts(leaf.ranges) if s not in taken])
        # Even with min_gap_minutes = 0, two calls to one line never start the same minute:
        # the second would only find the line busy.
        return [s for s in ordered if free(unit.t.starts, s, max(self.gap, 1))]

    def _try(self, unit: Unit, leaf_index: int, moment: str | None, rng: Rng) -> bool:
        leaf = unit.t.leaves[leaf_index]
        candidates = self._candidates(unit, leaf, moment, rng)
        if not candidates:
            return False
        order = sorted(range(len(self.loads)), key=lambda i: (self.loads[i], rng.random()))
        for ei in order:
            for s in candidates:
                if self.avail.allows(ei, leaf.day, s) and free(self.eval_starts[ei], s, self.call):
                    self._take(unit, leaf_index, s, ei)
                    return True
        return False

    def _take(self, unit: Unit, leaf_index: int, s: int, ei: int) -> None:
        unit.leaf, unit.start, unit.evaluator = leaf_index, s, ei
        bisect.insort(unit.t.starts, s)
        unit.t.days[unit.t.leaves[leaf_index].day] += 1
        bisect.insort(self.eval_starts[ei], s)
        self.loads[ei] += 1

    def _untake(self, unit: Unit) -> None:
        unit.t.starts.remove(unit.start)
        unit.t.days[unit.t.leaves[unit.leaf].day] -= 1
        self.eval_starts[unit.evaluator].remove(unit.start)
        self.loads[unit.evaluator] -= 1

    def settle(self, units: list[Unit]) -> None:
        """Step 3 (end): calls displaced because an evaluator was busy may have left the
        counts uneven; move single calls to half-days that even them out, wherever a minute
        and an evaluator are free there (a call at an edge keeps to that edge)."""
        rng = Rng(f"{self.seed}:settle")
        for _ in range(MAX_PASSES):
            moved = False
            for unit in rng.shuffled(units):
                spread = unit.t.spread
                assert spread is not None
                here = unit.leaf
                old = (unit.leaf, unit.start, unit.evaluator)
                moment = moment_of(unit.t.leaves[here], unit.start)
                spread.remove(here)
                cost = spread.cost_of_adding()
                better = [int(j) for j in np.argsort(cost, kind="stable") if cost[j] < cost[here]]
                if better:
                    self._untake(unit)
                    for j in better:
                        leaf = unit.t.leaves[j]
                        if moment != CORE and moment not in leaf.kinds:
                            continue
                        if self._try(unit, j, None if moment == CORE else moment, rng):
                            moved = True
                            break
                    else:
                        self._take(unit, *old)
                spread.add(unit.leaf)
            if not moved:
                return

    def place_all(self, units: list[Unit]) -> None:
        """Step 3: a minute and an evaluator for every call, the most constrained first."""
        rng = Rng(f"{self.seed}:minutes")
        keyed = [
            (
                u.moment is None,
                count(u.t.leaves[u.leaf].ranges_for(u.moment or CORE)),
                rng.random(),
                u,
            )
            for u in units
        ]
        for *_, unit in sorted(keyed, key=lambda k: k[:3]):
            if self._try(unit, unit.leaf, unit.moment, rng):
                continue
            if unit.moment is not None and (
                self._elsewhere(unit, rng, unit.moment) or self._try(unit, unit.leaf, None, rng)
            ):
                continue
            if not self._elsewhere(unit, rng, None):
                raise NoRoom(unit)

    def _elsewhere(self, unit: Unit, rng: Rng, moment: str | None) -> bool:
        """Another half-day (offering ``moment``'s edge, if given) for a call that found no
        minute in its own, the one that keeps the counts most even first."""
        spread = unit.t.spread
        assert spread is not None
        spread.remove(unit.leaf)
        cost = spread.cost_of_adding()
        days = unit.t.days
        for j in sorted(range(len(cost)), key=lambda j: (cost[j], rng.random())):
            leaf = unit.t.leaves[j]
            if cost[j] == float("inf") or days[leaf.day] >= unit.t.day_cap or j == unit.leaf:
                continue
            if moment is not None and moment not in leaf.kinds:
                continue
            if self._try(unit, j, moment, rng):
                spread.add(j)
                return True
        spread.add(unit.leaf)
        return False

    def even_out(self, units: list[Unit]) -> None:
        """Move calls from the most loaded evaluators to the least loaded who can take them."""
        for _ in range(len(units) + 1):
            if not self._one_move(units):
                return

    def _one_move(self, units: list[Unit]) -> bool:
        order = sorted(range(len(self.loads)), key=lambda i: self.loads[i])
        for heavy in reversed(order):
            for light in order:
                if self.loads[heavy] < self.loads[light] + 2:
                    break
                for u in units:
                    if u.evaluator != heavy:
                        continue
                    day = u.t.leaves[u.leaf].day
                    if self.avail.allows(light, day, u.start) and free(
                        self.eval_starts[light], u.start, self.call
                    ):
                        self.eval_starts[heavy].remove(u.start)
                        self.loads[heavy] -= 1
                        bisect.insort(self.eval_starts[light], u.start)
                        self.loads[light] += 1
                        u.evaluator = light
                        return True
        return False


def moment_of(leaf: Leaf, start: int) -> str:
    """The fragile edge a start falls in (the opening, then the closing, then lunch)."""
    for kind in EDGE_KINDS:
        if any(lo <= start <= hi for lo, hi in leaf.edges.get(kind, [])):
            return kind
    return CORE


def free(sorted_starts: list[int], s: int, distance: int) -> bool:
    """No start in the list closer to ``s`` than ``distance`` minutes."""
    if distance <= 0:
        return True
    i = bisect.bisect_left(sorted_starts, s - distance + 1)
    return i == len(sorted_starts) or sorted_starts[i] > s + distance - 1


def merge(ranges: list[Range]) -> list[Range]:
    out: list[Range] = []
    for lo, hi in ranges:
        if out and lo <= out[-1][1] + STEP:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def spaced(ranges: Sequence[Range], step: int) -> int:
    """How many starts at least ``step`` minutes apart the (sorted) ranges hold."""
    n, last = 0, None
    for lo, hi in ranges:
        s = lo if last is None else max(lo, last + step)
        if s <= hi:
            k = (hi - s) // step + 1
            n += k
            last = s + (k - 1) * step
    return n

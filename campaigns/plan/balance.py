"""Spreading one target's calls over weeks, weekdays and half-days (pure, seeded).

The half-days of a target (its *leaves*) each take at most one call (or, when the period
has fewer open days than calls, as many as fit with the minimum gap, never more than an
even share per day). The calls go where they make the counts most even, measured by

    J = W·Σ_weeks n² + W·Σ_weekdays n² + W·Σ_half-days n² + Σ_(weekday, half-day) n²

with ``W`` larger than any (weekday, half-day) count can be. A greedy placement is improved
by moving single calls while ``J`` decreases. At the end no single move helps, which means:

- a week with two calls more than another has none that could move to that other week on
  the same weekday and half-day;
- the same for two weekdays within one week, and for the two half-days of one date;

that is, the counts are as even as the calendar allows (a week shortened by a holiday, a
Wednesday without an afternoon, a service closed on Saturdays). The calls that sample a
fragile edge move only to half-days offering that edge. Ties are broken by a seeded draw,
so the same seed gives the same choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from campaigns.plan.rng import Rng
from campaigns.plan.slots import EDGE_KINDS, Leaf

MAX_PASSES = 30


@dataclass(frozen=True)
class Placed:
    """Where a call already is (an evaluated call kept by a re-plan)."""

    week: int
    weekday: int
    half: int
    day_index: int | None  # its date among the leaves' dates, when it has leaves


class Spread:
    """The counters of one target and the cost of adding or removing a call."""

    def __init__(self, leaves: Sequence[Leaf], weeks: int, leaf_cap: Sequence[int], day_cap: int):
        days = sorted({lf.day for lf in leaves})
        self.day_index = {d: i for i, d in enumerate(days)}
        self.week = np.array([lf.week for lf in leaves], dtype=np.int64)
        self.wd = np.array([lf.day.weekday() for lf in leaves], dtype=np.int64)
        self.half = np.array([lf.half for lf in leaves], dtype=np.int64)
        self.cell = self.wd * 2 + self.half
        self.day = np.array([self.day_index[lf.day] for lf in leaves], dtype=np.int64)
        self.leaf_cap = np.array(leaf_cap, dtype=np.int64)
        self.day_cap = day_cap
        self.n_week = np.zeros(max(weeks, 1), dtype=np.int64)
        self.n_wd = np.zeros(7, dtype=np.int64)
        self.n_half = np.zeros(2, dtype=np.int64)
        self.n_cell = np.zeros(14, dtype=np.int64)
        self.n_leaf = np.zeros(len(leaves), dtype=np.int64)
        self.n_day = np.zeros(len(days), dtype=np.int64)
        # Larger than any cell can count, so that evening out weeks, weekdays or half-days
        # always outweighs the (weekday, half-day) cells.
        self.w = 2 * day_cap * (weeks + 1) + 2

    def place_fixed(self, p: Placed) -> None:
        self.n_week[p.week] += 1
        self.n_wd[p.weekday] += 1
        self.n_half[p.half] += 1
        self.n_cell[p.weekday * 2 + p.half] += 1
        if p.day_index is not None:
            self.n_day[p.day_index] += 1

    def _move(self, leaf: int, d: int) -> None:
        self.n_week[self.week[leaf]] += d
        self.n_wd[self.wd[leaf]] += d
        self.n_half[self.half[leaf]] += d
        self.n_cell[self.cell[leaf]] += d
        self.n_leaf[leaf] += d
        self.n_day[self.day[leaf]] += d

    def add(self, leaf: int) -> None:
        self._move(leaf, 1)

    def remove(self, leaf: int) -> None:
        self._move(leaf, -1)

    def cost_of_adding(self) -> np.ndarray:
        """ΔJ of one more call in each leaf (whole numbers); +inf where it would not fit."""
        w = self.w
        cost = (
            w * (2 * self.n_week[self.week] + 1)
            + w * (2 * self.n_wd[self.wd] + 1)
            + w * (2 * self.n_half[self.half] + 1)
            + (2 * self.n_cell[self.cell] + 1)
        ).astype(np.float64)
        full = (self.n_leaf >= self.leaf_cap) | (self.n_day[self.day] >= self.day_cap)
        cost[full] = np.inf
        return np.asarray(cost, dtype=np.float64)


def choose_leaves(spread: Spread, calls: int, rng: Rng) -> list[int]:
    """The leaf of each of ``calls`` new calls (a leaf repeats when it takes several)."""
    size = len(spread.leaf_cap)
    chosen: list[int] = []
    for _ in range(calls):
        cost = spread.cost_of_adding()
        best = int(np.argmin(cost + np.array(rng.noise(size, 0.5))))
        if not np.isfinite(cost[best]):
            break  # the caller checked capacity first; this is defensive
        spread.add(best)
        chosen.append(best)
    improve(spread, chosen, [None] * len(chosen), rng)
    return chosen


def improve(
    spread: Spread, chosen: list[int], allowed: Sequence[np.ndarray | None], rng: Rng
) -> None:
    """Move single calls while ``J`` decreases; call ``u`` only to leaves ``allowed[u]``
    (None: any)."""
    size = len(spread.leaf_cap)
    for _ in range(MAX_PASSES):
        moved = False
        for u in rng.shuffled(range(len(chosen))):
            here = chosen[u]
            spread.remove(here)
            cost = spread.cost_of_adding()
            mask = allowed[u]
            if mask is not None:
                cost[~mask] = np.inf
            best = int(np.argmin(cost + np.array(rng.noise(size, 0.5))))
            if cost[best] < cost[here]:
                chosen[u] = best
                moved = True
            spread.add(chosen[u])
        if not moved:
            return


def edge_quotas(calls: int, kinds: frozenset[str]) -> dict[str, int]:
    """How many calls each fragile edge gets: a tenth of the calls each (at least one),
    never more than half the calls in all; the opening first, then the closing, then lunch."""
    present = [k for k in EDGE_KINDS if k in kinds]
    each = max(1, round(calls / 10))
    out = dict.fromkeys(present, 0)
    budget = calls // 2
    for _ in range(each):
        for k in present:
            if budget > 0:
                out[k] += 1
                budget -= 1
    return out


def assign_edges(
    leaves: Sequence[Leaf], chosen: Sequence[int], quotas: dict[str, int], rng: Rng
) -> list[str | None]:
    """Which chosen calls sample which edge (None: anywhere in their half-day). The kind
    with the fewest candidate calls is served first; among candidates the draw decides."""
    moments: list[str | None] = [None] * len(chosen)
    order = sorted(quotas, key=lambda k: sum(k in leaves[j].kinds for j in chosen))
    for kind in order:
        for _ in range(quotas[kind]):
            free = [
                u for u, j in enumerate(chosen) if moments[u] is None and kind in leaves[j].kinds
            ]
            if not free:
                break
            moments[free[rng.below(len(free))]] = kind
    return moments


def reach_edges(
    spread: Spread,
    leaves: Sequence[Leaf],
    chosen: list[int],
    moments: list[str | None],
    quotas: dict[str, int],
    rng: Rng,
) -> None:
    """An edge with a share but no chosen half-day offering it gets one call moved to a
    half-day that does: the move that raises ``J`` least (``chosen``/``moments`` change)."""
    for kind, quota in quotas.items():
        if quota == 0 or kind in moments:
            continue
        offers = np.array([kind in lf.kinds for lf in leaves], dtype=bool)
        best: tuple[float, int, int] | None = None
        for u, here in enumerate(chosen):
            if moments[u] is not None:
                continue
            spread.remove(here)
            cost = spread.cost_of_adding()
            back = float(cost[here])
            cost[~offers] = np.inf
            j = int(np.argmin(cost + np.array(rng.noise(len(cost), 0.5))))
            spread.add(here)
            rise = float(cost[j]) - back
            if np.isfinite(cost[j]) and (best is None or rise < best[0]):
                best = (rise, u, j)
        if best is not None:
            _, u, j = best
            spread.remove(chosen[u])
            spread.add(j)
            chosen[u] = j
            moments[u] = kind
    # Even out again around the calls pinned to their edges.
    offering = {k: np.array([k in lf.kinds for lf in leaves], dtype=bool) for k in quotas}
    improve(spread, chosen, [None if m is None else offering[m] for m in moments], rng)

"""What a weekly digest says, as plain data: built once per week (build.py), then rendered
for each recipient (render.py) and served by the API (views.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from service.digest.weeks import IsoWeek
from service.metrics.model import Figures, PolicyStatement, RatioName


@dataclass(frozen=True)
class HalfHour:
    """One half-hour of one day that lost calls (in hours, offered and not answered)."""

    day: date
    slot: int  # 0 = 00:00–00:30 … 47 = 23:30–24:00
    offered: int
    answered: int

    @property
    def lost(self) -> int:
        return self.offered - self.answered

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.offered if self.offered else None


@dataclass(frozen=True)
class TrendPoint:
    week: IsoWeek
    answer_rate: float | None
    service_level: float | None
    lost: int


@dataclass(frozen=True)
class ServiceWeek:
    """One service's week (``slug`` None: the calls on lines no service claims)."""

    slug: str | None
    name: str
    figures: Figures  # the Engagement 8 figures (a service's: its whole row), as the API's
    previous: Figures  # the same for the week before
    trend: Sequence[TrendPoint]  # the four weeks ending with this one, oldest first
    worst: Sequence[HalfHour] = ()  # the half-hours that lost most, worst first
    callbacks_open: int = 0  # callers still to call back when the digest was built
    callbacks_overdue: int = 0
    targets: tuple[float, float] | None = None  # (answer rate, service level)

    @property
    def met(self) -> bool | None:
        return self.figures["met"]

    def delta(self, figure: RatioName) -> float | None:
        """The change of a ratio since the previous week (None when either is unknown)."""
        now, before = self.figures[figure], self.previous[figure]
        return None if now is None or before is None else now - before


@dataclass(frozen=True)
class MysteryService:
    slug: str
    name: str
    done: int
    mean_score: float | None
    pass_rate: float | None


@dataclass(frozen=True)
class MysteryWeek:
    """What one campaign's mystery calls of the week found."""

    campaign_id: int
    name: str
    grid_name: str
    scale: float
    planned: int
    done: int
    missed: int
    mean_score: float | None
    pass_rate: float | None
    too_few: bool
    services: Sequence[MysteryService] = ()
    weakest: Sequence[tuple[str, float]] = ()  # (item label, mean share of its points)
    discrepancies: int = 0  # placed calls the telephony never saw, or saw otherwise


@dataclass(frozen=True)
class Digest:
    week: IsoWeek
    municipality: str
    timezone: str
    services: Sequence[ServiceWeek]  # configuration order, then the unknown line if it rang
    total: ServiceWeek
    policy: PolicyStatement
    generated_at: datetime
    mystery: Sequence[MysteryWeek] = field(default_factory=tuple)

    @property
    def first(self) -> date:
        return self.week.monday

    @property
    def last(self) -> date:
        return self.week.sunday

    def judged(self) -> list[ServiceWeek]:
        """The services with a verdict this week (offered calls), configuration order."""
        return [s for s in self.services if s.slug is not None and s.met is not None]

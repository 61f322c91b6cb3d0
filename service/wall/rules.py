"""The wall's colours and its day: pure rules, stated in French on the page.

A tile is green when the day's targets are met (or nothing was offered yet) and nobody has
waited longer than ``answer_within_s``; red when a figure is 10 points or more below its
target or someone has waited more than twice ``answer_within_s``; amber otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service.municipality.calendar import day_start
from service.municipality.model import Policy
from service.wall.model import TileStatus

RED_GAP = 0.10  # points below a target that turn a tile red

RULE_FR = (
    "Vert : objectifs du jour atteints (taux de décroché et niveau de service) et personne "
    "n'attend au-delà du délai de réponse. Orange : un objectif manqué de moins de 10 points, "
    "ou une attente au-delà du délai de réponse. Rouge : un objectif manqué de 10 points ou "
    "plus, ou une attente au-delà du double du délai de réponse."
)


def status(
    answer_rate: float | None,
    service_level: float | None,
    longest_wait_s: float | None,
    policy: Policy,
) -> TileStatus:
    """``green``, ``amber`` or ``red`` by the rule above."""
    wait = longest_wait_s or 0.0
    gaps = [
        target - value
        for value, target in (
            (answer_rate, policy.target_answer_rate),
            (service_level, policy.target_service_level),
        )
        if value is not None
    ]
    if any(g >= RED_GAP - 1e-9 for g in gaps) or wait > 2 * policy.answer_within_s:
        return "red"
    if any(g > 0 for g in gaps) or wait > policy.answer_within_s:
        return "amber"
    return "green"


def next_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    """The next local midnight after ``now``, in UTC (a 23- or 25-hour day is still one
    day). UTC, because Python subtracts two instants of one zone by their wall clocks."""
    today = now.astimezone(tz).date()
    return day_start(today + timedelta(days=1), tz).astimezone(UTC)

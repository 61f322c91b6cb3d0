"""What a re-plan keeps (pure): the campaign keys it may change, and the calls of the
current plan that stay — evaluated calls, and calls of the last day that may still be
evaluated; the others are replaced."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from campaigns.plan.planner import KeptCall
from campaigns.score.results import MISSED_AFTER

REPLAN_KEYS = frozenset(
    {
        "name",
        "description",
        "ends_on",
        "seed",
        "min_gap_minutes",
        "call_minutes",
        "targets",
        "scenarios",
        "evaluators",
        "mode",
    }
)


def unchangeable(overrides: Mapping[str, Any]) -> str | None:
    """The first key (in name order) of ``overrides`` that a re-plan may not change."""
    unknown = sorted(set(overrides) - REPLAN_KEYS)
    return unknown[0] if unknown else None


def kept(call: Mapping[str, Any], now: datetime) -> bool:
    """Whether a stored call of the current plan stays in the next one."""
    if call["evaluation_id"] is not None:
        return True
    if call["status"] != "planned":
        return False
    return bool(now - MISSED_AFTER <= call["scheduled_at"] < now)


def kept_call(call: Mapping[str, Any]) -> KeptCall:
    """A stored call that stays, as the planner takes it."""
    return KeptCall(
        call["scheduled_at"],
        call["service"],
        call["number"],
        call["evaluator"],
        call["scenario"],
        call["moment"],
    )

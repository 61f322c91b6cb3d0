"""The shapes of a campaign's results (pure): what ``campaigns/score/results.py`` and
``campaigns/score/crosscheck.py`` compute, and what the API, the exports, the command line
and the digest read. They are dicts at run time (the JSON is theirs, key for key); the
types let mypy check every key a reader takes.

A figure is ``None`` when there is nothing to compute it from (no done call, or a single
one for an interval).
"""

from __future__ import annotations

from typing import TypedDict


class Figures(TypedDict):
    """The figures of a set of calls (``results.figures``)."""

    planned: int
    done: int
    missed: int
    to_come: int
    cancelled: int
    mean_score: float | None
    mean_score_low: float | None
    mean_score_high: float | None
    pass_rate: float | None
    pass_rate_low: float | None
    pass_rate_high: float | None
    excellent_share: float | None
    too_few: bool


class ServiceFigures(Figures):
    """One service's figures, and its sections' mean scores (section id → score)."""

    service: str
    name: str
    sections: dict[str, float | None]


class StratumFigures(Figures):
    """One stratum's figures: ``key`` is a half-day, a moment or an ISO weekday (1..7)."""

    key: str | int
    label: str


class Strata(TypedDict):
    half_day: list[StratumFigures]
    moment: list[StratumFigures]
    weekday: list[StratumFigures]


class SectionFigures(TypedDict):
    id: str
    title: str
    n: int
    mean_score: float | None
    mean_score_low: float | None
    mean_score_high: float | None
    too_few: bool


class ItemFigures(TypedDict):
    """One scored item: how often it applied (``n``), was N/A, scored 0, its mean value."""

    id: str
    section: str
    label: str
    kind: str
    critical: bool
    weight: float
    n: int
    na: int
    mean_value: float | None
    zero: int
    too_few: bool


class EvaluatorFigures(TypedDict):
    email: str
    name: str
    planned: int
    done: int
    missed: int
    to_come: int


class Results(TypedDict):
    """``results.campaign_results``: everything but the campaign, its grid, the
    cross-check and the previous campaign (which ``campaigns/flows.py`` adds)."""

    min_calls: int
    overall: Figures
    services: list[ServiceFigures]
    sections: list[SectionFigures]
    items: list[ItemFigures]
    strata: Strata
    evaluators: list[EvaluatorFigures]
    definitions: dict[str, str]


class OverallChange(TypedDict):
    """The previous campaign's overall figures, and the change from them to these."""

    mean_score: float | None
    pass_rate: float | None
    done: int
    delta_mean_score: float | None
    delta_pass_rate: float | None


class ServiceChange(TypedDict):
    mean_score: float | None
    pass_rate: float | None
    delta_mean_score: float | None
    delta_pass_rate: float | None


class Comparison(TypedDict):
    """``results.comparison``: overall, and per service both campaigns had (by slug)."""

    overall: OverallChange
    services: dict[str, ServiceChange]


class FindingJson(TypedDict):
    """A cross-check finding: the mystery call, the recorded call that explains it (None:
    not seen), the problem (None: seen as expected)."""

    call: int
    telephony_call: int | None
    problem: str | None


class Discrepancy(FindingJson):
    """A wrong finding, with its call's mode, number and local time (ISO 8601)."""

    mode: str
    number: str
    scheduled_at: str


class TelephonyCheck(TypedDict):
    """``crosscheck.report``: the cross-check with the telephony, in a campaign's results."""

    checked: int
    seen: int
    pending: int
    discrepancies: list[Discrepancy]

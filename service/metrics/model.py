"""The shapes of the Engagement 8 reports, as the API gives them (pure, plain data).

They are ``TypedDict``\\ s: dicts at run time, so the JSON, the exports and the digest read
exactly what they always read, while mypy checks every key each layer reads. The fields
are those of ``shared/spec/engagement8.md``; a ratio, a wait or the verdict is ``None``
(JSON ``null``) when there is nothing to compute it from.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from service.municipality.model import Policy

# The name of one figure: what ``FIGURES`` lists and every row of a report carries.
FigureName = Literal[
    "received",
    "out_of_hours",
    "short_abandoned",
    "offered",
    "answered",
    "answered_within",
    "lost",
    "answer_rate",
    "service_level",
    "asa_s",
    "wait_p90_s",
    "max_wait_s",
    "met",
]
# The figures a digest compares with the week before.
RatioName = Literal["answer_rate", "service_level"]


class Figures(TypedDict):
    """Every figure of the contract for one group of calls (a service, a day, the total)."""

    received: int
    out_of_hours: int
    short_abandoned: int
    offered: int
    answered: int
    answered_within: int
    lost: int
    answer_rate: float | None
    service_level: float | None
    asa_s: float | None
    wait_p90_s: float | None
    max_wait_s: float | None
    met: bool | None


class PolicyValues(TypedDict):
    """The thresholds and targets a group of calls is judged by (``Policy.as_dict``)."""

    answer_within_s: float
    short_abandon_s: float
    target_answer_rate: float
    target_service_level: float


class PolicyStatement(PolicyValues):
    """The policy a report used: the defaults, and each service's differing values by slug."""

    overrides: dict[str, dict[str, float]]


# ``from`` is a keyword: the functional form.
Period = TypedDict("Period", {"from": str, "to": str, "timezone": str})


class ServiceRow(Figures):
    """One service's row (``service`` None: the calls on lines no service claims)."""

    service: str | None
    name: str
    policy: PolicyValues | None


class Engagement8Report(TypedDict):
    """``GET /api/v1/engagement8`` (per service), ``decroche report engagement8``."""

    period: Period
    policy: PolicyStatement
    services: list[ServiceRow]  # configuration order, then the unknown line if it rang
    total: Figures
    definitions: dict[FigureName, str]  # one French line per figure


class KeyedRow(Figures):
    """One key of a breakdown (a day, a week, an hour, a line, an agent; None: none)."""

    key: str | None


class BreakdownReport(TypedDict):
    """``GET /api/v1/engagement8?by=…`` for any ``by`` but ``service``."""

    period: Period
    policy: PolicyStatement
    by: str
    rows: list[KeyedRow]  # keys sorted
    total: Figures


class AffluenceCell(TypedDict):
    """One weekday (1 = Monday) × local half-hour (« 08:30 »)."""

    weekday: int
    slot: str
    received: int
    lost: int


class AffluenceReport(TypedDict):
    """``GET /api/v1/affluence``."""

    period: Period
    service: str | None
    cells: list[AffluenceCell]


def policy_values(p: Policy) -> PolicyValues:
    """``p``'s values, in the order and with the names of ``Policy.as_dict``."""
    return {
        "answer_within_s": p.answer_within_s,
        "short_abandon_s": p.short_abandon_s,
        "target_answer_rate": p.target_answer_rate,
        "target_service_level": p.target_service_level,
    }

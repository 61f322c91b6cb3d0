"""The digest as JSON (``GET /api/v1/digest``): the same figures the e-mail shows."""

from __future__ import annotations

from dataclasses import asdict
from typing import TypedDict

from service.digest import story
from service.digest.model import Digest, HalfHour, ServiceWeek
from service.metrics.model import Figures, Period, PolicyStatement


class HalfHourJson(TypedDict):
    day: str
    start: str
    end: str
    offered: int
    lost: int
    answer_rate: float | None


class PreviousJson(TypedDict):
    answer_rate: float | None
    service_level: float | None
    lost: int


class TrendJson(TypedDict):
    week: str
    answer_rate: float | None
    service_level: float | None
    lost: int


class ServiceJson(Figures):
    """A week: the figures, as the API gives them, and what the digest adds. A service's
    also carries the rest of its report row (``service``, ``name``, ``policy``), which
    ``ServiceWeek.figures`` holds at run time but does not declare."""

    previous: PreviousJson
    delta_answer_rate: float | None
    delta_service_level: float | None
    trend: list[TrendJson]
    worst_half_hours: list[HalfHourJson]
    callbacks_open: int
    callbacks_overdue: int


class TotalJson(ServiceJson):
    """Every service together: its ``name`` first, then the figures."""

    name: str


class DigestJson(TypedDict):
    week: str
    period: Period
    generated_at: str
    headline: str
    services: list[ServiceJson]
    total: TotalJson
    mystery: list[dict[str, object]]  # each ``MysteryWeek``'s fields
    policy: PolicyStatement
    definitions: str


def _slot(slot: int) -> str:
    return f"{slot // 2:02d}:{30 * (slot % 2):02d}"


def _half_hour(h: HalfHour) -> HalfHourJson:
    return {
        "day": h.day.isoformat(),
        "start": _slot(h.slot),
        "end": _slot(h.slot + 1) if h.slot < 47 else "24:00",
        "offered": h.offered,
        "lost": h.lost,
        "answer_rate": h.answer_rate,
    }


def service_json(s: ServiceWeek) -> ServiceJson:
    before = s.previous
    return {
        **s.figures,
        "previous": {
            "answer_rate": before["answer_rate"],
            "service_level": before["service_level"],
            "lost": before["lost"],
        },
        "delta_answer_rate": s.delta("answer_rate"),
        "delta_service_level": s.delta("service_level"),
        "trend": [
            {
                "week": str(p.week),
                "answer_rate": p.answer_rate,
                "service_level": p.service_level,
                "lost": p.lost,
            }
            for p in s.trend
        ],
        "worst_half_hours": [_half_hour(h) for h in s.worst],
        "callbacks_open": s.callbacks_open,
        "callbacks_overdue": s.callbacks_overdue,
    }


def digest_json(d: Digest) -> DigestJson:
    return {
        "week": str(d.week),
        "period": {"from": d.first.isoformat(), "to": d.last.isoformat(), "timezone": d.timezone},
        "generated_at": d.generated_at.isoformat(),
        "headline": story.headline(d),
        "services": [service_json(s) for s in d.services],
        "total": {"name": d.total.name, **service_json(d.total)},
        "mystery": [asdict(c) for c in d.mystery],
        "policy": d.policy,
        "definitions": story.definitions(d),
    }

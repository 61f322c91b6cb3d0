"""The digest as JSON (``GET /api/v1/digest``): the same figures the e-mail shows."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from service.digest import story
from service.digest.model import Digest, HalfHour, ServiceWeek


def _slot(slot: int) -> str:
    return f"{slot // 2:02d}:{30 * (slot % 2):02d}"


def _half_hour(h: HalfHour) -> dict[str, Any]:
    return {
        "day": h.day.isoformat(),
        "start": _slot(h.slot),
        "end": _slot(h.slot + 1) if h.slot < 47 else "24:00",
        "offered": h.offered,
        "lost": h.lost,
        "answer_rate": h.answer_rate,
    }


def service_json(s: ServiceWeek) -> dict[str, Any]:
    return {
        **s.figures,
        "previous": {k: s.previous[k] for k in ("answer_rate", "service_level", "lost")},
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


def digest_json(d: Digest) -> dict[str, Any]:
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

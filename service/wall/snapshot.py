"""The wall's snapshot: built from the stored calls, so every instance and every restart
shows the same numbers.

Today's figures are the Engagement 8 report of the current local day (the same function as
the API and the digest); « now » is the calls in progress; the call-back counts are the
open call-backs. ``comparable`` strips what only says *when* the snapshot was made, to tell
whether anything changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.callbacks.listing import open_callbacks
from service.metrics.report import engagement8
from service.municipality.calendar import Calendar
from service.wall import queries
from service.wall.rules import RULE_FR, status

# A call "in progress" for longer than this lost its end event: not shown as waiting.
STALE_AFTER = timedelta(hours=4)
TODAY_FIELDS = (
    "received",
    "offered",
    "answered",
    "answer_rate",
    "service_level",
    "lost",
    "out_of_hours",
    "short_abandoned",
    "asa_s",
    "max_wait_s",
    "met",
)
_TIMING = ("generated_at", "longest_wait_s")


def _now_block(rows: list[Any], now: datetime) -> dict[str, Any]:
    waiting = [r["started_at"] for r in rows if not r["answered"]]
    since = min(waiting) if waiting else None
    return {
        "waiting": len(waiting),
        "longest_wait_since": since.isoformat() if since else None,
        "longest_wait_s": round((now - since).total_seconds(), 1) if since else None,
        "in_conversation": sum(1 for r in rows if r["answered"]),
    }


async def build_snapshot(pool: asyncpg.Pool, calendar: Calendar, now: datetime) -> dict[str, Any]:
    m = calendar.m
    tz = m.tz
    today = now.astimezone(tz).date()
    report = await engagement8(pool, m, today, today)
    progress = await queries.in_progress(pool, now - STALE_AFTER)
    pending = await open_callbacks(pool, calendar, now)

    by_service: dict[str | None, list[Any]] = {}
    for r in progress:
        svc = m.service_for(r["line"], r["queue"])
        by_service.setdefault(svc.slug if svc else None, []).append(r)
    callbacks: dict[str, int] = {}
    for cb in pending:
        callbacks[cb.service.slug] = callbacks.get(cb.service.slug, 0) + 1

    figures = {row["service"]: row for row in report["services"]}
    tiles = []
    for svc in m.services:
        day = figures[svc.slug]
        live = _now_block(by_service.get(svc.slug, []), now)
        tiles.append(
            {
                "service": svc.slug,
                "name": svc.name,
                "open_now": calendar.in_hours(svc, now),
                **live,
                "today": {k: day[k] for k in TODAY_FIELDS},
                "callbacks": callbacks.get(svc.slug, 0),
                "targets": svc.policy.as_dict(),
                "status": status(
                    day["answer_rate"], day["service_level"], live["longest_wait_s"], svc.policy
                ),
            }
        )
    total = report["total"]
    return {
        "generated_at": now.astimezone(tz).isoformat(),
        "day": today.isoformat(),
        "timezone": m.timezone,
        "municipality": m.name,
        "rule": RULE_FR,
        "services": tiles,
        "total": {
            **_now_block(progress, now),
            "today": {k: total[k] for k in TODAY_FIELDS},
            "callbacks": len(pending),
        },
    }


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot without what changes with the clock alone."""
    out = {k: v for k, v in snapshot.items() if k not in _TIMING}
    out["services"] = [
        {k: v for k, v in t.items() if k not in _TIMING} for t in snapshot["services"]
    ]
    out["total"] = {k: v for k, v in snapshot["total"].items() if k not in _TIMING}
    return out

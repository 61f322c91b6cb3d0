"""The wall's snapshot: built from the stored calls, so every instance and every restart
shows the same numbers.

Today's figures are the Engagement 8 report of the current local day (the same function as
the API and the digest); « now » is the calls in progress; the call-back counts are the
open call-backs. ``comparable`` strips what only says *when* the snapshot was made, to tell
whether anything changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from service.callbacks.listing import open_callbacks
from service.metrics.model import Figures, policy_values
from service.metrics.report import engagement8
from service.municipality.calendar import Calendar
from service.wall import queries
from service.wall.model import Now, StableSnapshot, StableTile, Tile, TodayFigures, WallSnapshot
from service.wall.rules import RULE_FR, status

# A call "in progress" for longer than this lost its end event: not shown as waiting.
STALE_AFTER = timedelta(hours=4)


def _today(f: Figures) -> TodayFigures:
    """The day's figures the wall shows, in the order the JSON has always had them."""
    return {
        "received": f["received"],
        "offered": f["offered"],
        "answered": f["answered"],
        "answer_rate": f["answer_rate"],
        "service_level": f["service_level"],
        "lost": f["lost"],
        "out_of_hours": f["out_of_hours"],
        "short_abandoned": f["short_abandoned"],
        "asa_s": f["asa_s"],
        "max_wait_s": f["max_wait_s"],
        "met": f["met"],
    }


def _now_block(rows: Sequence[asyncpg.Record], now: datetime) -> Now:
    waiting = [r["started_at"] for r in rows if not r["answered"]]
    since = min(waiting) if waiting else None
    return {
        "waiting": len(waiting),
        "longest_wait_since": since.isoformat() if since else None,
        "longest_wait_s": round((now - since).total_seconds(), 1) if since else None,
        "in_conversation": sum(1 for r in rows if r["answered"]),
    }


async def build_snapshot(pool: asyncpg.Pool, calendar: Calendar, now: datetime) -> WallSnapshot:
    m = calendar.m
    tz = m.tz
    today = now.astimezone(tz).date()
    report = await engagement8(pool, m, today, today)
    progress = await queries.in_progress(pool, now - STALE_AFTER)
    pending = await open_callbacks(pool, calendar, now)

    by_service: dict[str | None, list[asyncpg.Record]] = {}
    for r in progress:
        svc = m.service_for(r["line"], r["queue"])
        by_service.setdefault(svc.slug if svc else None, []).append(r)
    callbacks: dict[str, int] = {}
    for cb in pending:
        callbacks[cb.service.slug] = callbacks.get(cb.service.slug, 0) + 1

    figures = {row["service"]: row for row in report["services"]}
    tiles: list[Tile] = []
    for svc in m.services:
        day = figures[svc.slug]
        live = _now_block(by_service.get(svc.slug, []), now)
        tiles.append(
            {
                "service": svc.slug,
                "name": svc.name,
                "open_now": calendar.in_hours(svc, now),
                **live,
                "today": _today(day),
                "callbacks": callbacks.get(svc.slug, 0),
                "targets": policy_values(svc.policy),
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
            "today": _today(total),
            "callbacks": len(pending),
        },
    }


def _stable_tile(t: Tile) -> StableTile:
    return {
        "service": t["service"],
        "name": t["name"],
        "open_now": t["open_now"],
        "waiting": t["waiting"],
        "longest_wait_since": t["longest_wait_since"],
        "in_conversation": t["in_conversation"],
        "today": t["today"],
        "callbacks": t["callbacks"],
        "targets": t["targets"],
        "status": t["status"],
    }


def comparable(snapshot: WallSnapshot) -> StableSnapshot:
    """The snapshot without what changes with the clock alone (``generated_at``,
    ``longest_wait_s``)."""
    total = snapshot["total"]
    return {
        "day": snapshot["day"],
        "timezone": snapshot["timezone"],
        "municipality": snapshot["municipality"],
        "rule": snapshot["rule"],
        "services": [_stable_tile(t) for t in snapshot["services"]],
        "total": {
            "waiting": total["waiting"],
            "longest_wait_since": total["longest_wait_since"],
            "in_conversation": total["in_conversation"],
            "today": total["today"],
            "callbacks": total["callbacks"],
        },
    }

"""``GET /api/v1/calls``: the normalised calls, newest first, keyset-paginated."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from service.accounts import queries as accounts
from service.calls.queries import list_calls
from service.keys import CALENDAR, DB_POOL, FOLDER, SETTINGS
from service.municipality.calendar import Calendar
from service.web.auth import principal
from service.web.errors import ApiError
from service.web.params import (
    FIRST_DAY,
    LAST_DAY,
    local_day,
    period_bounds,
    service_param,
    whole,
    whole_number,
)

DIRECTIONS = ("inbound", "outbound", "all")


def encode_cursor(started_at: datetime, call_id: int) -> str:
    raw = f"{started_at.isoformat()}|{call_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, int]:
    """The (instant, id) a ``next`` cursor holds; anything this API could not have given
    (an instant outside the supported years, an id that is no bigint) is a 400."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, digits = raw.rsplit("|", 1)
        at = datetime.fromisoformat(stamp)
        call_id = whole_number(digits)
        if at.tzinfo is None or call_id is None or not FIRST_DAY <= at.date() <= LAST_DAY:
            raise ValueError("not a cursor of ours")
        return at, call_id
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ApiError("cursor is not one this API gave", field="cursor") from None


def call_json(row: asyncpg.Record, calendar: Calendar) -> dict[str, Any]:
    """One call as the API shows it; ``service``, ``in_hours`` and ``outcome`` are derived
    now from the current configuration, so a corrected calendar corrects history."""
    m = calendar.m
    svc = m.service_for(row["line"], row["queue"])
    tz = m.tz
    in_hours = calendar.in_hours(svc, row["started_at"])
    disposition = row["disposition"]
    if row["answered"]:
        outcome: str | None = "answered"
    elif disposition is not None and not in_hours:
        outcome = "closed"
    else:
        outcome = disposition

    def when(v: datetime | None) -> str | None:
        return v.astimezone(tz).isoformat() if v is not None else None

    return {
        "id": row["id"],
        "source": row["source"],
        "external_id": row["external_id"],
        "service": svc.slug if svc else None,
        "line": row["line"],
        "queue": row["queue"],
        "direction": row["direction"],
        "started_at": when(row["started_at"]),
        "answered_at": when(row["answered_at"]),
        "ended_at": when(row["ended_at"]),
        "wait_s": row["wait_s"],
        "answered": row["answered"],
        "in_hours": in_hours,
        "outcome": outcome,
        "agent": row["agent"],
        "caller": f"…{row['caller_last2']}" if row["caller_last2"] else None,
    }


async def get_calls(request: web.Request) -> web.Response:
    m = request.app[SETTINGS].municipality
    start, end = period_bounds(local_day(request, "from"), local_day(request, "to"), m.tz)
    svc = service_param(request, m)
    limit = whole(request, "limit", 100, 1, 1000)
    direction = request.query.get("direction", "inbound")
    if direction not in DIRECTIONS:
        raise ApiError(f"direction must be one of {', '.join(DIRECTIONS)}", field="direction")
    cursor = request.query.get("cursor")
    after = decode_cursor(cursor) if cursor else None
    await request.app[FOLDER].catch_up()
    rows = await list_calls(
        request.app[DB_POOL],
        start=start,
        end=end,
        service_lines=svc.lines if svc else None,
        service_queues=svc.queues if svc else None,
        all_queues=[q for s in m.services for q in s.queues],
        direction=None if direction == "all" else direction,
        after=after,
        limit=limit + 1,
    )
    # The call log is personal data (who called when, which agent answered): every read is
    # recorded with what was asked.
    await accounts.audit(
        request.app[DB_POOL],
        principal(request).label,
        "calls.view",
        detail={k: v for k, v in request.query.items() if k != "cursor"} or None,
        address=request.remote,
    )
    calendar = request.app[CALENDAR]
    page = rows[:limit]
    nxt = encode_cursor(page[-1]["started_at"], page[-1]["id"]) if len(rows) > limit else None
    return web.json_response({"calls": [call_json(r, calendar) for r in page], "next": nxt})


def setup_routes(app: web.Application) -> None:
    """This package's routes, on ``app``."""
    app.router.add_get("/api/v1/calls", get_calls)

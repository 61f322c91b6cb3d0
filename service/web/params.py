"""Query-string parsing shared by the API handlers; faults become 400 ``ApiError``s."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from service.municipality.calendar import day_start
from service.municipality.model import Municipality, ServiceConfig
from service.web.errors import ApiError


def local_day(request: web.Request, name: str) -> date | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            f"{name} must be a date like 2026-11-16, got {value[:30]!r}", field=name
        ) from None


def period_bounds(
    first: date | None, last: date | None, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """Instants bounding the local days ``first``..``last`` (both included)."""
    if first is not None and last is not None and last < first:
        raise ApiError("to must not be before from", field="to")
    start = day_start(first, tz) if first else None
    end = day_start(last + timedelta(days=1), tz) if last else None
    return start, end


def whole(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or not lo <= int(value) <= hi:
        raise ApiError(f"{name} must be a whole number from {lo} to {hi}", field=name)
    return int(value)


def service_param(request: web.Request, m: Municipality) -> ServiceConfig | None:
    slug = request.query.get("service")
    if slug is None or slug == "":
        return None
    svc = m.service(slug)
    if svc is None:
        known = ", ".join(s.slug for s in m.services)
        raise ApiError(f"unknown service {slug[:40]!r} (known: {known})", field="service")
    return svc

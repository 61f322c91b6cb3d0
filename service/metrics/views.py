"""``GET /api/v1/engagement8`` and ``GET /api/v1/affluence``."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from service.keys import DB_POOL, FOLDER, SETTINGS
from service.metrics.queries import BREAKDOWNS
from service.metrics.report import affluence, breakdown, engagement8
from service.web.errors import ApiError
from service.web.params import local_day, service_param

MAX_DAYS = 3 * 366 + 1


def period(request: web.Request) -> tuple[date, date]:
    """``from`` and ``to`` (both required, both included, at most three years apart)."""
    first, last = local_day(request, "from"), local_day(request, "to")
    if first is None:
        raise ApiError("from is required (a date like 2026-11-16)", field="from")
    if last is None:
        raise ApiError("to is required (a date like 2026-11-22)", field="to")
    if last < first:
        raise ApiError("to must not be before from", field="to")
    if (last - first).days >= MAX_DAYS:
        raise ApiError("the period may span at most three years", field="to")
    return first, last


async def get_engagement8(request: web.Request) -> web.Response:
    m = request.app[SETTINGS].municipality
    first, last = period(request)
    svc = service_param(request, m)
    by = request.query.get("by", "service")
    if by not in BREAKDOWNS:
        raise ApiError(f"by must be one of {', '.join(BREAKDOWNS)}", field="by")
    await request.app[FOLDER].catch_up()
    pool = request.app[DB_POOL]
    slug = svc.slug if svc else None
    if by == "service":
        return web.json_response(await engagement8(pool, m, first, last, slug))
    return web.json_response(await breakdown(pool, m, first, last, by, slug))


async def get_affluence(request: web.Request) -> web.Response:
    m = request.app[SETTINGS].municipality
    first, last = period(request)
    svc = service_param(request, m)
    await request.app[FOLDER].catch_up()
    return web.json_response(
        await affluence(request.app[DB_POOL], m, first, last, svc.slug if svc else None)
    )


def setup_routes(app: web.Application) -> None:
    """This package's routes, on ``app``."""
    app.router.add_get("/api/v1/engagement8", get_engagement8)
    app.router.add_get("/api/v1/affluence", get_affluence)

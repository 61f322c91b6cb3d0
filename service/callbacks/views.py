"""``GET /api/v1/callbacks`` and ``POST /api/v1/callbacks/{id}/done``; the ``/rappels`` page.

Numbers are shown to ``quality`` and ``admin`` only (they are the ones who call back), and
every list that shows them is written to the audit log; a ``viewer`` sees the last two
digits. Marking a call-back done by hand needs ``quality``.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from aiohttp import web

from service.accounts import queries as accounts
from service.accounts.model import Role
from service.callbacks import queries
from service.callbacks.listing import open_callbacks
from service.callbacks.model import CallbackJson, CallbackListing
from service.callbacks.rules import Callback
from service.keys import CALENDAR, DB_POOL, FOLDER, SETTINGS, WALL
from service.web.auth import principal
from service.web.errors import ApiError
from service.web.pages import template
from service.web.params import path_id, service_param


def callback_json(cb: Callback, now: datetime, tz: tzinfo, with_number: bool) -> CallbackJson:
    return {
        "id": cb.id,
        "service": cb.service.slug,
        "service_name": cb.service.name,
        "caller": f"…{cb.caller_last2}" if cb.caller_last2 else None,
        "number": cb.caller_number if with_number else None,
        "first_call_at": cb.first_call_at.astimezone(tz).isoformat(),
        "last_call_at": cb.last_call_at.astimezone(tz).isoformat(),
        "attempts": cb.attempts,
        "wait_s": cb.wait_s,
        "due_by": cb.due_by.astimezone(tz).isoformat() if cb.due_by else None,
        "overdue": cb.overdue(now),
    }


async def get_callbacks(request: web.Request) -> web.Response:
    m = request.app[SETTINGS].municipality
    svc = service_param(request, m)
    who = principal(request)
    with_number = who.has(Role.QUALITY)
    await request.app[FOLDER].catch_up()
    now = datetime.now(UTC)
    pool = request.app[DB_POOL]
    found = await open_callbacks(pool, request.app[CALENDAR], now)
    if svc is not None:
        found = [cb for cb in found if cb.service.slug == svc.slug]
    if with_number and found:
        await accounts.audit(
            pool,
            who.label,
            "callbacks.view",
            detail={"service": svc.slug if svc else None, "count": len(found)},
            address=request.remote,
        )
    listing: CallbackListing = {
        "callbacks": [callback_json(cb, now, m.tz, with_number) for cb in found],
        "count": len(found),
        "numbers_shown": with_number,
    }
    return web.json_response(listing)


async def post_done(request: web.Request) -> web.Response:
    who = principal(request)
    if not who.has(Role.QUALITY):
        raise ApiError("marking a call-back done needs the quality role", status=403)
    call_id = path_id(request)
    pool = request.app[DB_POOL]
    caller = await queries.caller_of(pool, call_id)
    if caller is None:
        raise ApiError(f"no call-back {call_id}", status=404)
    await queries.mark_done(pool, caller, call_id, who.label)
    await accounts.audit(
        pool, who.label, "callback.done", f"call:{call_id}", address=request.remote
    )
    request.app[WALL].changed()
    return web.json_response({"id": call_id, "done": True})


async def callbacks_page(request: web.Request) -> web.FileResponse:
    return template("callbacks.html")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/callbacks", get_callbacks)
    app.router.add_post("/api/v1/callbacks/{id}/done", post_done)
    app.router.add_get("/rappels", callbacks_page)

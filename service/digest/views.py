"""The digest in the web service: ``GET /api/v1/digest`` (its figures and deliveries),
``GET /api/v1/digest/preview`` (a recipient's message as a page) and the French page
``/synthese`` for the quality role."""

from __future__ import annotations

from asyncio import to_thread
from datetime import UTC, datetime

from aiohttp import web

from service.digest import queries as q
from service.digest.delivery import recipients
from service.digest.message import Charts, preview_html
from service.digest.payload import digest_json
from service.digest.weeks import IsoWeek, previous_week, send_instant
from service.keys import DB_POOL, DIGEST, FOLDER, SETTINGS
from service.web.errors import ApiError
from service.web.pages import template
from service.web.params import parse_week

# The preview is our own escaped markup with inline styles and data: images; it runs
# nothing, and only our pages may frame it.
PREVIEW_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
)


def _week(request: web.Request) -> IsoWeek:
    text = request.query.get("week")
    if not text:
        return previous_week(datetime.now(UTC), request.app[SETTINGS].municipality.tz)
    return parse_week(text, "week")


def _focus(request: web.Request) -> tuple[str, ...]:
    who = request.query.get("for", "").strip().lower()
    if not who:
        return ()
    known = recipients(request.app[SETTINGS].municipality)
    if who not in known:
        raise ApiError(f"{who} is not a recipient of the digest", field="for")
    return known[who]


async def get_digest(request: web.Request) -> web.Response:
    week = _week(request)
    m = request.app[SETTINGS].municipality
    await request.app[FOLDER].catch_up()
    digest = await request.app[DIGEST].build(week)
    rows = await q.deliveries(request.app[DB_POOL], str(week))
    return web.json_response(
        {
            **digest_json(digest),
            "send_at": send_instant(
                week, m.digest.send_weekday, m.digest.send_time, m.tz
            ).isoformat(),
            "recipients": [{"address": a, "services": list(s)} for a, s in recipients(m).items()],
            "deliveries": [
                {
                    "recipient": r["recipient"],
                    "state": r["state"],
                    "attempts": r["attempts"],
                    "next_attempt_at": r["next_attempt_at"].isoformat(),
                    "sent_at": r["sent_at"].isoformat() if r["sent_at"] else None,
                    "error": r["last_error"],
                }
                for r in rows
            ],
        }
    )


async def get_preview(request: web.Request) -> web.Response:
    week, focus = _week(request), _focus(request)
    await request.app[FOLDER].catch_up()
    sender = request.app[DIGEST]
    digest = await sender.build(week)
    charts = Charts(digest)
    page = await to_thread(preview_html, digest, focus, charts, link=sender.link)
    return web.Response(
        text=page,
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": PREVIEW_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )


async def digest_page(request: web.Request) -> web.FileResponse:
    return template("digest.html")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/digest", get_digest)
    app.router.add_get("/api/v1/digest/preview", get_preview)
    app.router.add_get("/synthese", digest_page)

"""``/mur`` (the page), ``GET /api/v1/wall`` (snapshot) and ``/api/v1/wall/stream`` (SSE)."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import web

from service.db.errors import is_unavailable
from service.keys import FOLDER, WALL
from service.wall.hub import Pushed
from service.wall.model import WallSnapshot
from service.web.auth import still_admitted
from service.web.pages import template
from service.web.security import stamp_stream

KEEPALIVE_S = 15.0
# How often an open stream asks the database whether its credential still holds, so that
# revoking a wall token, disabling a user or logging out cuts a stream off within seconds,
# on every instance. Asking (an indexed lookup per screen every few seconds) rather than
# LISTEN/NOTIFY: it sees every way a credential ends — the API, the CLI, an expiry, an
# UPDATE by hand — without each writer having to notify, and cannot miss one while a
# listening connection is being re-opened.
RECHECK_S = 2.0


async def wall_page(request: web.Request) -> web.FileResponse:
    return template("wall.html")


async def get_wall(request: web.Request) -> web.Response:
    """The snapshot as of now: every event acknowledged before the request is in it."""
    await request.app[FOLDER].catch_up()
    snapshot = await request.app[WALL].rebuild()
    return web.json_response(snapshot, dumps=lambda v: orjson.dumps(v).decode())


async def stream_wall(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``snapshot`` now and on every change, ``ping`` when idle; the
    stream ends within :data:`RECHECK_S` of its credential's end."""
    hub = request.app[WALL]
    snapshot = hub.snapshot or await hub.rebuild()
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a reverse proxy must not buffer the stream
        }
    )
    stamp_stream(request, resp)  # the security headers and X-Request-Id, before it starts
    await resp.prepare(request)
    queue = hub.subscribe()
    try:
        # retry: how long a browser waits before reconnecting by itself.
        await resp.write(b"retry: 3000\n\n" + _event(snapshot))
        await _pump(request, resp, queue)
    except (ConnectionResetError, ConnectionError):
        pass  # the screen went away
    finally:
        hub.unsubscribe(queue)
    with contextlib.suppress(ConnectionError):
        await resp.write_eof()
    return resp


async def _pump(request: web.Request, resp: web.StreamResponse, queue: Pushed) -> None:
    """Write each snapshot the hub pushes and a ``ping`` after :data:`KEEPALIVE_S` of
    silence, and ask every :data:`RECHECK_S` whether the credential still holds (however
    often snapshots come); return when it does not, or when the hub ends the streams."""
    clock = asyncio.get_running_loop().time
    next_check, next_ping = clock() + RECHECK_S, clock() + KEEPALIVE_S
    while True:
        item: WallSnapshot | None = None
        arrived = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(min(next_check, next_ping)):
                item, arrived = await queue.get(), True
        if arrived and item is None:
            return
        if clock() >= next_check:
            if not await _still_admitted(request):
                return
            next_check = clock() + RECHECK_S
        if item is not None:
            await resp.write(_event(item))
            next_ping = clock() + KEEPALIVE_S
        elif clock() >= next_ping:
            # An event, not a comment: the page sees it and knows the link is alive.
            await resp.write(b"event: ping\ndata: {}\n\n")
            next_ping = clock() + KEEPALIVE_S


async def _still_admitted(request: web.Request) -> bool:
    """Whether the stream may go on. While the database cannot be reached nothing can be
    revoked either: the screen keeps its wall rather than going blank."""
    try:
        return await still_admitted(request)
    except Exception as exc:
        if is_unavailable(exc):
            return True
        raise


def _event(snapshot: WallSnapshot) -> bytes:
    return b"event: snapshot\ndata: " + orjson.dumps(snapshot) + b"\n\n"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/mur", wall_page)
    app.router.add_get("/api/v1/wall", get_wall)
    app.router.add_get("/api/v1/wall/stream", stream_wall)

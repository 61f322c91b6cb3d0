"""``/mur`` (the page), ``GET /api/v1/wall`` (snapshot) and ``/api/v1/wall/stream`` (SSE)."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import web

from service.keys import FOLDER, WALL
from service.wall.model import WallSnapshot
from service.web.pages import template

KEEPALIVE_S = 15.0


async def wall_page(request: web.Request) -> web.FileResponse:
    return template("wall.html")


async def get_wall(request: web.Request) -> web.Response:
    """The snapshot as of now: every event acknowledged before the request is in it."""
    await request.app[FOLDER].catch_up()
    snapshot = await request.app[WALL].rebuild()
    return web.json_response(snapshot, dumps=lambda v: orjson.dumps(v).decode())


async def stream_wall(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``snapshot`` now and on every change, ``ping`` when idle."""
    hub = request.app[WALL]
    snapshot = hub.snapshot or await hub.rebuild()
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a reverse proxy must not buffer the stream
        }
    )
    await resp.prepare(request)
    queue = hub.subscribe()
    try:
        # retry: how long a browser waits before reconnecting by itself.
        await resp.write(b"retry: 3000\n\n" + _event(snapshot))
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    item = await queue.get()
            except TimeoutError:
                # An event, not a comment: the page sees it and knows the link is alive.
                await resp.write(b"event: ping\ndata: {}\n\n")
                continue
            if item is None:
                break
            await resp.write(_event(item))
    except (ConnectionResetError, ConnectionError):
        pass  # the screen went away
    finally:
        hub.unsubscribe(queue)
    with contextlib.suppress(ConnectionError):
        await resp.write_eof()
    return resp


def _event(snapshot: WallSnapshot) -> bytes:
    return b"event: snapshot\ndata: " + orjson.dumps(snapshot) + b"\n\n"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/mur", wall_page)
    app.router.add_get("/api/v1/wall", get_wall)
    app.router.add_get("/api/v1/wall/stream", stream_wall)

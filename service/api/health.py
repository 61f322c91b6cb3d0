"""``GET /healthz`` (no auth) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.db.errors import is_unavailable
from service.keys import DB_POOL, METRICS
from service.observability import CONTENT_TYPE_LATEST


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers within two seconds, 503 otherwise."""
    try:
        async with asyncio.timeout(2):
            await request.app[DB_POOL].fetchval("SELECT 1")
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

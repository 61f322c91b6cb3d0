"""``GET /healthz`` (no auth), ``GET /metrics`` (Prometheus text) and
``GET /api/v1/openapi.json`` (the OpenAPI document, no auth)."""

from __future__ import annotations

import asyncio
import shutil

from aiohttp import web

from service.db.errors import describe, is_unavailable
from service.db.queries import ping
from service.keys import DB_POOL, METRICS, SETTINGS
from service.observability import CONTENT_TYPE_LATEST
from service.web import openapi

# Below this, the embedded database's disk is as good as full: PostgreSQL needs a new 16 MB
# WAL segment from time to time, and refuses every write when it cannot have one.
DISK_FREE_MIN = 16 << 20


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers within two seconds (and, for the embedded database,
    its disk has room to write), 503 with the reason otherwise."""
    try:
        async with asyncio.timeout(2):
            await ping(request.app[DB_POOL])
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return _unhealthy("unreachable", describe(exc))
    settings = request.app[SETTINGS]
    if settings.database_url is None:  # the embedded database: its disk is ours to watch
        pgdata = settings.data_dir / "pg"
        free = await asyncio.to_thread(lambda: shutil.disk_usage(pgdata).free)
        if free < DISK_FREE_MIN:
            reason = (
                f"the disk holding the embedded database ({pgdata}) is full "
                f"({free // 1024} KiB free): free some space or move DECROCHE_DATA_DIR"
            )
            return _unhealthy("disk full", reason)
    return web.json_response({"status": "ok"})


def _unhealthy(database: str, reason: str) -> web.Response:
    body = {"status": "unavailable", "database": database, "reason": reason}
    return web.json_response(body, status=503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_routes(app: web.Application) -> None:
    """This package's routes, on ``app``."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get(openapi.PATH, openapi.openapi)

"""The asyncpg pool as an aiohttp ``cleanup_ctx``; the embedded database when no URL is set."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from service.db.embedded import start_embedded
from service.db.migrate import Migration, apply_migrations
from service.keys import DB_POOL, SETTINGS

log = logging.getLogger(__name__)


async def resolve_dsn(database_url: str | None, data_dir: Path) -> str:
    """The DSN to use: ``DATABASE_URL``, or the embedded server's (started if needed)."""
    if database_url:
        return database_url
    embedded = await asyncio.to_thread(start_embedded, data_dir)
    log.info("embedded PostgreSQL ready in %s", embedded.pgdata)
    return embedded.dsn


# JIT compilation costs more than it saves on a week's report (100 ms of 190 ms); only the
# largest queries are worth compiling.
# Custom plans always: asyncpg prepares every statement, and PostgreSQL's generic plan for
# it is made once and kept until the next ANALYZE. Made while a table was nearly empty (a
# fresh install, the first minute after an import), it can scan the whole table once per
# row: the wall's call-back query took 430 ms instead of 18 ms at 2,000 calls. Planning
# each execution costs nothing measurable on ingest (bench/ingest.py: 2,491 vs 2,463
# callbacks/s). Both given at connection start, not with SET: the pool runs RESET ALL when
# a connection is released, which would undo a SET.
SERVER_SETTINGS = {"jit_above_cost": "2000000", "plan_cache_mode": "force_custom_plan"}


# Socket buffers of a connection through a Unix socket (the embedded PostgreSQL): the
# default (208 KiB) split an import's statements (a batch of events is about 1 MB) into
# pieces, each sent only when the event loop came back between two slices of parsing, and
# PostgreSQL waited for them: imports ran 25 % slower than through TCP, whose buffers grow
# by themselves. The kernel caps the value at net.core.wmem_max / rmem_max.
UNIX_SOCKET_BUFFER = 4 << 20


def _widen_unix_socket(conn: asyncpg.Connection) -> None:
    transport = getattr(conn, "_transport", None)  # asyncpg has no public way to the socket
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family == socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UNIX_SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UNIX_SOCKET_BUFFER)


async def _init_connection(conn: asyncpg.Connection) -> None:
    _widen_unix_socket(conn)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, command_timeout: float | None = 30
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=command_timeout,
        server_settings=SERVER_SETTINGS,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def open_database(
    database_url: str | None, data_dir: Path, **pool_options: Any
) -> AsyncIterator[tuple[asyncpg.Pool, list[Migration]]]:
    """The pool of the configured (or embedded) database, migrated; closed on exit."""
    pool = await create_pool(await resolve_dsn(database_url, data_dir), **pool_options)
    try:
        async with pool.acquire() as conn:
            applied = await apply_migrations(conn)
        for mig in applied:
            log.info("applied migration %04d_%s", mig.version, mig.name)
        yield pool, applied
    finally:
        await pool.close()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the pool (migrating first) for the life of the application."""
    settings = app[SETTINGS]
    async with open_database(settings.database_url, settings.data_dir) as (pool, _):
        app[DB_POOL] = pool
        yield

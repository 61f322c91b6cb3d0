"""What the benchmarks share: a fresh database on a given server, or an embedded one."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


async def fresh_database(server_url: str | None, name: str, data_dir: Path) -> str:
    """The DSN of an empty database ``name`` on ``server_url`` (dropped and created again),
    or of an embedded PostgreSQL in ``data_dir`` when no server is given."""
    if server_url is None:
        from service.db.pool import resolve_dsn

        return await resolve_dsn(None, data_dir)
    import asyncpg

    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    p = urlsplit(server_url)
    return urlunsplit((p.scheme, p.netloc, f"/{name}", p.query, ""))

"""SQL of the database's own housekeeping: the record of migrations, advisory locks, liveness.

Every function takes a connection; none opens one. The embedded server's two statements are
text for ``pgserver``'s ``psql`` (it has no connection of ours yet).
"""

from __future__ import annotations

import asyncpg

# Before any connection of ours exists: run through pgserver's psql by the embedded server.
EMBEDDED_DATABASES = "SELECT datname FROM pg_database;"


def create_database(name: str) -> str:
    """The statement creating the embedded server's database ``name`` (a fixed identifier)."""
    return f"CREATE DATABASE {name};"


async def advisory_lock(conn: asyncpg.Connection, key: int) -> None:
    """Wait for the session-level advisory lock ``key``."""
    await conn.execute("SELECT pg_advisory_lock($1)", key)


async def advisory_unlock(conn: asyncpg.Connection, key: int) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", key)


async def try_advisory_lock(conn: asyncpg.Connection, key: int) -> bool:
    """Take the session-level advisory lock ``key`` if nobody holds it; True when taken."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))


async def ping(conn: asyncpg.Connection | asyncpg.Pool, limit_s: float | None = None) -> None:
    """One round trip within ``limit_s`` seconds: raises when the connection or server is gone."""
    await conn.fetchval("SELECT 1", timeout=limit_s)


async def ensure_migrations_table(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )


async def applied_versions(conn: asyncpg.Connection) -> set[int]:
    """The versions of the migrations already applied."""
    return {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}


async def record_migration(conn: asyncpg.Connection, version: int, name: str) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
    )

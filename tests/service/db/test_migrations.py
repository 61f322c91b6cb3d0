"""The numbered migrations on an empty database, re-run, and raced."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from service.db.migrate import apply_migrations, available
from tests.conftest import Database


@pytest.fixture
async def empty_dsn(database: Database) -> AsyncIterator[str]:
    name = f"decroche_empty_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database.admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(database.admin_dsn)
    yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in available()]
    assert versions == list(range(1, len(versions) + 1))


async def test_all_migrations_apply_to_an_empty_database_once(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        applied = await apply_migrations(conn)
        assert [m.version for m in applied] == [m.version for m in available()]
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"events", "calls", "quarantine", "schema_migrations"} <= tables
        assert await apply_migrations(conn) == []
    finally:
        await conn.close()


async def test_concurrent_starts_apply_each_migration_exactly_once(empty_dsn: str) -> None:
    conns = [await asyncpg.connect(empty_dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        assert sum(len(r) for r in results) == len(available())
        count = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(available())
    finally:
        for c in conns:
            await c.close()


async def test_pool_settings_survive_the_reset_on_release(database: Database) -> None:
    from service.db.pool import SERVER_SETTINGS, create_pool

    pool = await create_pool(database.dsn, min_size=1, max_size=1)
    try:
        for _ in range(2):  # the second acquire gets the connection back after RESET ALL
            async with pool.acquire() as conn:
                shown = await conn.fetchval("SHOW jit_above_cost")  # "2e+06"
                assert float(shown) == float(SERVER_SETTINGS["jit_above_cost"])
                # Generic plans made on a near-empty table would outlive its growth.
                assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
                await conn.execute("SET jit_above_cost = 5")
                await conn.execute("SET plan_cache_mode = auto")
    finally:
        await pool.close()

"""Numbered SQL migrations (``migrations/NNNN_name.sql``), applied once each, in order.

Applied versions are recorded in ``schema_migrations``. A session-level advisory lock makes
concurrent starts safe: two instances starting together apply each migration exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from service.db import queries as q

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x646563726F6368  # "decroch": any constant shared by every instance


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    out = []
    for entry in resources.files("service.db").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    out.sort(key=lambda m: m.version)
    return out


async def apply_migrations(conn: asyncpg.Connection) -> list[Migration]:
    """Apply the pending migrations; return those applied now."""
    await q.advisory_lock(conn, _LOCK_ID)
    try:
        await q.ensure_migrations_table(conn)
        done = await q.applied_versions(conn)
        applied = []
        for mig in available():
            if mig.version in done:
                continue
            async with conn.transaction():
                await conn.execute(mig.sql)
                await q.record_migration(conn, mig.version, mig.name)
            applied.append(mig)
        return applied
    finally:
        await q.advisory_unlock(conn, _LOCK_ID)

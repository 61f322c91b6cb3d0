"""SQL of stored grid versions (each function takes a connection)."""

from __future__ import annotations

from typing import Any

import asyncpg

from campaigns.grids.model import Grid


async def version_for_update(conn: Any, slug: str, version: int) -> asyncpg.Record | None:
    """The stored version's id and digest, locked until the transaction ends."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, digest FROM grids WHERE slug = $1 AND version = $2 FOR UPDATE",
        slug,
        version,
    )
    return row


async def insert_grid(conn: Any, grid: Grid, source: str, origin: str) -> int | None:
    """The new version's id; None when another writer stored this slug and version first."""
    gid: int | None = await conn.fetchval(
        "INSERT INTO grids (slug, version, name, definition, digest, source, origin) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (slug, version) DO NOTHING RETURNING id",
        grid.slug,
        grid.version,
        grid.name,
        grid.as_dict(),
        grid.digest,
        source,
        origin,
    )
    return gid


async def update_grid(conn: Any, grid_id: int, grid: Grid, source: str, origin: str) -> None:
    await conn.execute(
        "UPDATE grids SET name = $2, definition = $3, digest = $4, source = $5, "
        "origin = $6, updated_at = now() WHERE id = $1",
        grid_id,
        grid.name,
        grid.as_dict(),
        grid.digest,
        source,
        origin,
    )


async def evaluations_using(conn: Any, grid_id: int) -> int:
    """How many evaluations were scored with the stored version ``grid_id``."""
    used: int = await conn.fetchval("SELECT count(*) FROM evaluations WHERE grid_id = $1", grid_id)
    return used


async def definition(conn: Any, grid_id: int, *, lock: bool = False) -> Any:
    """A stored version's definition (None for no such id); ``lock`` holds it in share mode
    until the transaction ends."""
    if lock:
        return await conn.fetchval("SELECT definition FROM grids WHERE id = $1 FOR SHARE", grid_id)
    return await conn.fetchval("SELECT definition FROM grids WHERE id = $1", grid_id)


async def versions(conn: Any, slug: str) -> list[asyncpg.Record]:
    """The stored versions of ``slug`` (id, version, digest), the highest first."""
    return list(
        await conn.fetch(
            "SELECT id, version, digest FROM grids WHERE slug = $1 ORDER BY version DESC", slug
        )
    )


async def grid_id(conn: Any, slug: str, version: int | None) -> int | None:
    """The id of a stored version, or None."""
    gid: int | None = await conn.fetchval(
        "SELECT id FROM grids WHERE slug = $1 AND version = $2", slug, version
    )
    return gid


async def all_slugs(conn: Any) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT DISTINCT slug FROM grids ORDER BY slug"))


async def stored_versions(conn: Any) -> list[asyncpg.Record]:
    """Every stored version with how many evaluations use it."""
    return list(
        await conn.fetch(
            "SELECT g.slug, g.version, g.name, g.origin, g.digest, "
            "(SELECT count(*) FROM evaluations e WHERE e.grid_id = g.id) AS evaluations "
            "FROM grids g"
        )
    )

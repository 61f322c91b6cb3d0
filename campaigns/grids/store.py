"""Grid versions in the database: a version, once used by an evaluation, never changes.

A campaign refers to the stored version of its grid. Storing a file's grid again with the
same content changes nothing; with another content under the same slug and version it
replaces the stored definition only while no evaluation uses it — after that it is
refused, and the message says to raise ``version``.
"""

from __future__ import annotations

from typing import Any, TypedDict

from campaigns.grids import queries
from campaigns.grids.library import GridLibrary
from campaigns.grids.model import Grid, parse_grid


class GridConflict(ValueError):
    """Another content under a grid version that evaluations already use."""


class GridNotFound(LookupError):
    pass


async def store_grid(conn: Any, grid: Grid, source: str, origin: str) -> int:
    """The id of ``grid``'s stored version, storing or updating it (see the module)."""
    async with conn.transaction():
        row = await queries.version_for_update(conn, grid.slug, grid.version)
        if row is None:
            gid = await queries.insert_grid(conn, grid, source, origin)
            if gid is None:  # stored by another writer meanwhile: compare with theirs
                return await store_grid(conn, grid, source, origin)
            return gid
        if row["digest"] == grid.digest:
            return int(row["id"])
        await _refuse_if_used(conn, int(row["id"]), grid, origin)
        await queries.update_grid(conn, row["id"], grid, source, origin)
        return int(row["id"])


async def _refuse_if_used(conn: Any, grid_id: int, grid: Grid, origin: str) -> None:
    """Another content for the stored version ``grid_id``: refused once an evaluation uses it."""
    used = await queries.evaluations_using(conn, grid_id)
    if used:
        raise GridConflict(
            f"grid {grid.label} ({origin}) differs from the stored version that "
            f"{used} evaluation(s) use; a used version never changes: give the grid "
            f"version = {grid.version + 1}"
        )


async def stored_grid(conn: Any, grid_id: int, *, lock: bool = False) -> Grid:
    """A stored grid; ``lock`` holds it (share mode) until the transaction ends, so that
    nobody replaces its definition while an evaluation scored with it is being saved."""
    definition = await queries.definition(conn, grid_id, lock=lock)
    if definition is None:
        raise GridNotFound(f"no stored grid {grid_id}")
    return parse_grid(definition, f"stored grid {grid_id}")


async def resolve_grid(
    conn: Any, library: GridLibrary, slug: str, version: int | None, *, store: bool = True
) -> tuple[int | None, Grid]:
    """The stored id and grid a campaign names: the file's when a file has it (stored or
    updated first), else the stored one; without a version, the highest there is.

    ``store=False`` changes nothing (a plan's preview, reading a grid): it answers what
    storing would give — the id is None for a file's version not stored yet — and refuses
    what storing would refuse."""
    stored = await queries.versions(conn, slug)
    from_file = library.get(slug, version)
    best_stored = next((r for r in stored if version is None or r["version"] == version), None)
    if from_file is not None and (
        best_stored is None or from_file.version >= best_stored["version"]
    ):
        path = library.source(from_file)
        if store:
            source = path.read_text("utf-8") if path is not None else ""
            return await store_grid(conn, from_file, source, str(path)), from_file
        same = next((r for r in stored if r["version"] == from_file.version), None)
        if same is None:
            return None, from_file
        if same["digest"] != from_file.digest:
            await _refuse_if_used(conn, int(same["id"]), from_file, str(path))
        return int(same["id"]), from_file
    if best_stored is not None:
        return int(best_stored["id"]), await stored_grid(conn, int(best_stored["id"]))
    wanted = slug if version is None else f"{slug} v{version}"
    in_db = {r["slug"] for r in await queries.all_slugs(conn)}
    known = sorted({s for s, _ in library.grids} | in_db)
    raise GridNotFound(f"no grid {wanted} (known: {', '.join(known) or 'none'})")


class GridVersionJson(TypedDict):
    """A grid version known: its file (None: only stored), whether it is stored, and how
    many evaluations use it."""

    slug: str
    version: int
    name: str
    file: str | None
    stored: bool
    evaluations: int


async def list_grids(conn: Any, library: GridLibrary) -> list[GridVersionJson]:
    """Every grid version known, from files and from the database, newest first per slug."""
    out: dict[tuple[str, int], GridVersionJson] = {}
    for (slug, version), (grid, path) in library.grids.items():
        out[(slug, version)] = {
            "slug": slug,
            "version": version,
            "name": grid.name,
            "file": str(path),
            "stored": False,
            "evaluations": 0,
        }
    for r in await queries.stored_versions(conn):
        entry = out.setdefault(
            (r["slug"], r["version"]),
            {
                "slug": r["slug"],
                "version": r["version"],
                "name": r["name"],
                "file": None,
                "stored": True,
                "evaluations": 0,
            },
        )
        entry["stored"] = True
        entry["evaluations"] = int(r["evaluations"])
    return [out[k] for k in sorted(out, key=lambda k: (k[0], -k[1]))]

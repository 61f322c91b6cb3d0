"""``/api/v1/grids``: the grid versions known (files and database), one grid, a new one."""

from __future__ import annotations

import orjson
from aiohttp import web

from campaigns import flows
from campaigns.grids import queries as grid_queries
from campaigns.grids.model import parse_grid
from campaigns.grids.store import (
    GridConflict,
    GridNotFound,
    list_grids,
    resolve_grid,
    store_grid,
    stored_grid,
)
from campaigns.web.http import answers, audit, read_body
from service.keys import DB_POOL, SETTINGS
from service.municipality.tables import ConfigError
from service.web.errors import ApiError
from service.web.params import whole


@answers
async def get_grids(request: web.Request) -> web.Response:
    lib = flows.library(request.app[SETTINGS])
    async with request.app[DB_POOL].acquire() as conn:
        return web.json_response({"grids": await list_grids(conn, lib)})


@answers
async def get_grid(request: web.Request) -> web.Response:
    """The grid a campaign naming it would use (or the version asked): the same rule as a
    campaign's creation; a version in use is served as stored, even if its file changed."""
    slug = request.match_info["slug"]
    wanted = whole(request, "version", 0, 1, 2**31 - 1) or None
    async with request.app[DB_POOL].acquire() as conn:
        try:
            _, grid = await resolve_grid(
                conn, flows.library(request.app[SETTINGS]), slug, wanted, store=False
            )
        except GridNotFound as exc:
            raise ApiError(str(exc), status=404) from None
        except GridConflict as exc:
            gid = await grid_queries.grid_id(conn, slug, wanted)
            if gid is None:  # the file's latest version clashes with a used one
                raise ApiError(str(exc), status=409) from None
            grid = await stored_grid(conn, gid)
    return web.json_response(grid.as_dict())


async def post_grid(request: web.Request) -> web.Response:
    """Register a grid version (TOML or JSON); the same content again changes nothing."""
    data, source = await read_body(request)
    try:
        grid = parse_grid(data, "body")
    except ConfigError as exc:
        raise ApiError(exc.problem, field=exc.key or None) from None
    try:
        async with request.app[DB_POOL].acquire() as conn:
            gid = await store_grid(conn, grid, source or orjson.dumps(data).decode(), "api")
    except GridConflict as exc:
        raise ApiError(str(exc), status=409, field="version") from None
    await audit(request, "grid.store", f"grid:{gid}", {"slug": grid.slug, "version": grid.version})
    return web.json_response({"id": gid, **grid.as_dict()}, status=201)

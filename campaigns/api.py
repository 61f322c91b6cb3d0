"""The campaigns API: grids, campaigns, their plans, evaluations and results.

``/api/v1/grids`` and ``/api/v1/campaigns`` need the quality role. ``/api/v1/mystery-calls``
is open to any account, and each handler checks the call: an evaluator (the account whose
e-mail the plan names) reads and evaluates their own calls; quality does everything.
Bodies are JSON, or TOML (``Content-Type: application/toml``) with the structure of the
file — the same checks, the same messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from campaigns import exports, flows, payloads, queries
from campaigns.grid_store import GridConflict, list_grids, store_grid, stored_grid
from campaigns.grids import Grid, parse_grid
from campaigns.plan_formats import to_csv as plan_csv
from campaigns.plan_formats import to_ics
from campaigns.planner import PlannedCall
from campaigns.spec import CampaignSpec
from service.accounts import queries as accounts
from service.accounts.model import Principal, Role
from service.calendar import Calendar
from service.config_tables import ConfigError, parse_toml
from service.keys import CALENDAR, DB_POOL, SETTINGS
from service.web.auth import principal
from service.web.errors import ApiError

BODY_LIMIT = 512 * 1024  # a campaign of thousands of calls is a few kilobytes
TOML_TYPES = ("application/toml", "text/toml", "text/x-toml")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answers(handler: Handler) -> Handler:
    """Turn a flow's :class:`CampaignError` into the JSON error (with ``problems``)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except flows.CampaignError as exc:
            body: dict[str, Any] = {"error": exc.message}
            if exc.field:
                body["field"] = exc.field
            if exc.problems:
                body["problems"] = exc.problems
            return web.json_response(body, status=exc.status)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def read_body(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """The body as a mapping, and its text when it was TOML (kept as the campaign's source)."""
    if request.content_length is not None and request.content_length > BODY_LIMIT:
        raise ApiError(f"body too large (at most {BODY_LIMIT} bytes)", status=413)
    raw = await request.content.read(BODY_LIMIT + 1)
    if len(raw) > BODY_LIMIT:
        raise ApiError(f"body too large (at most {BODY_LIMIT} bytes)", status=413)
    if request.content_type in TOML_TYPES:
        try:
            return parse_toml(raw, "body"), raw.decode("utf-8")
        except ConfigError as exc:
            raise ApiError(exc.problem) from None
    if request.content_type != "application/json":
        raise ApiError("send JSON (application/json) or TOML (application/toml)", status=415)
    if not raw.strip():
        return {}, None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(f"body is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise ApiError("body must be a JSON object")
    return data, None


def _id(request: web.Request, name: str = "id") -> int:
    value = request.match_info[name]
    if not value.isdigit():
        raise ApiError(f"{name} must be a number", field=name, status=404)
    return int(value)


def _now() -> datetime:
    return datetime.now(UTC)


async def _audit(
    request: web.Request, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    await accounts.audit(
        request.app[DB_POOL], principal(request).label, action, target, detail, request.remote
    )


# -- grids -----------------------------------------------------------------------------------


async def get_grids(request: web.Request) -> web.Response:
    lib = flows.library(request.app[SETTINGS])
    async with request.app[DB_POOL].acquire() as conn:
        return web.json_response({"grids": await list_grids(conn, lib)})


@answers
async def get_grid(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    version = request.query.get("version")
    if version is not None and not version.isdigit():
        raise ApiError("version must be a whole number", field="version")
    wanted = int(version) if version else None
    grid = flows.library(request.app[SETTINGS]).get(slug, wanted)
    if grid is None:
        pool = request.app[DB_POOL]
        gid = await pool.fetchval(
            "SELECT id FROM grids WHERE slug = $1 AND ($2::int IS NULL OR version = $2) "
            "ORDER BY version DESC LIMIT 1",
            slug,
            wanted,
        )
        if gid is None:
            raise ApiError(f"no grid {slug}" + (f" v{wanted}" if wanted else ""), status=404)
        grid = await stored_grid(pool, gid)
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
    await _audit(request, "grid.store", f"grid:{gid}", {"slug": grid.slug, "version": grid.version})
    return web.json_response({"id": gid, **grid.as_dict()}, status=201)


# -- campaigns ---------------------------------------------------------------------------------


def _names(request: web.Request) -> dict[str, str]:
    return {s.slug: s.name for s in request.app[SETTINGS].municipality.services}


def _plan_answer(
    request: web.Request, spec: CampaignSpec, calls: tuple[PlannedCall, ...], notes: tuple[str, ...]
) -> web.StreamResponse:
    fmt = request.query.get("format", "json")
    tz = request.app[CALENDAR].tz
    if fmt == "csv":
        return web.Response(text=plan_csv(calls, tz), content_type="text/csv", charset="utf-8")
    if fmt == "ics":
        return web.Response(
            text=to_ics(spec, calls, names=_names(request)),
            content_type="text/calendar",
            charset="utf-8",
        )
    if fmt != "json":
        raise ApiError("format must be json, csv or ics", field="format")
    return web.json_response(
        {"calls": [c.as_dict() for c in calls], "count": len(calls), "notes": list(notes)}
    )


@answers
async def post_plan(request: web.Request) -> web.StreamResponse:
    """Plan a campaign without storing it (what ``decroche campaign plan`` prints)."""
    data, _ = await read_body(request)
    cal: Calendar = request.app[CALENDAR]
    spec = flows.parse(data, "body", cal)
    async with request.app[DB_POOL].acquire() as conn, conn.transaction():
        await flows.grid_for(conn, request.app[SETTINGS], spec)  # the grid must exist
    plan = flows.plan_or_refuse(spec, cal)
    return _plan_answer(request, spec, plan.calls, plan.notes)


@answers
async def post_campaign(request: web.Request) -> web.Response:
    data, source = await read_body(request)
    who = principal(request)
    pool = request.app[DB_POOL]
    cid = await flows.create(
        pool,
        request.app[SETTINGS],
        request.app[CALENDAR],
        data,
        origin="body",
        source=source,
        actor=who.label,
    )
    row = await flows.campaign_or_404(pool, cid)
    await _audit(request, "campaign.create", f"campaign:{cid}", {"calls": row["calls"]})
    return web.json_response(
        payloads.campaign_json(row), status=201, headers={"Location": f"/api/v1/campaigns/{cid}"}
    )


async def get_campaigns(request: web.Request) -> web.Response:
    rows = await queries.list_campaigns(request.app[DB_POOL])
    return web.json_response({"campaigns": [payloads.campaign_json(r) for r in rows]})


@answers
async def get_campaign(request: web.Request) -> web.Response:
    row = await flows.campaign_or_404(request.app[DB_POOL], _id(request))
    return web.json_response({**payloads.campaign_json(row), "spec": row["spec"]})


def _evaluator_names(spec: Mapping[str, Any]) -> dict[str, str]:
    return {e["email"]: e["name"] for e in spec["evaluators"]}


@answers
async def get_calls(request: web.Request) -> web.StreamResponse:
    """The current plan's calls (``?service=``, ``?evaluator=``; ``?format=csv|ics``)."""
    cid = _id(request)
    pool = request.app[DB_POOL]
    row = await flows.campaign_or_404(pool, cid)
    rows = await queries.current_calls(
        pool,
        cid,
        service=request.query.get("service") or None,
        evaluator=(request.query.get("evaluator") or "").lower() or None,
    )
    tz = request.app[CALENDAR].tz
    now = _now()
    names = _names(request)
    calls = [payloads.call_json(r, names, _evaluator_names(row["spec"]), tz, now) for r in rows]
    fmt = request.query.get("format", "json")
    if fmt == "json":
        return web.json_response({"calls": calls, "count": len(calls)})
    if fmt == "csv":
        frame = exports.calls_frame(calls)
        return web.Response(
            text=frame.to_csv(index=False), content_type="text/csv", charset="utf-8"
        )
    if fmt == "ics":
        cal: Calendar = request.app[CALENDAR]
        spec = flows.parse(row["spec"], f"campaign {cid}", cal)
        planned = [_planned(r) for r in rows if r["status"] != "cancelled"]
        base = request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"
        links = {
            i: f"{base}/appels-mysteres/{r['id']}"
            for i, r in enumerate(r for r in rows if r["status"] != "cancelled")
        }
        return web.Response(
            text=to_ics(spec, planned, names=names, links=links),
            content_type="text/calendar",
            charset="utf-8",
        )
    raise ApiError("format must be json, csv or ics", field="format")


def _planned(r: Mapping[str, Any]) -> PlannedCall:
    return PlannedCall(
        scheduled_at=r["scheduled_at"],
        service=r["service"],
        number=r["number"],
        scenario=r["scenario"],
        evaluator=r["evaluator"],
        mode=r["mode"],
        half_day=r["half_day"],
        moment=r["moment"],
    )


@answers
async def post_replan(request: web.Request) -> web.Response:
    data, _ = await read_body(request) if request.can_read_body else ({}, None)
    cid = _id(request)
    done = await flows.replan(
        request.app[DB_POOL],
        request.app[CALENDAR],
        cid,
        data,
        actor=principal(request).label,
        now=_now(),
    )
    await _audit(request, "campaign.replan", f"campaign:{cid}", done)
    return web.json_response(done)


@answers
async def post_cancel(request: web.Request) -> web.Response:
    cid = _id(request)
    done = await flows.cancel(request.app[DB_POOL], cid, actor=principal(request).label, now=_now())
    await _audit(request, "campaign.cancel", f"campaign:{cid}", done)
    return web.json_response(done)


@answers
async def get_results(request: web.Request) -> web.StreamResponse:
    """The results (``?format=csv&table=services|sections|items|strata|calls``, ``xlsx``)."""
    cid = _id(request)
    pool = request.app[DB_POOL]
    now = _now()
    async with pool.acquire() as conn:
        results = await flows.results(conn, request.app[CALENDAR], cid, now=now)
        row = await flows.campaign_or_404(conn, cid)
        rows = await queries.current_calls(conn, cid)
    fmt = request.query.get("format", "json")
    if fmt == "json":
        return web.json_response(results)
    tz = request.app[CALENDAR].tz
    calls = [
        payloads.call_json(r, _names(request), _evaluator_names(row["spec"]), tz, now) for r in rows
    ]
    if fmt == "csv":
        table = request.query.get("table", "services")
        if table not in exports.TABLES:
            raise ApiError(f"table must be one of {', '.join(exports.TABLES)}", field="table")
        return web.Response(
            text=exports.to_csv(results, table, calls),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="campagne-{cid}-{table}.csv"'},
        )
    if fmt == "xlsx":
        return web.Response(
            body=exports.to_xlsx(results, calls),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="campagne-{cid}.xlsx"'},
        )
    raise ApiError("format must be json, csv or xlsx", field="format")


# -- mystery calls and their evaluations ------------------------------------------------------


async def _call_for(request: web.Request, who: Principal) -> tuple[asyncpg.Record, flows.Access]:
    row = await queries.mystery_call(request.app[DB_POOL], _id(request))
    if row is None:
        raise ApiError(f"no mystery call {_id(request)}", status=404)
    rights = flows.access(who, row)
    if not rights.read:
        raise ApiError("this mystery call is not yours", status=403)
    return row, rights


@answers
async def get_mystery_call(request: web.Request) -> web.Response:
    """A planned call with all its scoring page needs: scenario, grid, evaluation, rights."""
    who = principal(request)
    row, rights = await _call_for(request, who)
    spec = row["campaign_spec"]
    scenario = next((s for s in spec["scenarios"] if s["id"] == row["scenario"]), None)
    grid: Grid = await stored_grid(request.app[DB_POOL], row["campaign_grid_id"])
    tz = request.app[CALENDAR].tz
    body = payloads.call_json(row, _names(request), _evaluator_names(spec), tz, _now())
    body |= {
        "campaign_name": row["campaign_name"],
        "campaign_status": row["campaign_status"],
        "scenario": scenario,
        "grid": grid.as_dict(),
        "evaluation": payloads.evaluation_json(row),
        "can_evaluate": rights.evaluate,
        "can_correct": rights.correct,
        "can_mark_missed": who.has(Role.QUALITY) and row["evaluation_id"] is None,
    }
    return web.json_response(body)


@answers
async def get_evaluation(request: web.Request) -> web.Response:
    """The evaluation and every revision a correction replaced."""
    row, _ = await _call_for(request, principal(request))
    current = payloads.evaluation_json(row)
    if current is None:
        raise ApiError("this call has no evaluation yet", status=404)
    past = await queries.history(request.app[DB_POOL], row["evaluation_id"])
    return web.json_response(
        {
            **current,
            "history": [
                {
                    **dict(h),
                    "saved_at": h["saved_at"].isoformat(),
                    "replaced_at": h["replaced_at"].isoformat(),
                }
                for h in past
            ],
        }
    )


@answers
async def put_evaluation(request: web.Request) -> web.Response:
    data, _ = await read_body(request)
    who = principal(request)
    cal: Calendar = request.app[CALENDAR]
    now = _now()
    saved, created = await flows.save_evaluation(
        request.app[DB_POOL],
        _id(request),
        who,
        data,
        now=now,
        today=now.astimezone(cal.tz).date(),
        tz=cal.tz,
    )
    await _audit(
        request,
        "evaluation.create" if created else "evaluation.correct",
        f"mystery_call:{_id(request)}",
        {"revision": saved["revision"], "score": saved["score"]},
    )
    return web.json_response(saved, status=201 if created else 200)


@answers
async def post_missed(request: web.Request) -> web.Response:
    who = principal(request)
    if not who.has(Role.QUALITY):
        raise ApiError("marking a call missed needs the quality role", status=403)
    data, _ = await read_body(request) if request.can_read_body else ({}, None)
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise ApiError("reason must be a text (500 characters at most)", field="reason")
    await flows.mark_missed(
        request.app[DB_POOL], _id(request), reason=reason.strip(), actor=who.label, now=_now()
    )
    await _audit(request, "mystery_call.missed", f"mystery_call:{_id(request)}")
    return web.json_response({"id": _id(request), "state": "missed"})


async def get_my_calls(request: web.Request) -> web.Response:
    """The requester's own mystery calls (as the evaluator the plans name)."""
    who = principal(request)
    if who.email is None:
        return web.json_response({"calls": [], "count": 0})
    rows = await queries.calls_of_evaluator(request.app[DB_POOL], who.email)
    tz = request.app[CALENDAR].tz
    now = _now()
    calls = [
        payloads.call_json(r, _names(request), {}, tz, now) | {"campaign_name": r["campaign_name"]}
        for r in rows
    ]
    return web.json_response({"calls": calls, "count": len(calls)})


def setup_campaign_api(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/grids", get_grids)
    r.add_post("/api/v1/grids", post_grid)
    r.add_get("/api/v1/grids/{slug}", get_grid)
    r.add_post("/api/v1/campaigns/plan", post_plan)
    r.add_get("/api/v1/campaigns", get_campaigns)
    r.add_post("/api/v1/campaigns", post_campaign)
    r.add_get("/api/v1/campaigns/{id}", get_campaign)
    r.add_get("/api/v1/campaigns/{id}/calls", get_calls)
    r.add_post("/api/v1/campaigns/{id}/replan", post_replan)
    r.add_post("/api/v1/campaigns/{id}/cancel", post_cancel)
    r.add_get("/api/v1/campaigns/{id}/results", get_results)
    r.add_get("/api/v1/mystery-calls", get_my_calls)
    r.add_get("/api/v1/mystery-calls/{id}", get_mystery_call)
    r.add_get("/api/v1/mystery-calls/{id}/evaluation", get_evaluation)
    r.add_put("/api/v1/mystery-calls/{id}/evaluation", put_evaluation)
    r.add_post("/api/v1/mystery-calls/{id}/missed", post_missed)

"""``/api/v1/campaigns``: plan a campaign without storing it, create, list, read, its
calls (JSON, CSV, iCalendar), re-plan, cancel, and its results (JSON, CSV, XLSX)."""

from __future__ import annotations

from aiohttp import web

from campaigns import flows, payloads, queries
from campaigns.plan.formats import to_csv as plan_csv
from campaigns.plan.formats import to_ics
from campaigns.plan.planner import PlannedCall
from campaigns.spec import CampaignSpec
from campaigns.web import exports
from campaigns.web.http import (
    answers,
    audit,
    evaluator_names,
    path_id,
    read_body,
    service_names,
    utc_now,
)
from service.keys import CALENDAR, DB_POOL, SETTINGS
from service.municipality.calendar import Calendar
from service.web.auth import principal
from service.web.errors import ApiError


def _plan_answer(
    request: web.Request, spec: CampaignSpec, calls: tuple[PlannedCall, ...], notes: tuple[str, ...]
) -> web.StreamResponse:
    fmt = request.query.get("format", "json")
    tz = request.app[CALENDAR].tz
    if fmt == "csv":
        return web.Response(text=plan_csv(calls, tz), content_type="text/csv", charset="utf-8")
    if fmt == "ics":
        return web.Response(
            text=to_ics(spec, calls, names=service_names(request)),
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
    async with request.app[DB_POOL].acquire() as conn:
        # The grid must exist (and be usable); a preview stores nothing, not even it.
        await flows.grid_for(conn, request.app[SETTINGS], spec, store=False)
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
    await audit(request, "campaign.create", f"campaign:{cid}", payloads.creation_detail(row))
    return web.json_response(
        payloads.campaign_json(row), status=201, headers={"Location": f"/api/v1/campaigns/{cid}"}
    )


async def get_campaigns(request: web.Request) -> web.Response:
    rows = await queries.list_campaigns(request.app[DB_POOL])
    return web.json_response({"campaigns": [payloads.campaign_json(r) for r in rows]})


@answers
async def get_campaign(request: web.Request) -> web.Response:
    row = await flows.campaign_or_404(request.app[DB_POOL], path_id(request))
    return web.json_response({**payloads.campaign_json(row), "spec": row["spec"]})


@answers
async def get_calls(request: web.Request) -> web.StreamResponse:
    """The current plan's calls (``?service=``, ``?evaluator=``; ``?format=csv|ics``)."""
    cid = path_id(request)
    pool = request.app[DB_POOL]
    row = await flows.campaign_or_404(pool, cid)
    rows = await queries.current_calls(
        pool,
        cid,
        service=request.query.get("service") or None,
        evaluator=(request.query.get("evaluator") or "").lower() or None,
    )
    tz = request.app[CALENDAR].tz
    now = utc_now()
    names = service_names(request)
    calls = [payloads.call_json(r, names, evaluator_names(row["spec"]), tz, now) for r in rows]
    fmt = request.query.get("format", "json")
    if fmt == "json":
        return web.json_response({"calls": calls, "count": len(calls)})
    if fmt == "csv":
        return web.Response(text=exports.calls_csv(calls), content_type="text/csv", charset="utf-8")
    if fmt == "ics":
        cal: Calendar = request.app[CALENDAR]
        spec = flows.parse(row["spec"], f"campaign {cid}", cal)
        planned = [queries.record_as(PlannedCall, r) for r in rows if r["status"] != "cancelled"]
        base = request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"
        links = {
            i: f"{base}/appels-mysteres/{r['id']}"
            for i, r in enumerate(r for r in rows if r["status"] != "cancelled")
        }
        return web.Response(
            text=to_ics(spec, planned, names=names, links=links, stamp=row["created_at"]),
            content_type="text/calendar",
            charset="utf-8",
        )
    raise ApiError("format must be json, csv or ics", field="format")


@answers
async def post_replan(request: web.Request) -> web.Response:
    data, _ = await read_body(request) if request.can_read_body else ({}, None)
    cid = path_id(request)
    done = await flows.replan(
        request.app[DB_POOL],
        request.app[CALENDAR],
        cid,
        data,
        actor=principal(request).label,
        now=utc_now(),
    )
    await audit(request, "campaign.replan", f"campaign:{cid}", done)
    return web.json_response(done)


@answers
async def post_cancel(request: web.Request) -> web.Response:
    cid = path_id(request)
    done = await flows.cancel(
        request.app[DB_POOL], cid, actor=principal(request).label, now=utc_now()
    )
    await audit(request, "campaign.cancel", f"campaign:{cid}", done)
    return web.json_response(done)


@answers
async def get_results(request: web.Request) -> web.StreamResponse:
    """The results (``?format=csv&table=services|sections|items|strata|calls``, ``xlsx``)."""
    cid = path_id(request)
    pool = request.app[DB_POOL]
    now = utc_now()
    async with pool.acquire() as conn:
        settings = request.app[SETTINGS]
        results = await flows.results(
            conn,
            request.app[CALENDAR],
            cid,
            now=now,
            secret_key=settings.secret_key,
            caller_id=settings.twilio_caller_id,
        )
        row = await flows.campaign_or_404(conn, cid)
        rows = await queries.current_calls(conn, cid)
    fmt = request.query.get("format", "json")
    if fmt == "json":
        return web.json_response(results)
    tz = request.app[CALENDAR].tz
    calls = [
        payloads.call_json(r, service_names(request), evaluator_names(row["spec"]), tz, now)
        for r in rows
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

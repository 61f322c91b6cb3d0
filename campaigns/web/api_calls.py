"""``/api/v1/mystery-calls``: one planned call with what its scoring page needs, its
evaluation (saved, corrected, with its history), a call marked missed, and the requester's
own calls. Open to any account: each handler checks that the call is the requester's, or
that they are in the quality team (``evaluations.access``)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from campaigns import evaluations, payloads, queries
from campaigns.grids.model import Grid
from campaigns.grids.store import stored_grid
from campaigns.run import queries as run_queries
from campaigns.web.http import (
    answers,
    audit,
    evaluator_names,
    path_id,
    read_body,
    service_names,
    utc_now,
)
from service.accounts.model import Principal, Role
from service.keys import CALENDAR, DB_POOL, TWILIO
from service.municipality.calendar import Calendar
from service.outside.twilio.rest import TwilioNotConfigured, TwilioUnavailable
from service.web.auth import principal
from service.web.errors import ApiError
from service.web.security import stamp_stream


async def _in_campaign(request: web.Request) -> None:
    """Under ``/api/v1/campaigns/{campaign}/calls/{id}``, the call must be that campaign's."""
    if "campaign" not in request.match_info:
        return
    owner = await queries.campaign_of_call(request.app[DB_POOL], path_id(request))
    if owner is None or owner != path_id(request, "campaign"):
        raise ApiError(
            f"no call {path_id(request)} in campaign {path_id(request, 'campaign')}", status=404
        )


async def _call_for(
    request: web.Request, who: Principal
) -> tuple[asyncpg.Record, evaluations.Access]:
    await _in_campaign(request)
    row = await queries.mystery_call(request.app[DB_POOL], path_id(request))
    if row is None:
        raise ApiError(f"no mystery call {path_id(request)}", status=404)
    rights = evaluations.access(who, row)
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
    call = payloads.call_json(row, service_names(request), evaluator_names(spec), tz, utc_now())
    body: payloads.MysteryCallJson = {
        **call,
        "campaign_name": row["campaign_name"],
        "campaign_status": row["campaign_status"],
        "scenario": scenario,
        "grid": grid.as_dict(),
        "evaluation": payloads.evaluation_json(row),
        "can_evaluate": rights.evaluate,
        "can_correct": rights.correct,
        "can_mark_missed": who.has(Role.QUALITY) and row["evaluation_id"] is None,
        "run": payloads.run_json(await run_queries.run_of(request.app[DB_POOL], row["id"]), tz),
    }
    return web.json_response(body)


@answers
async def get_recording(request: web.Request) -> web.StreamResponse:
    """The recording of an assisted call, fetched from Twilio for whoever may read the call
    (its evaluator, the quality team): Twilio's own URL and credentials are never shown."""
    who = principal(request)
    row, _ = await _call_for(request, who)
    run = await run_queries.run_of(request.app[DB_POOL], row["id"])
    if run is None or run["recording_sid"] is None:
        raise ApiError("this call has no recording", status=404)
    if run["recording_erased_at"] is not None:
        raise ApiError(
            f"the recording was erased on {run['recording_erased_at']:%Y-%m-%d} "
            "(privacy.keep_recordings_days)",
            status=410,
        )
    twilio = request.app[TWILIO]
    try:
        async with twilio.recording(run["recording_sid"]) as chunks:
            out = web.StreamResponse(
                headers={
                    "Content-Type": "audio/mpeg",
                    "Cache-Control": "private, no-store",
                    "Content-Disposition": f'inline; filename="appel-mystere-{row["id"]}.mp3"',
                }
            )
            stamp_stream(request, out)  # a stream: the middleware cannot add them later
            await out.prepare(request)
            async for chunk in chunks:
                await out.write(chunk)
            await out.write_eof()
            return out
    except TwilioNotConfigured as exc:
        raise ApiError(str(exc), status=503) from None
    except TwilioUnavailable as exc:
        raise ApiError(str(exc), status=502) from None


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
    await _in_campaign(request)
    data, _ = await read_body(request)
    who = principal(request)
    cal: Calendar = request.app[CALENDAR]
    now = utc_now()
    saved, created = await evaluations.save_evaluation(
        request.app[DB_POOL],
        path_id(request),
        who,
        data,
        now=now,
        today=now.astimezone(cal.tz).date(),
        tz=cal.tz,
    )
    await audit(
        request,
        "evaluation.create" if created else "evaluation.correct",
        f"mystery_call:{path_id(request)}",
        {"revision": saved["revision"], "score": saved["score"]},
    )
    return web.json_response(saved, status=201 if created else 200)


@answers
async def post_missed(request: web.Request) -> web.Response:
    who = principal(request)
    if not who.has(Role.QUALITY):
        raise ApiError("marking a call missed needs the quality role", status=403)
    await _in_campaign(request)
    data, _ = await read_body(request) if request.can_read_body else ({}, None)
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise ApiError("reason must be a text (500 characters at most)", field="reason")
    await evaluations.mark_missed(
        request.app[DB_POOL],
        path_id(request),
        reason=reason.strip(),
        actor=who.label,
        now=utc_now(),
    )
    await audit(request, "mystery_call.missed", f"mystery_call:{path_id(request)}")
    return web.json_response({"id": path_id(request), "state": "missed"})


async def get_my_calls(request: web.Request) -> web.Response:
    """The requester's own mystery calls (as the evaluator the plans name)."""
    who = principal(request)
    if who.email is None:
        return web.json_response({"calls": [], "count": 0})
    rows = await queries.calls_of_evaluator(request.app[DB_POOL], who.email)
    tz = request.app[CALENDAR].tz
    now = utc_now()
    calls: list[payloads.OwnCallJson] = [
        {
            **payloads.call_json(r, service_names(request), {}, tz, now),
            "campaign_name": r["campaign_name"],
        }
        for r in rows
    ]
    return web.json_response({"calls": calls, "count": len(calls)})

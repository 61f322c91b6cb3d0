"""What can be done with a campaign — create, re-plan, cancel, evaluate, read its results.

Each flow checks the rules (pure modules), writes in one transaction, and raises a
:class:`CampaignError` with an HTTP-like status when the request cannot be met, so the API
and the command line say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from campaigns import payloads, queries
from campaigns.crosscheck import telephony_check
from campaigns.grids.library import GridLibrary, search_path
from campaigns.grids.model import Grid
from campaigns.grids.store import GridConflict, GridNotFound, resolve_grid, stored_grid
from campaigns.plan.planner import KeptCall, Plan, PlanError, plan_campaign
from campaigns.score.results import (
    MISSED_AFTER,
    CallRow,
    EvalRow,
    campaign_results,
    comparison,
)
from campaigns.spec import CampaignSpec, parse_campaign
from service.municipality.calendar import Calendar
from service.municipality.tables import ConfigError
from service.settings import Settings

REPLAN_KEYS = frozenset(
    {
        "name",
        "description",
        "ends_on",
        "seed",
        "min_gap_minutes",
        "call_minutes",
        "targets",
        "scenarios",
        "evaluators",
        "mode",
    }
)


class CampaignError(Exception):
    """A request that cannot be met; ``status`` as HTTP would say it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        problems: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.problems = problems or []


def library(settings: Settings) -> GridLibrary:
    """The grid files, read now (a grid added to a directory is seen without a restart)."""
    try:
        return GridLibrary.load(search_path(settings))
    except ConfigError as exc:
        raise CampaignError(500, f"a grid file is faulty: {exc}") from None


def parse(data: Mapping[str, Any], origin: str, calendar: Calendar) -> CampaignSpec:
    try:
        return parse_campaign(data, origin, calendar.m)
    except ConfigError as exc:
        raise CampaignError(400, exc.problem, field=exc.key or None) from None


def plan_or_refuse(
    spec: CampaignSpec,
    calendar: Calendar,
    kept: list[KeptCall] | None = None,
    not_before: datetime | None = None,
) -> Plan:
    try:
        return plan_campaign(spec, calendar, kept=kept or (), not_before=not_before)
    except PlanError as exc:
        raise CampaignError(
            422, "the campaign cannot be planned: " + "; ".join(exc.problems), problems=exc.problems
        ) from None


async def grid_for(
    conn: Any, settings: Settings, spec: CampaignSpec, *, store: bool = True
) -> tuple[int | None, Grid]:
    """The campaign's grid (stored when it comes from a file, unless ``store`` is False)."""
    try:
        return await resolve_grid(
            conn, library(settings), spec.grid, spec.grid_version, store=store
        )
    except GridNotFound as exc:
        raise CampaignError(400, str(exc), field="grid") from None
    except GridConflict as exc:
        raise CampaignError(409, str(exc), field="grid") from None


async def create(
    pool: asyncpg.Pool,
    settings: Settings,
    calendar: Calendar,
    data: Mapping[str, Any],
    *,
    origin: str,
    source: str | None,
    actor: str,
) -> int:
    """Store a campaign and its plan; its id."""
    spec = parse(data, origin, calendar)
    plan = plan_or_refuse(spec, calendar)
    async with pool.acquire() as conn, conn.transaction():
        grid_id, _ = await grid_for(conn, settings, spec)
        assert grid_id is not None
        cid = await queries.insert_campaign(
            conn,
            name=spec.name,
            grid_id=grid_id,
            spec=spec.as_dict(),
            source=source,
            notes=plan.notes,
            actor=actor,
        )
        await queries.insert_calls(conn, cid, 1, plan.calls)
    return cid


async def campaign_or_404(conn: Any, campaign_id: int) -> asyncpg.Record:
    row = await queries.get_campaign(conn, campaign_id)
    if row is None:
        raise CampaignError(404, f"no campaign {campaign_id}")
    return row


async def replan(
    pool: asyncpg.Pool,
    calendar: Calendar,
    campaign_id: int,
    overrides: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Plan again every call not done: evaluated calls stay, and so do calls of the last
    day that may still be evaluated; the others are marked re-planned and replaced by
    calls from ``now`` on. ``overrides`` may change what ``REPLAN_KEYS`` lists."""
    unknown = sorted(set(overrides) - REPLAN_KEYS)
    if unknown:
        raise CampaignError(
            400,
            f"{unknown[0]} cannot change in a re-plan (allowed: {', '.join(sorted(REPLAN_KEYS))})",
            field=unknown[0],
        )
    async with pool.acquire() as conn, conn.transaction():
        row = await _lock_active(conn, campaign_id, "the campaign is cancelled")
        spec = parse({**row["spec"], **overrides}, f"campaign {campaign_id}", calendar)
        calls = await queries.current_calls(conn, campaign_id)
        keep = [c for c in calls if _kept(c, now)]
        kept = [
            KeptCall(
                c["scheduled_at"],
                c["service"],
                c["number"],
                c["evaluator"],
                c["scenario"],
                c["moment"],
            )
            for c in keep
        ]
        plan = plan_or_refuse(spec, calendar, kept, now)
        replaced = [c["id"] for c in calls if not _kept(c, now)]
        revision = row["plan_revision"] + 1
        await conn.execute(
            "UPDATE mystery_calls m SET status = 'replanned', status_by = $2, status_at = $3, "
            "status_reason = 'plan ' || $4::text WHERE m.id = ANY($1::bigint[])"
            # (the campaign's lock keeps evaluations out meanwhile; this says it again)
            " AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.mystery_call_id = m.id)",
            replaced,
            actor,
            now,
            str(revision),
        )
        await conn.execute(
            "UPDATE mystery_calls SET plan_revision = $2 WHERE id = ANY($1::bigint[])",
            [c["id"] for c in keep],
            revision,
        )
        await queries.insert_calls(conn, campaign_id, revision, plan.calls)
        await conn.execute(
            "UPDATE campaigns SET spec = $2, name = $3, plan_revision = $4, notes = $5, "
            "replanned_at = $6 WHERE id = $1",
            campaign_id,
            spec.as_dict(),
            spec.name,
            revision,
            list(plan.notes),
            now,
        )
    return {
        "plan_revision": revision,
        "kept": len(keep),
        "replaced": len(replaced),
        "planned": len(plan.calls),
    }


async def _lock_active(conn: Any, campaign_id: int, if_cancelled: str) -> asyncpg.Record:
    """The campaign's row, locked until the transaction ends; 404 or 409 otherwise."""
    row = await queries.lock_campaign(conn, campaign_id)
    if row is None:
        raise CampaignError(404, f"no campaign {campaign_id}")
    if row["status"] == "cancelled":
        raise CampaignError(409, if_cancelled)
    return row


def _kept(call: Mapping[str, Any], now: datetime) -> bool:
    if call["evaluation_id"] is not None:
        return True
    if call["status"] != "planned":
        return False
    return bool(now - MISSED_AFTER <= call["scheduled_at"] < now)


async def cancel(
    pool: asyncpg.Pool, campaign_id: int, *, actor: str, now: datetime
) -> dict[str, Any]:
    """Cancel the campaign: its calls not done are cancelled; evaluations stay."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_active(conn, campaign_id, "the campaign is already cancelled")
        done = await conn.execute(
            "UPDATE mystery_calls m SET status = 'cancelled', status_by = $2, status_at = $3 "
            "WHERE campaign_id = $1 AND status IN ('planned', 'missed') "
            "AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.mystery_call_id = m.id)",
            campaign_id,
            actor,
            now,
        )
        await conn.execute(
            "UPDATE campaigns SET status = 'cancelled', cancelled_by = $2, cancelled_at = $3 "
            "WHERE id = $1",
            campaign_id,
            actor,
            now,
        )
    return {"status": "cancelled", "calls_cancelled": int(done.split()[-1])}


# -- results ---------------------------------------------------------------------------------


async def results(
    conn: Any,
    calendar: Calendar,
    campaign_id: int,
    *,
    now: datetime,
    secret_key: str | None = None,
    caller_id: str | None = None,
) -> dict[str, Any]:
    """The campaign's results, with the comparison to the previous campaign on its grid and
    the cross-check with the telephony (callers recognised through ``secret_key``'s
    pseudonyms; ``caller_id``: the number assisted calls and probes come from)."""
    row = await campaign_or_404(conn, campaign_id)
    out = await _results_of(conn, calendar, row, now)
    out["telephony"] = await telephony_check(
        conn, row, secret_key=secret_key, caller_id=caller_id, now=now, tz=calendar.tz
    )
    prev_id = await queries.previous_campaign(
        conn, campaign_id, row["grid_slug"], row["spec"]["starts_on"]
    )
    out["previous"] = None
    if prev_id is not None:
        prev_row = await campaign_or_404(conn, prev_id)
        prev = await _results_of(conn, calendar, prev_row, now)
        out["previous"] = {
            **prev["campaign"],
            "same_grid_version": prev_row["grid_version"] == row["grid_version"],
            **comparison(out, prev),
        }
    return out


async def _results_of(
    conn: Any, calendar: Calendar, row: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    grid = await stored_grid(conn, row["grid_id"])
    calls = [queries.record_as(CallRow, c) for c in await queries.current_calls(conn, row["id"])]
    evals = {
        e["mystery_call_id"]: EvalRow.of(e) for e in await queries.evaluations_of(conn, row["id"])
    }
    spec = row["spec"]
    services = {s.slug: s.name for s in calendar.m.services}
    evaluators = {e["email"]: e["name"] for e in spec["evaluators"]}
    out = campaign_results(
        grid, calls, evals, services=services, evaluators=evaluators, now=now, tz=calendar.tz
    )
    out["campaign"] = payloads.campaign_json(row)
    out["grid"] = payloads.grid_summary(grid)
    return out

"""What can be done with a campaign — create, re-plan, cancel, evaluate, read its results.

Each flow checks the rules (pure modules), writes in one transaction, and raises a
:class:`CampaignError` of the kind that says why when the request cannot be met, so the API
(which maps each kind to its HTTP status) and the command line say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

import asyncpg

from campaigns import payloads, queries
from campaigns.crosscheck import telephony_check
from campaigns.grids.library import GridLibrary, search_path
from campaigns.grids.model import Grid
from campaigns.grids.store import GridConflict, GridNotFound, resolve_grid, stored_grid
from campaigns.plan.planner import KeptCall, Plan, PlanError, plan_campaign
from campaigns.plan.replan import REPLAN_KEYS, kept, kept_call, unchangeable
from campaigns.score.results import CallRow, EvalRow, campaign_results, comparison
from campaigns.spec import CampaignSpec, parse_campaign
from service.municipality.calendar import Calendar
from service.municipality.tables import ConfigError
from service.settings import Settings


class ReplanSummary(TypedDict):
    """What a re-plan did (answered, and kept in the audit log)."""

    plan_revision: int
    kept: int
    replaced: int
    planned: int


class CancelSummary(TypedDict):
    """What a cancellation did (answered, and kept in the audit log)."""

    status: str
    calls_cancelled: int


class CampaignError(Exception):
    """A request that cannot be met; the subclass says why (``campaigns/web/http.py`` maps
    each to its HTTP status)."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.problems = problems or []


class Invalid(CampaignError):
    """The request itself is wrong: a value, a key, a grid that does not exist."""


class Forbidden(CampaignError):
    """The requester may not do this."""


class NotFound(CampaignError):
    """No such campaign or planned call."""


class Conflict(CampaignError):
    """The thing's state forbids it now (cancelled, re-planned, evaluated, in use)."""


class Unplannable(CampaignError):
    """A well-formed campaign that no plan can satisfy; ``problems`` says why."""


class Faulty(CampaignError):
    """The service's own files are wrong (a grid file), not the request."""


def library(settings: Settings) -> GridLibrary:
    """The grid files, read now (a grid added to a directory is seen without a restart)."""
    try:
        return GridLibrary.load(search_path(settings))
    except ConfigError as exc:
        raise Faulty(f"a grid file is faulty: {exc}") from None


def parse(data: Mapping[str, Any], origin: str, calendar: Calendar) -> CampaignSpec:
    try:
        return parse_campaign(data, origin, calendar.m)
    except ConfigError as exc:
        raise Invalid(exc.problem, field=exc.key or None) from None


def plan_or_refuse(
    spec: CampaignSpec,
    calendar: Calendar,
    kept: list[KeptCall] | None = None,
    not_before: datetime | None = None,
) -> Plan:
    try:
        return plan_campaign(spec, calendar, kept=kept or (), not_before=not_before)
    except PlanError as exc:
        raise Unplannable(
            "the campaign cannot be planned: " + "; ".join(exc.problems), problems=exc.problems
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
        raise Invalid(str(exc), field="grid") from None
    except GridConflict as exc:
        raise Conflict(str(exc), field="grid") from None


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
        raise NotFound(f"no campaign {campaign_id}")
    return row


async def replan(
    pool: asyncpg.Pool,
    calendar: Calendar,
    campaign_id: int,
    overrides: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
) -> ReplanSummary:
    """Plan again every call not done: evaluated calls stay, and so do calls of the last
    day that may still be evaluated; the others are marked re-planned and replaced by
    calls from ``now`` on. ``overrides`` may change what ``REPLAN_KEYS`` lists."""
    _check_overrides(overrides)
    async with pool.acquire() as conn, conn.transaction():
        row = await _lock_active(conn, campaign_id, "the campaign is cancelled")
        spec = parse({**row["spec"], **overrides}, f"campaign {campaign_id}", calendar)
        calls = await queries.current_calls(conn, campaign_id)
        keep = [c for c in calls if kept(c, now)]
        plan = plan_or_refuse(spec, calendar, [kept_call(c) for c in keep], now)
        replaced = [c["id"] for c in calls if not kept(c, now)]
        revision = row["plan_revision"] + 1
        await queries.mark_replanned(conn, replaced, revision, actor=actor, now=now)
        await queries.renumber_calls(conn, [c["id"] for c in keep], revision)
        await queries.insert_calls(conn, campaign_id, revision, plan.calls)
        await queries.update_plan(
            conn,
            campaign_id,
            spec=spec.as_dict(),
            name=spec.name,
            revision=revision,
            notes=plan.notes,
            now=now,
        )
    return {
        "plan_revision": revision,
        "kept": len(keep),
        "replaced": len(replaced),
        "planned": len(plan.calls),
    }


def _check_overrides(overrides: Mapping[str, Any]) -> None:
    """Refuse a key a re-plan may not change (the first one, in name order)."""
    key = unchangeable(overrides)
    if key is not None:
        raise Invalid(
            f"{key} cannot change in a re-plan (allowed: {', '.join(sorted(REPLAN_KEYS))})",
            field=key,
        )


async def _lock_active(conn: Any, campaign_id: int, if_cancelled: str) -> asyncpg.Record:
    """The campaign's row, locked until the transaction ends; not found or in conflict
    otherwise."""
    row = await queries.lock_campaign(conn, campaign_id)
    if row is None:
        raise NotFound(f"no campaign {campaign_id}")
    if row["status"] == "cancelled":
        raise Conflict(if_cancelled)
    return row


async def cancel(
    pool: asyncpg.Pool, campaign_id: int, *, actor: str, now: datetime
) -> CancelSummary:
    """Cancel the campaign: its calls not done are cancelled; evaluations stay."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_active(conn, campaign_id, "the campaign is already cancelled")
        done = await queries.cancel_calls(conn, campaign_id, actor=actor, now=now)
        await queries.cancel_campaign(conn, campaign_id, actor=actor, now=now)
    return {"status": "cancelled", "calls_cancelled": done}


# -- results ---------------------------------------------------------------------------------


async def results(
    conn: Any,
    calendar: Calendar,
    campaign_id: int,
    *,
    now: datetime,
    secret_key: str | None = None,
    caller_id: str | None = None,
) -> payloads.CampaignResults:
    """The campaign's results, with the comparison to the previous campaign on its grid and
    the cross-check with the telephony (callers recognised through ``secret_key``'s
    pseudonyms; ``caller_id``: the number assisted calls and probes come from)."""
    row = await campaign_or_404(conn, campaign_id)
    out = await _results_of(conn, calendar, row, now)
    telephony = await telephony_check(
        conn, row, secret_key=secret_key, caller_id=caller_id, now=now, tz=calendar.tz
    )
    prev_id = await queries.previous_campaign(
        conn, campaign_id, row["grid_slug"], row["spec"]["starts_on"]
    )
    previous: payloads.PreviousCampaign | None = None
    if prev_id is not None:
        prev_row = await campaign_or_404(conn, prev_id)
        prev = await _results_of(conn, calendar, prev_row, now)
        previous = {
            **prev["campaign"],
            "same_grid_version": prev_row["grid_version"] == row["grid_version"],
            **comparison(out, prev),
        }
    return {**out, "telephony": telephony, "previous": previous}


async def _results_of(
    conn: Any, calendar: Calendar, row: Mapping[str, Any], now: datetime
) -> payloads.ScoredCampaign:
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
    return {**out, "campaign": payloads.campaign_json(row), "grid": payloads.grid_summary(grid)}

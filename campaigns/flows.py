"""What can be done with a campaign — create, re-plan, cancel, evaluate, read its results.

Each flow checks the rules (pure modules), writes in one transaction, and raises a
:class:`CampaignError` with an HTTP-like status when the request cannot be met, so the API
and the command line say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from campaigns import payloads, queries
from campaigns.grid_library import GridLibrary, search_path
from campaigns.grid_store import GridConflict, GridNotFound, resolve_grid, stored_grid
from campaigns.grids import Grid
from campaigns.planner import KeptCall, Plan, PlanError, plan_campaign
from campaigns.results import (
    MISSED_AFTER,
    CallRow,
    EvalRow,
    campaign_results,
    comparison,
)
from campaigns.scoring import AnswerError, check_answers, score
from campaigns.spec import CampaignSpec, parse_campaign
from service.accounts.model import Principal, Role
from service.calendar import Calendar
from service.config_tables import ConfigError
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


async def grid_for(conn: Any, settings: Settings, spec: CampaignSpec) -> tuple[int, Grid]:
    try:
        return await resolve_grid(conn, library(settings), spec.grid, spec.grid_version)
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
        row = await queries.lock_campaign(conn, campaign_id)
        if row is None:
            raise CampaignError(404, f"no campaign {campaign_id}")
        if row["status"] == "cancelled":
            raise CampaignError(409, "the campaign is cancelled")
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
            "UPDATE mystery_calls SET status = 'replanned', status_by = $2, status_at = $3, "
            "status_reason = 'plan ' || $4::text WHERE id = ANY($1::bigint[])",
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
        row = await queries.lock_campaign(conn, campaign_id)
        if row is None:
            raise CampaignError(404, f"no campaign {campaign_id}")
        if row["status"] == "cancelled":
            raise CampaignError(409, "the campaign is already cancelled")
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


# -- evaluations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What one requester may do with one planned call."""

    read: bool
    evaluate: bool
    correct: bool
    why: str = ""


def access(who: Principal, call: Mapping[str, Any]) -> Access:
    """Quality may do everything; the call's evaluator may read it and give the first
    evaluation; an evaluation may be corrected by its first author or by quality."""
    quality = who.has(Role.QUALITY)
    own = who.email is not None and who.email == call["evaluator"]
    author = call["evaluation_id"] is not None and (
        (who.user_id is not None and who.user_id == call["first_user_id"])
        or who.label == call["first_author"]
    )
    if call["evaluation_id"] is None:
        return Access(read=quality or own, evaluate=quality or own, correct=False)
    return Access(
        read=quality or own or author,
        evaluate=False,
        correct=quality or author,
        why="" if quality or author else "only its author or the quality team may correct it",
    )


async def save_evaluation(
    pool: asyncpg.Pool,
    call_id: int,
    who: Principal,
    body: Mapping[str, Any],
    *,
    now: datetime,
    today: Any,
    tz: Any,
) -> tuple[dict[str, Any], bool]:
    """Save (or correct) the evaluation of a planned call; (its JSON, whether it is new)."""
    answers = body.get("answers")
    if not isinstance(answers, dict):
        raise CampaignError(400, "answers must be an object: item id → answer", field="answers")
    comments = body.get("comments", {})
    if not isinstance(comments, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= 2000 for k, v in comments.items()
    ):
        raise CampaignError(400, "comments must map item ids to texts", field="comments")
    comment = body.get("comment", "")
    reason = body.get("reason", "")
    for name, value in (("comment", comment), ("reason", reason)):
        if not isinstance(value, str) or len(value) > 4000:
            raise CampaignError(
                400, f"{name} must be a text (4,000 characters at most)", field=name
            )
    async with pool.acquire() as conn, conn.transaction():
        call = await queries.mystery_call(conn, call_id, lock=True)
        if call is None:
            raise CampaignError(404, f"no mystery call {call_id}")
        rights = access(who, call)
        if not rights.read:
            raise CampaignError(403, "this mystery call is not yours to evaluate")
        if call["evaluation_id"] is not None and not rights.correct:
            raise CampaignError(403, f"this call is already evaluated; {rights.why}")
        if call["status"] == "replanned":
            raise CampaignError(409, "this call was re-planned: evaluate the call that replaced it")
        if call["status"] == "cancelled":
            raise CampaignError(409, "this call was cancelled with its campaign")
        if call["scheduled_at"].astimezone(tz).date() > today:
            raise CampaignError(
                409,
                f"this call is planned for {call['scheduled_at'].astimezone(tz):%Y-%m-%d %H:%M}: "
                "it can be evaluated from that day on",
            )
        grid = await stored_grid(conn, call["campaign_grid_id"])
        unknown = sorted(set(comments) - {it.id for _, it in grid.items()})
        if unknown:
            raise CampaignError(400, f"{unknown[0]!r} is not an item of the grid", field="comments")
        try:
            checked = check_answers(grid, answers)
            result = score(grid, checked)
        except AnswerError as exc:
            raise CampaignError(400, exc.message, field=f"answers.{exc.field}") from None
        values = (
            checked,
            {k: v.strip() for k, v in comments.items() if v.strip()},
            comment.strip(),
            result.score,
            result.raw_score,
            result.passed,
            result.excellent,
            list(result.critical_failed),
            result.sections,
            result.values,
        )
        created = call["evaluation_id"] is None
        if created:
            await conn.execute(
                "INSERT INTO evaluations (mystery_call_id, grid_id, answers, comments, comment, "
                "score, raw_score, passed, excellent, critical_failed, sections, item_values, "
                "author, author_user_id, first_author, first_user_id, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13, $14, "
                "$15, $15)",
                call_id,
                call["campaign_grid_id"],
                *values,
                who.label,
                who.user_id,
                now,
            )
        else:
            await conn.execute(
                "INSERT INTO evaluation_history (evaluation_id, revision, answers, comments, "
                "comment, score, passed, author, saved_at, replaced_by, replaced_at, reason) "
                "SELECT id, revision, answers, comments, comment, score, passed, author, "
                "updated_at, $2, $3, $4 FROM evaluations WHERE id = $1",
                call["evaluation_id"],
                who.label,
                now,
                reason.strip(),
            )
            await conn.execute(
                "UPDATE evaluations SET answers = $2, comments = $3, comment = $4, score = $5, "
                "raw_score = $6, passed = $7, excellent = $8, critical_failed = $9, "
                "sections = $10, item_values = $11, author = $12, author_user_id = $13, "
                "revision = revision + 1, updated_at = $14 WHERE id = $1",
                call["evaluation_id"],
                *values,
                who.label,
                who.user_id,
                now,
            )
        if call["status"] == "missed":
            await conn.execute(
                "UPDATE mystery_calls SET status = 'planned', status_reason = NULL WHERE id = $1",
                call_id,
            )
        saved = await queries.mystery_call(conn, call_id)
        assert saved is not None
    out = payloads.evaluation_json(saved)
    assert out is not None
    return out, created


async def mark_missed(
    pool: asyncpg.Pool, call_id: int, *, reason: str, actor: str, now: datetime
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        call = await queries.mystery_call(conn, call_id, lock=True)
        if call is None:
            raise CampaignError(404, f"no mystery call {call_id}")
        if call["evaluation_id"] is not None:
            raise CampaignError(409, "this call is evaluated: it was not missed")
        if call["status"] != "planned":
            raise CampaignError(409, f"this call is {call['status']}")
        await conn.execute(
            "UPDATE mystery_calls SET status = 'missed', status_reason = $2, status_by = $3, "
            "status_at = $4 WHERE id = $1",
            call_id,
            reason,
            actor,
            now,
        )


# -- results ---------------------------------------------------------------------------------


async def results(
    conn: Any, calendar: Calendar, campaign_id: int, *, now: datetime
) -> dict[str, Any]:
    """The campaign's results, with the comparison to the previous campaign on its grid."""
    row = await campaign_or_404(conn, campaign_id)
    out = await _results_of(conn, calendar, row, now)
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
    calls = [
        CallRow(
            id=c["id"],
            service=c["service"],
            number=c["number"],
            scheduled_at=c["scheduled_at"],
            status=c["status"],
            half_day=c["half_day"],
            moment=c["moment"],
            evaluator=c["evaluator"],
            scenario=c["scenario"],
        )
        for c in await queries.current_calls(conn, row["id"])
    ]
    evals = {
        e["mystery_call_id"]: EvalRow(
            call_id=e["mystery_call_id"],
            score=e["score"],
            passed=e["passed"],
            excellent=e["excellent"],
            sections=e["sections"],
            values=e["item_values"],
            critical_failed=list(e["critical_failed"]),
        )
        for e in await queries.evaluations_of(conn, row["id"])
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

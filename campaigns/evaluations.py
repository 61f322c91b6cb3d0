"""Evaluations of planned calls: who may give or correct one, saving it with its history,
and marking a call missed.

The call's evaluator (the account with the e-mail the plan names) reads their call and gives
its first evaluation; an evaluation is corrected by its first author or by the quality team,
and each correction keeps the replaced revision in ``evaluation_history``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from campaigns import payloads, queries
from campaigns.flows import CampaignError
from campaigns.grids.store import stored_grid
from campaigns.score.scoring import AnswerError, check_answers, score
from service.accounts.model import Principal, Role


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
    today: date,
    tz: ZoneInfo,
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
        grid = await stored_grid(conn, call["campaign_grid_id"], lock=True)
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

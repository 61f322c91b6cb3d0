"""Evaluations of planned calls: who may give or correct one, saving it with its history,
and marking a call missed.

The call's evaluator (the account with the e-mail the plan names) reads their call and gives
its first evaluation; an evaluation is corrected by its first author or by the quality team,
and each correction keeps the replaced revision in ``evaluation_history``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import asyncpg

from campaigns import evaluation_queries, payloads, queries
from campaigns.flows import Conflict, Forbidden, Invalid, NotFound
from campaigns.grids.store import stored_grid
from campaigns.score.submission import (
    Scored,
    SubmissionError,
    read_submission,
    score_submission,
)
from service.accounts.model import Principal, Role

P = ParamSpec("P")
R = TypeVar("R")


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
) -> tuple[payloads.EvaluationJson, bool]:
    """Save (or correct) the evaluation of a planned call; (its JSON, whether it is new)."""
    submission = _checked(read_submission, body)
    async with pool.acquire() as conn, conn.transaction():
        call = await queries.mystery_call(conn, call_id, lock=True)
        if call is None:
            raise NotFound(f"no mystery call {call_id}")
        may_evaluate(who, call, today, tz)
        grid = await stored_grid(conn, call["campaign_grid_id"], lock=True)
        scored = _checked(score_submission, grid, submission)
        created = await _store(conn, call, who, scored, submission.reason.strip(), now)
        saved = await queries.mystery_call(conn, call_id)
        assert saved is not None
    out = payloads.evaluation_json(saved)
    assert out is not None
    return out, created


def _checked(check: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``check``'s answer, its :class:`SubmissionError` turned into the flows' Invalid."""
    try:
        return check(*args, **kwargs)
    except SubmissionError as exc:
        raise Invalid(exc.message, field=exc.field) from None


def may_evaluate(who: Principal, call: Mapping[str, Any], today: date, tz: ZoneInfo) -> None:
    """Refuse an evaluation (or correction) of ``call`` that ``who`` may not give now."""
    rights = access(who, call)
    if not rights.read:
        raise Forbidden("this mystery call is not yours to evaluate")
    if call["evaluation_id"] is not None and not rights.correct:
        raise Forbidden(f"this call is already evaluated; {rights.why}")
    if call["status"] == "replanned":
        raise Conflict("this call was re-planned: evaluate the call that replaced it")
    if call["status"] == "cancelled":
        raise Conflict("this call was cancelled with its campaign")
    if call["scheduled_at"].astimezone(tz).date() > today:
        raise Conflict(
            f"this call is planned for {call['scheduled_at'].astimezone(tz):%Y-%m-%d %H:%M}: "
            "it can be evaluated from that day on"
        )


async def _store(
    conn: Any,
    call: Mapping[str, Any],
    who: Principal,
    scored: Scored,
    reason: str,
    now: datetime,
) -> bool:
    """Write the call's first evaluation, or a correction keeping the replaced revision in
    the history; a missed call evaluated after all is planned again. Whether it is new."""
    created = call["evaluation_id"] is None
    if created:
        await evaluation_queries.insert_evaluation(
            conn,
            call["id"],
            call["campaign_grid_id"],
            scored,
            author=who.label,
            user_id=who.user_id,
            now=now,
        )
    else:
        await evaluation_queries.keep_revision(
            conn, call["evaluation_id"], replaced_by=who.label, now=now, reason=reason
        )
        await evaluation_queries.update_evaluation(
            conn, call["evaluation_id"], scored, author=who.label, user_id=who.user_id, now=now
        )
    if call["status"] == "missed":
        await evaluation_queries.reopen_call(conn, call["id"])
    return created


async def mark_missed(
    pool: asyncpg.Pool, call_id: int, *, reason: str, actor: str, now: datetime
) -> None:
    """Mark a planned call not evaluated as missed."""
    async with pool.acquire() as conn, conn.transaction():
        call = await queries.mystery_call(conn, call_id, lock=True)
        if call is None:
            raise NotFound(f"no mystery call {call_id}")
        if call["evaluation_id"] is not None:
            raise Conflict("this call is evaluated: it was not missed")
        if call["status"] != "planned":
            raise Conflict(f"this call is {call['status']}")
        await evaluation_queries.mark_missed(conn, call_id, reason=reason, actor=actor, now=now)

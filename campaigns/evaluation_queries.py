"""SQL that writes evaluations and their history, and a planned call's missed state (each
function takes a connection; the reads are in ``campaigns/queries.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaigns.score.submission import Scored


def _values(ev: Scored) -> tuple[Any, ...]:
    """An evaluation's stored columns, from ``answers`` to ``item_values``."""
    r = ev.result
    return (
        ev.answers,
        ev.comments,
        ev.comment,
        r.score,
        r.raw_score,
        r.passed,
        r.excellent,
        list(r.critical_failed),
        r.sections,
        r.values,
    )


async def insert_evaluation(
    conn: Any,
    call_id: int,
    grid_id: int,
    ev: Scored,
    *,
    author: str,
    user_id: int | None,
    now: datetime,
) -> None:
    """The call's first evaluation; its author is also its first author."""
    await conn.execute(
        "INSERT INTO evaluations (mystery_call_id, grid_id, answers, comments, comment, "
        "score, raw_score, passed, excellent, critical_failed, sections, item_values, "
        "author, author_user_id, first_author, first_user_id, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13, $14, "
        "$15, $15)",
        call_id,
        grid_id,
        *_values(ev),
        author,
        user_id,
        now,
    )


async def keep_revision(
    conn: Any, evaluation_id: int, *, replaced_by: str, now: datetime, reason: str
) -> None:
    """Copy the evaluation's current revision into its history before it is replaced."""
    await conn.execute(
        "INSERT INTO evaluation_history (evaluation_id, revision, answers, comments, "
        "comment, score, passed, author, saved_at, replaced_by, replaced_at, reason) "
        "SELECT id, revision, answers, comments, comment, score, passed, author, "
        "updated_at, $2, $3, $4 FROM evaluations WHERE id = $1",
        evaluation_id,
        replaced_by,
        now,
        reason,
    )


async def update_evaluation(
    conn: Any,
    evaluation_id: int,
    ev: Scored,
    *,
    author: str,
    user_id: int | None,
    now: datetime,
) -> None:
    """Replace the evaluation by a new revision."""
    await conn.execute(
        "UPDATE evaluations SET answers = $2, comments = $3, comment = $4, score = $5, "
        "raw_score = $6, passed = $7, excellent = $8, critical_failed = $9, "
        "sections = $10, item_values = $11, author = $12, author_user_id = $13, "
        "revision = revision + 1, updated_at = $14 WHERE id = $1",
        evaluation_id,
        *_values(ev),
        author,
        user_id,
        now,
    )


async def reopen_call(conn: Any, call_id: int) -> None:
    """A missed call evaluated after all: planned again, its reason forgotten."""
    await conn.execute(
        "UPDATE mystery_calls SET status = 'planned', status_reason = NULL WHERE id = $1",
        call_id,
    )


async def mark_missed(conn: Any, call_id: int, *, reason: str, actor: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE mystery_calls SET status = 'missed', status_reason = $2, status_by = $3, "
        "status_at = $4 WHERE id = $1",
        call_id,
        reason,
        actor,
        now,
    )

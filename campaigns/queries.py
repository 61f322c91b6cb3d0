"""SQL of campaigns, their planned calls and evaluations (each function takes a connection)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

import asyncpg

from campaigns.plan.planner import PlannedCall

T = TypeVar("T")


def record_as(cls: type[T], row: Mapping[str, Any]) -> T:
    """A dataclass from a row that has a column of each of its fields' names."""
    return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]


CALL_COLUMNS = (
    "m.id, m.campaign_id, m.plan_revision, m.scheduled_at, m.service, m.number, m.scenario, "
    "m.evaluator, m.mode, m.half_day, m.moment, m.status, m.status_reason, m.status_by, "
    "m.status_at, m.moved_from, m.moved_reason, "
    # the call sheet's claim for the current slot (campaigns/run/runner.py): sent, or why not
    "(SELECT jsonb_build_object('outcome', rc.outcome, 'at', rc.finished_at) FROM run_claims rc "
    "WHERE rc.key = 'sheet:' || m.id || ':' || extract(epoch FROM m.scheduled_at)::bigint) "
    "AS sheet, "
    # what Twilio did for an assisted call or a probe (campaigns/run/voice.py)
    "(SELECT r.outcome FROM mystery_runs r WHERE r.mystery_call_id = m.id) AS run_outcome"
)
EVAL_COLUMNS = (
    "e.id AS evaluation_id, e.mystery_call_id, e.grid_id, e.answers, e.comments, e.comment, "
    "e.score, e.raw_score, e.passed, e.excellent, e.critical_failed, e.sections, "
    "e.item_values, e.revision, e.author, e.author_user_id, e.first_author, e.first_user_id, "
    "e.created_at, e.updated_at"
)


async def insert_campaign(
    conn: Any,
    *,
    name: str,
    grid_id: int,
    spec: dict[str, Any],
    source: str | None,
    notes: Sequence[str],
    actor: str,
) -> int:
    cid: int = await conn.fetchval(
        "INSERT INTO campaigns (name, grid_id, spec, source, notes, created_by) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        name,
        grid_id,
        spec,
        source,
        list(notes),
        actor,
    )
    return cid


async def insert_calls(
    conn: Any, campaign_id: int, revision: int, calls: Sequence[PlannedCall]
) -> None:
    await conn.executemany(
        "INSERT INTO mystery_calls (campaign_id, plan_revision, scheduled_at, service, number, "
        "scenario, evaluator, mode, half_day, moment) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (
                campaign_id,
                revision,
                c.scheduled_at,
                c.service,
                c.number,
                c.scenario,
                c.evaluator,
                c.mode,
                c.half_day,
                c.moment,
            )
            for c in calls
        ],
    )


CAMPAIGN_SUMMARY = """
SELECT c.id, c.name, c.status, c.spec, c.plan_revision, c.notes, c.created_by, c.created_at,
       c.replanned_at, c.cancelled_by, c.cancelled_at, c.grid_id,
       g.slug AS grid_slug, g.version AS grid_version, g.name AS grid_name,
       count(m.id) AS calls,
       count(e.id) AS done,
       count(m.id) FILTER (WHERE m.status = 'cancelled' AND e.id IS NULL) AS cancelled_calls,
       count(m.id) FILTER (WHERE e.id IS NULL AND (m.status = 'missed'
                           OR (m.status = 'planned' AND m.scheduled_at < now() - interval '1 day')))
           AS missed,
       min(m.scheduled_at) FILTER (WHERE m.status = 'planned' AND e.id IS NULL
                                   AND m.scheduled_at >= now()) AS next_call_at
FROM campaigns c
JOIN grids g ON g.id = c.grid_id
LEFT JOIN mystery_calls m ON m.campaign_id = c.id AND m.status <> 'replanned'
LEFT JOIN evaluations e ON e.mystery_call_id = m.id
"""


async def list_campaigns(conn: Any) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(CAMPAIGN_SUMMARY + " GROUP BY c.id, g.id ORDER BY c.created_at DESC")
    )


async def get_campaign(conn: Any, campaign_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        CAMPAIGN_SUMMARY + " WHERE c.id = $1 GROUP BY c.id, g.id", campaign_id
    )
    return row


async def lock_campaign(conn: Any, campaign_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, status, spec, plan_revision, grid_id FROM campaigns WHERE id = $1 FOR UPDATE",
        campaign_id,
    )
    return row


CURRENT_CALLS = f"""
SELECT {CALL_COLUMNS}, e.id AS evaluation_id, e.score, e.passed, e.excellent, e.revision,
       e.author
FROM mystery_calls m LEFT JOIN evaluations e ON e.mystery_call_id = m.id
WHERE m.campaign_id = $1 AND m.status <> 'replanned'
  AND ($2::text IS NULL OR m.service = $2) AND ($3::text IS NULL OR m.evaluator = $3)
ORDER BY m.scheduled_at, m.service, m.number, m.id
"""  # noqa: S608 - constants
EVALUATIONS_OF = f"""
SELECT {EVAL_COLUMNS} FROM evaluations e JOIN mystery_calls m ON m.id = e.mystery_call_id
WHERE m.campaign_id = $1 AND m.status <> 'replanned'
"""  # noqa: S608 - constants
MYSTERY_CALL = f"""
SELECT {CALL_COLUMNS}, c.name AS campaign_name, c.status AS campaign_status,
       c.spec AS campaign_spec, c.grid_id AS campaign_grid_id, {EVAL_COLUMNS}
FROM mystery_calls m JOIN campaigns c ON c.id = m.campaign_id
LEFT JOIN evaluations e ON e.mystery_call_id = m.id WHERE m.id = $1
"""  # noqa: S608 - constants
CALLS_OF_EVALUATOR = f"""
SELECT {CALL_COLUMNS}, c.name AS campaign_name, c.status AS campaign_status,
       e.id AS evaluation_id, e.score, e.passed
FROM mystery_calls m JOIN campaigns c ON c.id = m.campaign_id
LEFT JOIN evaluations e ON e.mystery_call_id = m.id
WHERE m.evaluator = $1 AND m.status <> 'replanned'
ORDER BY m.scheduled_at
"""  # noqa: S608 - constants


async def current_calls(
    conn: Any,
    campaign_id: int,
    *,
    service: str | None = None,
    evaluator: str | None = None,
) -> list[asyncpg.Record]:
    """The calls of the current plan with their evaluation's headline, in time order."""
    return list(
        await conn.fetch(
            CURRENT_CALLS,
            campaign_id,
            service,
            evaluator,
        )
    )


async def evaluations_of(conn: Any, campaign_id: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            EVALUATIONS_OF,
            campaign_id,
        )
    )


async def mystery_call(conn: Any, call_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    """One planned call with its campaign's state and its evaluation, if any.

    ``lock`` (inside a transaction) holds the campaign in share mode, then the call: a
    re-plan or a cancellation, which lock the campaign itself, then waits for the
    evaluation being saved (or it for them), so none marks a call replaced or cancelled
    while its evaluation is written. Campaign first, then call: the order every writer
    follows, so they never deadlock. The call is read after the locks are held, in a
    statement of its own: it then sees what the writer it waited for committed (an
    evaluation saved meanwhile by a double click)."""
    if lock:
        await conn.execute(
            "SELECT 1 FROM campaigns WHERE id = "
            "(SELECT campaign_id FROM mystery_calls WHERE id = $1) FOR SHARE",
            call_id,
        )
        await conn.execute("SELECT 1 FROM mystery_calls WHERE id = $1 FOR UPDATE", call_id)
    row: asyncpg.Record | None = await conn.fetchrow(MYSTERY_CALL, call_id)
    return row


async def campaign_of_call(conn: Any, call_id: int) -> int | None:
    """The campaign a planned call belongs to, or None for no such call."""
    value = await conn.fetchval("SELECT campaign_id FROM mystery_calls WHERE id = $1", call_id)
    return None if value is None else int(value)


async def calls_of_evaluator(conn: Any, email: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            CALLS_OF_EVALUATOR,
            email,
        )
    )


async def history(conn: Any, evaluation_id: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT revision, answers, comments, comment, score, passed, author, saved_at, "
            "replaced_by, replaced_at, reason FROM evaluation_history "
            "WHERE evaluation_id = $1 ORDER BY revision",
            evaluation_id,
        )
    )


async def previous_campaign(
    conn: Any, campaign_id: int, grid_slug: str, starts_on: str
) -> int | None:
    """The latest campaign before this one on the same grid, with at least one evaluation."""
    found: int | None = await conn.fetchval(
        "SELECT c.id FROM campaigns c JOIN grids g ON g.id = c.grid_id "
        "WHERE g.slug = $2 AND c.id <> $1 AND c.status <> 'cancelled' "
        "AND (c.spec->>'starts_on') < $3 "
        "AND EXISTS (SELECT 1 FROM mystery_calls m JOIN evaluations e "
        "            ON e.mystery_call_id = m.id WHERE m.campaign_id = c.id) "
        "ORDER BY c.spec->>'starts_on' DESC, c.id DESC LIMIT 1",
        campaign_id,
        grid_slug,
        starts_on,
    )
    return found

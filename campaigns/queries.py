"""SQL of campaigns, their planned calls and evaluations (each function takes a connection)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from campaigns.plan.planner import PlannedCall
from campaigns.spec import CampaignSpecJson

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
    spec: CampaignSpecJson,
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


async def mark_replanned(
    conn: Any, call_ids: Sequence[int], revision: int, *, actor: str, now: datetime
) -> None:
    """Mark calls replaced by plan ``revision`` (never one with an evaluation)."""
    await conn.execute(
        "UPDATE mystery_calls m SET status = 'replanned', status_by = $2, status_at = $3, "
        "status_reason = 'plan ' || $4::text WHERE m.id = ANY($1::bigint[])"
        # (the campaign's lock keeps evaluations out meanwhile; this says it again)
        " AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.mystery_call_id = m.id)",
        list(call_ids),
        actor,
        now,
        str(revision),
    )


async def renumber_calls(conn: Any, call_ids: Sequence[int], revision: int) -> None:
    """Carry calls kept by a re-plan over to plan ``revision``."""
    await conn.execute(
        "UPDATE mystery_calls SET plan_revision = $2 WHERE id = ANY($1::bigint[])",
        list(call_ids),
        revision,
    )


async def update_plan(
    conn: Any,
    campaign_id: int,
    *,
    spec: CampaignSpecJson,
    name: str,
    revision: int,
    notes: Sequence[str],
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE campaigns SET spec = $2, name = $3, plan_revision = $4, notes = $5, "
        "replanned_at = $6 WHERE id = $1",
        campaign_id,
        spec,
        name,
        revision,
        list(notes),
        now,
    )


async def cancel_calls(conn: Any, campaign_id: int, *, actor: str, now: datetime) -> int:
    """Cancel the campaign's calls not done; how many."""
    done: str = await conn.execute(
        "UPDATE mystery_calls m SET status = 'cancelled', status_by = $2, status_at = $3 "
        "WHERE campaign_id = $1 AND status IN ('planned', 'missed') "
        "AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.mystery_call_id = m.id)",
        campaign_id,
        actor,
        now,
    )
    return int(done.split()[-1])


async def cancel_campaign(conn: Any, campaign_id: int, *, actor: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE campaigns SET status = 'cancelled', cancelled_by = $2, cancelled_at = $3 "
        "WHERE id = $1",
        campaign_id,
        actor,
        now,
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


async def campaigns_with_calls(conn: Any, lo: datetime, hi: datetime) -> list[int]:
    """The campaigns with a call of their current plan scheduled in [lo, hi), by id."""
    rows = await conn.fetch(
        "SELECT DISTINCT campaign_id FROM mystery_calls "
        "WHERE scheduled_at >= $1 AND scheduled_at < $2 AND status <> 'replanned' "
        "ORDER BY campaign_id",
        lo,
        hi,
    )
    return [int(r["campaign_id"]) for r in rows]


# -- the cross-check with the telephony (campaigns/crosscheck.py) ----------------------------

CALLS_MADE = """
SELECT m.id, m.mode, m.number, m.scheduled_at, m.evaluator, r.placed_at, r.outcome, r.kind,
       EXISTS (SELECT 1 FROM evaluations e WHERE e.mystery_call_id = m.id) AS evaluated
FROM mystery_calls m LEFT JOIN mystery_runs r ON r.mystery_call_id = m.id
WHERE m.campaign_id = $1 AND m.status <> 'replanned'
ORDER BY coalesce(r.placed_at, m.scheduled_at), m.id
"""


async def calls_made(conn: Any, campaign_id: int) -> list[asyncpg.Record]:
    """The campaign's current calls with what their run did (if any) and whether they are
    evaluated, in the order they were placed."""
    return list(await conn.fetch(CALLS_MADE, campaign_id))


async def inbound_calls_in(
    conn: Any, windows: Sequence[tuple[str, datetime, datetime]]
) -> list[asyncpg.Record]:
    """The inbound calls recorded on a line within its window (line, low, high), each once."""
    # Only the calls inside some window (calls_line_started serves each one).
    return list(
        await conn.fetch(
            "SELECT DISTINCT c.id, c.line, c.started_at, c.answered, c.caller_hash "
            "FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS w(line, lo, hi) "
            "JOIN calls c ON c.line = w.line AND c.started_at BETWEEN w.lo AND w.hi "
            "WHERE c.direction = 'inbound'",
            [line for line, _, _ in windows],
            [lo for _, lo, _ in windows],
            [hi for _, _, hi in windows],
        )
    )

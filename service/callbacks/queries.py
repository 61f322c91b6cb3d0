"""SQL for call-backs. Every function takes a connection; none opens one."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.calls.queries import CALLS_CHANNEL

# Unanswered, ended inbound calls of a known caller, with nothing that closed them since:
# no later answered call with the same caller (inbound: they reached an agent; outbound: we
# called them back and they answered), no hand-made mark after it.
_OPEN_UNANSWERED = """
SELECT c.id, c.caller_hash, c.caller_last2, c.caller_number, c.started_at, c.wait_s,
       c.line, c.queue
FROM calls c
WHERE c.direction = 'inbound' AND NOT c.answered AND c.disposition IS NOT NULL
  AND c.caller_hash IS NOT NULL AND c.started_at >= $1 AND c.started_at <= $2
  -- (The months before are left out when the query is planned: each month is a partition,
  -- and each probe below would otherwise search every month's index.)
  AND c.month >= first_month_of($1)
  AND NOT EXISTS (
      -- (r.started_at >= $1 follows from the line before; said, it bounds the scan.)
      SELECT 1 FROM calls r
      WHERE r.caller_hash = c.caller_hash AND r.answered AND r.started_at > c.started_at
        AND r.started_at >= $1 AND r.month >= first_month_of($1))
  AND NOT EXISTS (
      SELECT 1 FROM callback_marks k
      WHERE k.caller_hash = c.caller_hash AND k.done_at > c.started_at)
ORDER BY c.started_at, c.id
"""


async def open_unanswered(
    conn: asyncpg.Connection | asyncpg.Pool, since: datetime, now: datetime
) -> list[asyncpg.Record]:
    """The lost calls between ``since`` and ``now`` nothing has closed yet."""
    return list(await conn.fetch(_OPEN_UNANSWERED, since, now))


async def caller_of(conn: asyncpg.Connection | asyncpg.Pool, call_id: int) -> str | None:
    value = await conn.fetchval(
        "SELECT caller_hash FROM calls WHERE id = $1 AND direction = 'inbound'", call_id
    )
    return str(value) if value is not None else None


async def mark_done(
    conn: asyncpg.Connection | asyncpg.Pool, caller_hash: str, call_id: int, actor: str
) -> None:
    """Close every open lost call of the caller up to now, by hand."""
    await conn.execute(
        "INSERT INTO callback_marks (caller_hash, call_id, actor) VALUES ($1, $2, $3)",
        caller_hash,
        call_id,
        actor,
    )
    await conn.execute("SELECT pg_notify($1, '')", CALLS_CHANNEL)

"""SQL for the wall. Every function takes a connection; none opens one."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.calls.queries import CALLS_CHANNEL as CHANNEL

__all__ = ["CHANNEL", "in_progress"]

# Calls still in progress: waiting for an agent (not answered, not over) or in
# conversation (answered, not ended). Older than ``since`` they are calls whose end was
# never reported, not callers still on the line.
_IN_PROGRESS = """
SELECT line, queue, answered, started_at
FROM calls
WHERE direction = 'inbound' AND started_at >= $1 AND month >= first_month_of($1)
  AND ((NOT answered AND disposition IS NULL) OR (answered AND ended_at IS NULL))
"""


async def in_progress(
    conn: asyncpg.Connection | asyncpg.Pool, since: datetime
) -> list[asyncpg.Record]:
    return list(await conn.fetch(_IN_PROGRESS, since))

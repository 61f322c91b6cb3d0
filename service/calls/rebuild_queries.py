"""SQL of rebuilding call rows from the stored events (:mod:`service.calls.rebuild`). Every
function takes a connection; none opens one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import asyncpg
import orjson

from service.calls.model import Event

_MARK_ALL = """
INSERT INTO fold_queue (source, call_key) SELECT DISTINCT source, call_key FROM events
ON CONFLICT DO NOTHING
"""

_PAYLOADS = """
SELECT id, month, source, call_key, received_at, payload::text AS payload
FROM events WHERE id > $1 ORDER BY id LIMIT $2
"""

_REWRITE = """
UPDATE events e SET norm = n.norm::json, kind = n.kind, occurred_at = n.at,
    call_key = n.call_key
FROM unnest($1::bigint[], $2::date[], $3::text[], $4::text[], $5::timestamptz[],
            $6::text[]) AS n(id, month, norm, kind, at, call_key)
WHERE e.id = n.id AND e.month = n.month
"""

_REGISTER_REKEYED = """
INSERT INTO call_keys (source, call_key, month)
SELECT source, call_key, min(month) FROM events WHERE id = ANY($1::bigint[])
GROUP BY source, call_key ON CONFLICT DO NOTHING
"""

# Moving a row to another partition is an UPDATE of its key (PostgreSQL moves it).
_MOVE_REKEYED = """
UPDATE events e SET month = k.month FROM call_keys k
WHERE e.id = ANY($1::bigint[]) AND k.source = e.source AND k.call_key = e.call_key
  AND k.month <> e.month
"""


async def mark_every_call(conn: asyncpg.Connection) -> int:
    """Mark every call that has events for refolding; returns how many calls are marked."""
    await conn.execute(_MARK_ALL)
    return int(await conn.fetchval("SELECT count(*) FROM fold_queue"))


async def stored_payloads(
    conn: asyncpg.Connection, after_id: int, limit: int
) -> list[asyncpg.Record]:
    """Up to ``limit`` stored events after ``after_id``, in id order, with their raw
    payloads (JSON text)."""
    return list(await conn.fetch(_PAYLOADS, after_id, limit))


@dataclass
class Renormalised:
    """Stored events normalised again, column by column, for :func:`rewrite_events`."""

    ids: list[int] = field(default_factory=list)
    months: list[date] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    instants: list[datetime | None] = field(default_factory=list)
    call_keys: list[str] = field(default_factory=list)

    def add(self, event_id: int, month: date, event: Event) -> None:
        """The stored event ``event_id`` (in ``month``'s partition) is now ``event``."""
        self.ids.append(event_id)
        self.months.append(month)
        self.norms.append(orjson.dumps(event.details()).decode())
        self.kinds.append(event.kind.value)
        self.instants.append(event.at)
        self.call_keys.append(event.call_key)


async def rewrite_events(conn: asyncpg.Connection, events: Renormalised) -> None:
    """Store the new normalised form, kind, instant and call key of each event."""
    await conn.execute(
        _REWRITE,
        events.ids,
        events.months,
        events.norms,
        events.kinds,
        events.instants,
        events.call_keys,
    )


async def move_rekeyed(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Events whose call key a parser changed belong to another call now: that call's month
    (registered from these events if the call is new) is where they must live."""
    await conn.execute(_REGISTER_REKEYED, ids)
    await conn.execute(_MOVE_REKEYED, ids)

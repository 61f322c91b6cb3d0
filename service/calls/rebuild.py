"""Rebuild call rows from the stored events, after a rule changed.

``refold`` marks every call and folds them all again from their normalised events (a change
in the fold's rules). ``reparse`` first normalises every raw payload again through its
source's parser (a change in an adapter), then refolds. Both are idempotent and resumable:
run them again and they converge to the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from service.calls.model import Event
from service.calls.queries import fold_pending
from service.privacy import Pseudonymiser

Parser = Callable[[Mapping[str, str], datetime], Event]
Progress = Callable[[int], None]


async def mark_all(conn: asyncpg.Connection) -> int:
    """Mark every call for refolding; returns how many calls there are."""
    await conn.execute(
        "INSERT INTO fold_queue (source, call_key) SELECT DISTINCT source, call_key FROM events "
        "ON CONFLICT DO NOTHING"
    )
    return int(await conn.fetchval("SELECT count(*) FROM fold_queue"))


async def reparse(
    pool: asyncpg.Pool, parsers: Mapping[str, Parser], progress: Progress, batch: int = 2000
) -> int:
    """Normalise every stored payload again with the current parsers; returns events seen."""
    last_id = 0
    seen = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, month, source, call_key, received_at, payload::text AS payload "
                "FROM events WHERE id > $1 ORDER BY id LIMIT $2",
                last_id,
                batch,
            )
            if not rows:
                return seen
            ids, months, norms, kinds, instants, call_keys = [], [], [], [], [], []
            rekeyed = []
            for r in rows:
                parser = parsers.get(r["source"])
                if parser is None:
                    continue
                params: dict[str, Any] = orjson.loads(r["payload"])
                event = parser(params, r["received_at"])
                ids.append(r["id"])
                months.append(r["month"])
                norms.append(orjson.dumps(event.details()).decode())
                kinds.append(event.kind.value)
                instants.append(event.at)
                call_keys.append(event.call_key)
                if event.call_key != r["call_key"]:
                    rekeyed.append(r["id"])
            await conn.execute(
                "UPDATE events e SET norm = n.norm::json, kind = n.kind, "
                "occurred_at = n.at, call_key = n.call_key "
                "FROM unnest($1::bigint[], $2::date[], $3::text[], $4::text[], "
                "$5::timestamptz[], $6::text[]) AS n(id, month, norm, kind, at, call_key) "
                "WHERE e.id = n.id AND e.month = n.month",
                ids,
                months,
                norms,
                kinds,
                instants,
                call_keys,
            )
            if rekeyed:
                await _move_rekeyed(conn, rekeyed)
        last_id = rows[-1]["id"]
        seen += len(rows)
        progress(len(rows))


async def _move_rekeyed(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Events whose call key a parser changed belong to another call now: that call's month
    (registered from these events if the call is new) is where they must live."""
    await conn.execute(
        "INSERT INTO call_keys (source, call_key, month) "
        "SELECT source, call_key, min(month) FROM events WHERE id = ANY($1::bigint[]) "
        "GROUP BY source, call_key ON CONFLICT DO NOTHING",
        ids,
    )
    # Moving a row to another partition is an UPDATE of its key (PostgreSQL moves it).
    await conn.execute(
        "UPDATE events e SET month = k.month FROM call_keys k "
        "WHERE e.id = ANY($1::bigint[]) AND k.source = e.source AND k.call_key = e.call_key "
        "AND k.month <> e.month",
        ids,
    )


async def refold_all(
    pool: asyncpg.Pool, pseudonymise: Pseudonymiser, progress: Progress, batch: int = 500
) -> int:
    """Fold every marked call; returns how many were folded."""
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            n = await fold_pending(conn, batch, pseudonymise)
        if not n:
            return total
        total += n
        progress(n)

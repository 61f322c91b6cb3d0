"""Rebuild call rows from the stored events, after a rule changed.

``refold`` marks every call and folds them all again from their normalised events (a change
in the fold's rules). ``reparse`` first normalises every raw payload again through its
source's parser (a change in an adapter), then refolds. Both are idempotent and resumable:
run them again and they converge to the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from service.calls.model import Event
from service.calls.queries import fold_pending
from service.calls.rebuild_queries import (
    Renormalised,
    mark_every_call,
    move_rekeyed,
    rewrite_events,
    stored_payloads,
)
from service.privacy import Pseudonymiser

Parser = Callable[[Mapping[str, str], datetime], Event]
Progress = Callable[[int], None]


async def mark_all(conn: asyncpg.Connection) -> int:
    """Mark every call for refolding; returns how many calls there are."""
    return await mark_every_call(conn)


async def reparse(
    pool: asyncpg.Pool, parsers: Mapping[str, Parser], progress: Progress, batch: int = 2000
) -> int:
    """Normalise every stored payload again with the current parsers; returns events seen."""
    last_id = 0
    seen = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await stored_payloads(conn, last_id, batch)
            if not rows:
                return seen
            events, rekeyed = _renormalise(rows, parsers)
            await rewrite_events(conn, events)
            if rekeyed:
                await move_rekeyed(conn, rekeyed)
        last_id = rows[-1]["id"]
        seen += len(rows)
        progress(len(rows))


def _renormalise(
    rows: Sequence[asyncpg.Record], parsers: Mapping[str, Parser]
) -> tuple[Renormalised, list[int]]:
    """The stored events of ``rows`` parsed again from their payloads (those of a source
    without a parser are left as they are), and the ids of those whose call key changed."""
    events = Renormalised()
    rekeyed = []
    for r in rows:
        parser = parsers.get(r["source"])
        if parser is None:
            continue
        params: dict[str, Any] = orjson.loads(r["payload"])
        event = parser(params, r["received_at"])
        events.add(r["id"], r["month"], event)
        if event.call_key != r["call_key"]:
            rekeyed.append(r["id"])
    return events, rekeyed


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

"""SQL of file imports (:mod:`service.calls.bulk`): a batch's events with the position
reached in its file, the positions kept, and the calls an importer folded from the events it
holds. Every function takes a connection; none opens one."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from service.calls.fold import fold
from service.calls.model import Event
from service.calls.queries import (
    CALL_CONFLICT,
    CALL_TYPES,
    CALL_WRITTEN,
    CALLS_CHANNEL,
    INSERT_EVENTS,
    INSERT_EVENTS_FAST,
    call_row,
    refold,
)
from service.privacy import Pseudonymiser

# Where an import stands in a file: its path, the fingerprint of its first line, the byte
# offset and the number of the last line stored.
FilePosition = tuple[str, str, int, int]

# The events of a batch and the position reached in the file, written together.
_POSITION = """, position AS (
    INSERT INTO import_files (source, path, fingerprint, byte_offset, line_no)
    SELECT $2, $3, $4, $5, $6 WHERE $3::text IS NOT NULL
    ON CONFLICT (source, path) DO UPDATE SET
        fingerprint = EXCLUDED.fingerprint, byte_offset = EXCLUDED.byte_offset,
        line_no = EXCLUDED.line_no, updated_at = now()
)
SELECT count(*) FROM ins
"""
_APPEND = INSERT_EVENTS + _POSITION
_APPEND_FAST = INSERT_EVENTS_FAST + _POSITION

_SAVED_POSITION = """
SELECT path, fingerprint, byte_offset, line_no FROM import_files
WHERE source = $1 AND path = $2
"""

_TAKE_KNOWN = """
DELETE FROM fold_queue
WHERE ctid IN (SELECT ctid FROM fold_queue WHERE source = $1 AND call_key = ANY($2::text[])
               FOR UPDATE SKIP LOCKED)
RETURNING call_key
"""

# The calls an importer folded from the events it holds, each with how many it holds
# (``held``; a call folded to nothing has only its keys): written only where the events
# stored are as many, in the same statement; the others are returned, to be read back.
_UPSERT_HELD = f"""
WITH c AS (
    SELECT c.*, ck.month FROM json_to_recordset($1::json) AS c({CALL_TYPES}, held int)
    JOIN unnest($3::text[]) AS taken(key) ON taken.key = c.external_id
    -- (LEFT: a call whose month could not be found is read back, never dropped.)
    LEFT JOIN call_keys ck ON ck.source = c.source AND ck.call_key = c.external_id
), complete AS (
    SELECT * FROM c
    WHERE held = (SELECT count(*) FROM events e
                  WHERE e.month = c.month AND e.source = c.source
                    AND e.call_key = c.external_id)
), up AS (
    INSERT INTO calls (month, {CALL_WRITTEN})
    SELECT month, {CALL_WRITTEN} FROM complete WHERE started_at IS NOT NULL
    ORDER BY source, external_id
    {CALL_CONFLICT}
)
SELECT ARRAY(SELECT external_id FROM c EXCEPT SELECT external_id FROM complete),
       pg_notify($2, '')
"""  # noqa: S608 - constants


async def append_batch(
    conn: asyncpg.Connection, rows: str, source: str, position: FilePosition | None
) -> int:
    """Append the events of ``rows`` (:func:`service.calls.queries.event_rows`, holding no
    duplicates), mark their calls, and keep ``position`` as the point reached in its file,
    in one statement. Returns how many events were new.

    Inside a transaction it runs in a savepoint of its own. The months' partitions must
    exist.
    """
    args = (rows, source, *(position or (None,) * 4))
    try:
        if conn.is_in_transaction():
            async with conn.transaction():
                new = await conn.fetchval(_APPEND_FAST, *args)
        else:
            new = await conn.fetchval(_APPEND_FAST, *args)
    except asyncpg.UniqueViolationError:
        # Some of these events were stored by another writer meanwhile.
        new = await conn.fetchval(_APPEND, *args)
    return int(new)


async def saved_position(
    conn: asyncpg.Connection | asyncpg.Pool, source: str, path: str
) -> FilePosition | None:
    """The position a previous import of the file at ``path`` reached, if any."""
    row = await conn.fetchrow(_SAVED_POSITION, source, path)
    if row is None:
        return None
    return (row["path"], row["fingerprint"], row["byte_offset"], row["line_no"])


@dataclass(frozen=True, slots=True)
class HeldCalls:
    """Calls an importer folded from the events it holds, for :func:`write_held`."""

    source: str
    keys: list[str]
    # JSON: each call's row (only its keys when it folds to nothing) with ``held``, the
    # number of events it was folded from.
    rows: str


def held_calls(
    source: str, known: Mapping[str, Collection[Event]], pseudonymise: Pseudonymiser
) -> HeldCalls:
    """Fold the calls of ``known`` (call key → every event held for it). Pure: done before
    the transaction of :func:`write_held` (or in another process), so the marks it takes
    stay locked briefly."""
    rows = []
    for key, events in known.items():
        call = fold(events)
        row: dict[str, Any] = (
            call_row(call, pseudonymise) if call else {"source": source, "external_id": key}
        )
        row["held"] = len(events)
        rows.append(row)
    return HeldCalls(source, list(known), orjson.dumps(rows).decode())


async def write_held(conn: asyncpg.Connection, held: HeldCalls, pseudonymise: Pseudonymiser) -> int:
    """Write the marked calls among ``held``, reading back only those for which the importer
    did not hold every stored event. Returns how many marks were taken.

    The same protocol as :func:`service.calls.queries.fold_pending`: must run inside a
    transaction, marks taken first. A call is written from the events held only when they
    are as many as those stored, which they then are (every held one is stored, and none
    twice).
    """
    taken = [r["call_key"] for r in await conn.fetch(_TAKE_KNOWN, held.source, held.keys)]
    if not taken:
        return 0
    incomplete, _ = await conn.fetchrow(_UPSERT_HELD, held.rows, CALLS_CHANNEL, taken)
    if incomplete:
        await refold(conn, [(held.source, key) for key in incomplete], pseudonymise)
    return len(taken)

"""SQL for events and calls. Every function takes a connection; none opens one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from service.calls.fold import fold
from service.calls.model import Call, Event
from service.calls.partitions import Partitions, months_of, no_partition
from service.privacy import Pseudonymiser
from service.privacy.pseudonyms import canonical, is_number

_INSERT_EVENTS = """
WITH e AS (
    -- One JSON parameter rather than eight arrays: PostgreSQL reads it in C, where asyncpg
    -- would check every element of every array in Python (a third of a bulk import's time).
    SELECT * FROM json_to_recordset($1::json)
        AS e(s text, c text, d text, k text, o timestamptz, r timestamptz, n json, p json)
), wanted AS (
    -- Each call's month (its partition) if it is new: that of its earliest event here.
    SELECT s, c, date_trunc('month', min(coalesce(o, r)) AT TIME ZONE 'UTC')::date AS m
    FROM e GROUP BY s, c
), known AS (
    SELECT k.source, k.call_key, k.month
    FROM call_keys k JOIN wanted w ON k.source = w.s AND k.call_key = w.c
), fresh AS (
    -- DO UPDATE (a no-op), not DO NOTHING: a call registered by a transaction committed
    -- after this statement's snapshot is returned all the same, with its month.
    INSERT INTO call_keys (source, call_key, month)
    SELECT s, c, m FROM wanted w
    WHERE NOT EXISTS (SELECT FROM known WHERE known.source = w.s AND known.call_key = w.c)
    ORDER BY s, c
    ON CONFLICT (source, call_key) DO UPDATE SET month = call_keys.month
    RETURNING source, call_key, month
), months AS (
    SELECT * FROM known UNION ALL SELECT * FROM fresh
), ins AS (
    INSERT INTO events (month, source, call_key, dedup_key, kind, occurred_at, received_at,
                        norm, payload)
    SELECT m.month, e.s, e.c, e.d, e.k, e.o, e.r, e.n, e.p
    FROM e JOIN months m ON m.source = e.s AND m.call_key = e.c
    {only_new}
    RETURNING source, call_key, dedup_key
), marked AS (
    -- DO UPDATE, not DO NOTHING: the row lock it takes makes a folder skip this mark until
    -- these events are committed, so the folder never consumes a mark without them.
    INSERT INTO fold_queue (source, call_key)
    SELECT DISTINCT source, call_key FROM ins ORDER BY source, call_key
    ON CONFLICT (source, call_key) DO UPDATE SET enqueued_at = fold_queue.enqueued_at
)
"""
INSERT_EVENTS = _INSERT_EVENTS.format(
    only_new="ON CONFLICT (source, call_key, dedup_key, month) DO NOTHING"
)
"""The first part of a statement that appends the events of :func:`event_rows` (``$1``),
registers the months of new calls and marks their calls; the new rows are ``ins``.
Complete it with a ``SELECT`` (and perhaps more data-modifying parts, written in the same
transaction). The months' partitions must exist (:mod:`service.calls.partitions`)."""

INSERT_EVENTS_FAST = _INSERT_EVENTS.format(
    only_new="WHERE NOT EXISTS (SELECT FROM events x WHERE x.month = m.month "
    "AND x.source = e.s AND x.call_key = e.c AND x.dedup_key = e.d)"
)
""":data:`INSERT_EVENTS` for bulk imports: a third cheaper for PostgreSQL (no speculative
insertion), but the events given must hold no duplicates, and an event stored by another
transaction at the same moment fails the statement (``UniqueViolationError``): retry it with
:data:`INSERT_EVENTS`."""

_NEW_KEYS = INSERT_EVENTS + "SELECT source, call_key, dedup_key FROM ins"  # noqa: S608 - constants

_TAKE_FOLDS = """
DELETE FROM fold_queue
WHERE ctid IN (SELECT ctid FROM fold_queue ORDER BY enqueued_at
               LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING source, call_key
"""

_ANY_MARKED = "SELECT EXISTS (SELECT 1 FROM fold_queue)"
_MARKED_BEFORE = "SELECT count(*) FROM fold_queue WHERE enqueued_at <= $1"

# Through call_keys: each call's month prunes the events to its own partition.
_EVENTS_OF_CALLS = """
SELECT e.source, e.call_key, e.dedup_key, e.kind, e.occurred_at, e.received_at,
       e.norm::text AS norm
FROM unnest($1::text[], $2::text[]) AS k(source, call_key)
JOIN call_keys ck ON ck.source = k.source AND ck.call_key = k.call_key
JOIN events e ON e.month = ck.month AND e.source = k.source AND e.call_key = k.call_key
"""

# The columns a folded call writes, their types in a JSON row, and the update of a call
# already stored: shared by this module's upsert and the bulk import's (bulk_queries).
CALL_WRITTEN = """source, external_id, direction, line, queue, caller_hash, caller_last2,
    caller_number, agent, started_at, answered_at, ended_at, wait_s, answered, disposition,
    time_from_events, recording_url"""
CALL_TYPES = """source text, external_id text, direction text, line text, queue text,
    caller_hash text, caller_last2 text, caller_number text, agent text,
    started_at timestamptz, answered_at timestamptz, ended_at timestamptz, wait_s float8,
    answered bool, disposition text, time_from_events bool, recording_url text"""
CALL_CONFLICT = """ON CONFLICT (source, external_id, month) DO UPDATE SET
    direction = EXCLUDED.direction, line = EXCLUDED.line, queue = EXCLUDED.queue,
    caller_hash = EXCLUDED.caller_hash, caller_last2 = EXCLUDED.caller_last2,
    caller_number = EXCLUDED.caller_number, agent = EXCLUDED.agent,
    started_at = EXCLUDED.started_at, answered_at = EXCLUDED.answered_at,
    ended_at = EXCLUDED.ended_at, wait_s = EXCLUDED.wait_s, answered = EXCLUDED.answered,
    disposition = EXCLUDED.disposition, time_from_events = EXCLUDED.time_from_events,
    recording_url = EXCLUDED.recording_url, updated_at = now()"""

# Rows in key order: concurrent folders of the same calls wait rather than deadlock. A call
# is written in its month's partition (call_keys: a call folded from events has its month).
_UPSERT_CALLS = f"""
INSERT INTO calls (month, {CALL_WRITTEN})
SELECT ck.month, c.* FROM json_to_recordset($1::json) AS c({CALL_TYPES})
JOIN call_keys ck ON ck.source = c.source AND ck.call_key = c.external_id
ORDER BY c.source, c.external_id
{CALL_CONFLICT}
"""  # noqa: S608 - constants

# Notified (empty payload) by every transaction that writes call rows: each instance's wall
# hub LISTENs, so an event received by any instance refreshes every wall.
CALLS_CHANNEL = "decroche_calls"


def event_rows(events: Sequence[tuple[Event, dict[str, Any]]]) -> str:
    """Events with their raw payloads as the JSON parameter of :data:`INSERT_EVENTS`."""
    # Rows are written in one global order (events by key, marks by call), so concurrent
    # appends from several instances wait on each other at worst, never deadlock.
    events = sorted(events, key=lambda pair: (pair[0].source, pair[0].call_key, pair[0].dedup_key))
    return orjson.dumps(
        [
            {
                "s": e.source,
                "c": e.call_key,
                "d": e.dedup_key,
                "k": e.kind,
                "o": e.at,
                "r": e.received_at,
                "n": e.details(),
                "p": p,
            }
            for e, p in events
        ]
    ).decode()


async def append_events(
    conn: asyncpg.Connection | asyncpg.Pool,
    events: Sequence[tuple[Event, dict[str, Any]]],
    partitions: Partitions,
) -> set[tuple[str, str, str]]:
    """Append events (with their raw payloads) and mark their calls for refolding.

    One statement, so one implicit transaction: concurrent appends commit together without
    waiting on each other. Returns the (source, call_key, dedup_key) of the events that were
    new; the others were duplicates and changed nothing. The partitions of the months of new
    calls are made first if ``partitions`` does not know them.
    """
    months = months_of(e for e, _ in events)
    await partitions.ensure(conn, months)
    rows_json = event_rows(events)
    try:
        rows = await conn.fetch(_NEW_KEYS, rows_json)
    except asyncpg.CheckViolationError as exc:
        if not no_partition(exc):
            raise
        partitions.forget()  # one was detached since: make it again
        await partitions.ensure(conn, months)
        rows = await conn.fetch(_NEW_KEYS, rows_json)
    return {(r["source"], r["call_key"], r["dedup_key"]) for r in rows}


async def fold_pending(conn: asyncpg.Connection, limit: int, pseudonymise: Pseudonymiser) -> int:
    """Refold up to ``limit`` marked calls; returns how many marks were taken.

    Must run inside a transaction: the marks are deleted and the rows rewritten atomically.
    The marks are taken *before* the events are read, and an append locks its call's mark
    until it commits (marks locked that way are skipped). So an event appended meanwhile is
    either seen here, or re-marks its call once this transaction commits: no event is ever
    left unfolded.
    """
    keys = [(r["source"], r["call_key"]) for r in await conn.fetch(_TAKE_FOLDS, limit)]
    if keys:
        await refold(conn, keys, pseudonymise)
    return len(keys)


async def any_marked(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    """Whether any call is marked for folding."""
    return bool(await conn.fetchval(_ANY_MARKED))


async def database_now(conn: asyncpg.Connection | asyncpg.Pool) -> datetime:
    """The database server's clock now (not the transaction's start): the instant marks are
    compared with."""
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


async def marked_before(conn: asyncpg.Connection | asyncpg.Pool, at: datetime) -> int:
    """How many calls marked at or before ``at`` are still waiting to be folded."""
    return int(await conn.fetchval(_MARKED_BEFORE, at))


async def refold(
    conn: asyncpg.Connection, keys: Sequence[tuple[str, str]], pseudonymise: Pseudonymiser
) -> list[Call]:
    """Recompute the call rows of ``keys`` from all their stored events."""
    rows = await conn.fetch(_EVENTS_OF_CALLS, [s for s, _ in keys], [c for _, c in keys])
    grouped: dict[tuple[str, str], list[Event]] = {}
    for r in rows:
        ev = Event.from_stored(
            r["source"],
            r["call_key"],
            r["dedup_key"],
            r["kind"],
            r["occurred_at"],
            r["received_at"],
            orjson.loads(r["norm"]),
        )
        grouped.setdefault((ev.source, ev.call_key), []).append(ev)
    calls = [c for evs in grouped.values() if (c := fold(evs)) is not None]
    if calls:
        await upsert_calls(conn, calls, pseudonymise)
    return calls


def call_row(c: Call, pseudonymise: Pseudonymiser) -> dict[str, Any]:
    """The row of ``c`` as :data:`CALL_TYPES` reads it from JSON, its caller pseudonymised."""
    caller_hash, last2 = pseudonymise(c.caller)
    return {
        "source": c.source,
        "external_id": c.external_id,
        "direction": c.direction,
        "line": c.line,
        "queue": c.queue,
        "caller_hash": caller_hash,
        "caller_last2": last2,
        # Only a real number is kept (a pseudonym token or « erased » is not one).
        "caller_number": canonical(c.caller) if c.caller and is_number(c.caller) else None,
        "agent": c.agent,
        "started_at": c.started_at,
        "answered_at": c.answered_at,
        "ended_at": c.ended_at,
        "wait_s": c.wait_s,
        "answered": c.answered,
        "disposition": c.disposition,
        "time_from_events": c.time_from_events,
        "recording_url": c.recording_url,
    }


async def upsert_calls(
    conn: asyncpg.Connection, calls: Sequence[Call], pseudonymise: Pseudonymiser
) -> None:
    # One JSON parameter: see INSERT_EVENTS.
    await conn.execute(
        _UPSERT_CALLS, orjson.dumps([call_row(c, pseudonymise) for c in calls]).decode()
    )
    # Delivered at commit, once per transaction however many calls it wrote.
    await conn.execute("SELECT pg_notify($1, '')", CALLS_CHANNEL)


# One refused part: why it was refused, its line or row number (None for a whole body), the text.
Refusal = tuple[str, int | None, str]


def _storable(text: str) -> str:
    # PostgreSQL's text cannot hold U+0000: a NUL a sender wrote is kept as U+FFFD.
    return text.replace("\x00", "\ufffd")


async def quarantine(
    conn: asyncpg.Connection | asyncpg.Pool,
    source: str,
    content_type: str | None,
    refused: Iterable[Refusal],
) -> None:
    """Keep refused payloads with the reason each was refused (the one writer of the
    quarantine: webhooks, file imports and the mystery-call callbacks alike)."""
    await conn.executemany(
        "INSERT INTO quarantine (source, reason, content_type, line_no, body) "
        "VALUES ($1, $2, $3, $4, $5)",
        # PostgreSQL's text cannot hold U+0000: a NUL a sender wrote is kept as U+FFFD.
        [
            (
                source,
                reason.replace("\x00", "\ufffd"),
                content_type,
                line_no,
                body.replace("\x00", "\ufffd"),
            )
            for reason, line_no, body in refused
        ],
    )


CALL_COLUMNS = (
    "id, source, external_id, direction, line, queue, agent, started_at, "
    "answered_at, ended_at, wait_s, answered, disposition, caller_last2"
)


async def list_calls(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    start: datetime | None,
    end: datetime | None,
    service_lines: Sequence[str] | None,
    service_queues: Sequence[str] | None,
    all_queues: Sequence[str],
    direction: str | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Calls newest first (``started_at`` then ``id`` descending), keyset-paginated.

    ``service_lines``/``service_queues`` select one service: a call belongs to the service
    owning its queue, else to the one owning its line (as ``Municipality.service_for``).
    """
    where = ["TRUE"]
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if start is not None:
        where.append(f"started_at >= {arg(start)}")
    if end is not None:
        where.append(f"started_at < {arg(end)}")
    if direction is not None:
        where.append(f"direction = {arg(direction)}")
    if service_lines is not None and service_queues is not None:
        where.append(
            f"(queue = ANY({arg(list(service_queues))}::text[]) OR (line = ANY("
            f"{arg(list(service_lines))}::text[]) AND (queue IS NULL OR NOT queue = ANY("
            f"{arg(list(all_queues))}::text[]))))"
        )
    if after is not None:
        where.append(f"(started_at, id) < ({arg(after[0])}, {arg(after[1])})")
    sql = (
        f"SELECT {CALL_COLUMNS} FROM calls WHERE {' AND '.join(where)} "  # noqa: S608
        f"ORDER BY started_at DESC, id DESC LIMIT {arg(limit)}"
    )
    return list(await conn.fetch(sql, *args))

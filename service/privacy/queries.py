"""SQL for retention and erasure. Every function takes a connection; none opens one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg
import orjson

from service.calls.queries import refold
from service.privacy.pseudonyms import Pseudonymiser, is_number
from service.privacy.scrub import scrub_json

CallKey = tuple[str, str]
Replacer = Callable[[str], str]


async def calls_with_numbers(
    conn: asyncpg.Connection, before: datetime, limit: int
) -> list[asyncpg.Record]:
    """Calls older than ``before`` that still hold a full number, locked for this transaction."""
    return list(
        await conn.fetch(
            "SELECT source, external_id, caller_number FROM calls "
            "WHERE caller_number IS NOT NULL AND started_at < $1 "
            "ORDER BY started_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            before,
            limit,
        )
    )


async def calls_with_recordings(
    conn: asyncpg.Connection | asyncpg.Pool,
    before: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Calls older than ``before`` that still point at a recording, in (started_at, id) order."""
    after_at, after_id = after if after else (datetime.min.replace(tzinfo=before.tzinfo), 0)
    return list(
        await conn.fetch(
            "SELECT id, started_at, source, external_id FROM calls "
            "WHERE recording_url IS NOT NULL AND started_at < $1 "
            "AND (started_at, id) > ($2, $3) ORDER BY started_at, id LIMIT $4",
            before,
            after_at,
            after_id,
            limit,
        )
    )


async def calls_of_caller(conn: asyncpg.Connection, caller_hash: str) -> list[CallKey]:
    rows = await conn.fetch(
        "SELECT source, external_id FROM calls WHERE caller_hash = $1 ORDER BY started_at",
        caller_hash,
    )
    return [(r["source"], r["external_id"]) for r in rows]


_DROP_NUMBER = "caller_number = NULL"
_DROP_CALLER = "caller_number = NULL, caller_hash = NULL, caller_last2 = NULL, recording_url = NULL"


async def drop_numbers(
    conn: asyncpg.Connection, keys: Sequence[CallKey], *, whole_caller: bool = False
) -> None:
    """The calls of ``keys`` keep no full number (with ``whole_caller``: nothing of the
    caller, recordings included), whatever their events say."""
    await conn.execute(
        f"UPDATE calls c SET {_DROP_CALLER if whole_caller else _DROP_NUMBER} "  # noqa: S608
        "FROM unnest($1::text[], $2::text[]) AS k(source, external_id) "
        "WHERE c.source = k.source AND c.external_id = k.external_id",
        [s for s, _ in keys],
        [e for _, e in keys],
    )


async def recording_urls(
    conn: asyncpg.Connection, keys: Sequence[CallKey]
) -> dict[CallKey, set[str]]:
    """Every recording address the events of ``keys`` give (a call may have several)."""
    rows = await conn.fetch(
        "SELECT e.source, e.call_key, e.norm::jsonb->>'recording_url' AS url FROM events e "
        "JOIN unnest($1::text[], $2::text[]) AS k(source, call_key) "
        "ON e.source = k.source AND e.call_key = k.call_key "
        "WHERE e.norm::jsonb->>'recording_url' <> ''",
        [s for s, _ in keys],
        [c for _, c in keys],
    )
    out: dict[CallKey, set[str]] = {}
    for r in rows:
        out.setdefault((r["source"], r["call_key"]), set()).add(r["url"])
    return out


async def scrub_calls(
    conn: asyncpg.Connection,
    replacers: dict[CallKey, Replacer],
    pseudonymise: Pseudonymiser,
) -> tuple[int, list[CallKey]]:
    """Rewrite the events of each call with its replacer, then refold those calls.

    Must run in a transaction. The call row is refolded from the rewritten events rather
    than patched, so a later ``decroche refold`` gives the same row. Returns the number of
    events changed and the calls whose events still give a full number (in a form the
    patterns did not recognise).
    """
    keys = list(replacers)
    rows = await conn.fetch(
        "SELECT e.id, e.month, e.source, e.call_key, e.norm::text AS norm, "
        "e.payload::text AS payload "
        "FROM events e JOIN unnest($1::text[], $2::text[]) AS k(source, call_key) "
        "ON e.source = k.source AND e.call_key = k.call_key FOR UPDATE OF e",
        [s for s, _ in keys],
        [c for _, c in keys],
    )
    ids, months, norms, payloads = [], [], [], []
    for r in rows:
        replace = replacers[(r["source"], r["call_key"])]
        norm = orjson.dumps(scrub_json(orjson.loads(r["norm"]), replace)).decode()
        payload = orjson.dumps(scrub_json(orjson.loads(r["payload"]), replace)).decode()
        if norm != r["norm"] or payload != r["payload"]:
            ids.append(r["id"])
            months.append(r["month"])
            norms.append(norm)
            payloads.append(payload)
    if ids:
        await conn.execute(
            "UPDATE events e SET norm = n.norm::json, payload = n.payload::json "
            "FROM unnest($1::bigint[], $2::date[], $3::text[], $4::text[]) "
            "AS n(id, month, norm, payload) WHERE e.id = n.id AND e.month = n.month",
            ids,
            months,
            norms,
            payloads,
        )
    folded = await refold(conn, keys, pseudonymise)
    kept = [(c.source, c.external_id) for c in folded if c.caller and is_number(c.caller)]
    return len(ids), kept


async def quarantined(
    conn: asyncpg.Connection, after_id: int, limit: int, *, unmasked_before: datetime | None
) -> list[asyncpg.Record]:
    """Quarantined bodies by id; only those not yet masked and older than a date if given."""
    if unmasked_before is None:
        sql = "SELECT id, body FROM quarantine WHERE id > $1 ORDER BY id LIMIT $2"
        return list(await conn.fetch(sql, after_id, limit))
    sql = (
        "SELECT id, body FROM quarantine WHERE masked_at IS NULL AND received_at < $3 "
        "AND id > $1 ORDER BY id LIMIT $2"
    )
    return list(await conn.fetch(sql, after_id, limit, unmasked_before))


async def rewrite_quarantined(
    conn: asyncpg.Connection, bodies: dict[int, str], *, masked: bool
) -> None:
    await conn.execute(
        "UPDATE quarantine q SET body = b.body, "
        "masked_at = CASE WHEN $3 THEN now() ELSE q.masked_at END "
        "FROM unnest($1::bigint[], $2::text[]) AS b(id, body) WHERE q.id = b.id",
        list(bodies),
        list(bodies.values()),
        masked,
    )


async def forget_callback_marks(conn: asyncpg.Connection, caller_hash: str) -> None:
    """The call-back marks of a caller (erased on request) go with the caller."""
    await conn.execute("DELETE FROM callback_marks WHERE caller_hash = $1", caller_hash)


async def forget_expired_sessions(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """Expired sessions and day-old login failures serve no one: delete them."""
    s = await conn.execute("DELETE FROM sessions WHERE expires_at < now()")
    f = await conn.execute("DELETE FROM login_failures WHERE at < now() - interval '1 day'")
    return int(s.split()[-1]) + int(f.split()[-1])

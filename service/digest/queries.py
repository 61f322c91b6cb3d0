"""SQL of the digest's deliveries (table ``digest_deliveries``, migration 0010)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

Conn = Any  # an asyncpg connection or pool (both run these statements)


async def enqueue(conn: Conn, week: str, recipients: Iterable[str], now: datetime) -> int:
    """A pending delivery for each recipient of ``week`` that has none yet; how many."""
    rows = await conn.fetch(
        "INSERT INTO digest_deliveries (week, recipient, next_attempt_at) "
        "SELECT $1, r, $3 FROM unnest($2::text[]) AS r "
        "ON CONFLICT (week, recipient) DO NOTHING RETURNING recipient",
        week,
        sorted(set(recipients)),
        now,
    )
    return len(rows)


async def due_weeks(conn: Conn, due_by: datetime | None) -> list[str]:
    """Weeks with a pending delivery due by ``due_by`` (None: whenever due)."""
    rows = await conn.fetch(
        "SELECT DISTINCT week FROM digest_deliveries WHERE state = 'pending' "
        "AND ($1::timestamptz IS NULL OR next_attempt_at <= $1) ORDER BY week",
        due_by,
    )
    return [r["week"] for r in rows]


async def claim(
    conn: Conn,
    week: str,
    due_by: datetime | None,
    instance: str,
    now: datetime,
    tried: Sequence[str] = (),
) -> asyncpg.Record | None:
    """Take one pending delivery of ``week`` due by ``due_by`` (None: any), other than the
    recipients ``tried`` in this run: marked 'sending' and committed before its message
    goes, so nobody else takes it."""
    return await conn.fetchrow(
        """
        UPDATE digest_deliveries d
        SET state = 'sending', attempts = attempts + 1, claimed_by = $3, claimed_at = $5
        FROM (SELECT week, recipient FROM digest_deliveries
              WHERE week = $1 AND state = 'pending'
                AND ($2::timestamptz IS NULL OR next_attempt_at <= $2)
                AND recipient <> ALL($4::text[])
              ORDER BY recipient
              FOR UPDATE SKIP LOCKED LIMIT 1) AS due
        WHERE d.week = due.week AND d.recipient = due.recipient
        RETURNING d.recipient, d.attempts
        """,
        week,
        due_by,
        instance,
        list(tried),
        now,
    )


async def finish(
    conn: Conn,
    week: str,
    recipient: str,
    state: str,
    *,
    instance: str,
    at: datetime,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """Record what became of ``instance``'s claim of a delivery: sent, pending again (a
    retry), failed, or unknown (the server may have taken it). False when the claim is no
    longer its own (reopened by hand, or given up as stale meanwhile)."""
    result = await conn.execute(
        "UPDATE digest_deliveries SET state = $3, last_error = $4, "
        "sent_at = CASE WHEN $3 = 'sent' THEN $5 ELSE sent_at END, "
        "next_attempt_at = coalesce($6, next_attempt_at) "
        "WHERE week = $1 AND recipient = $2 AND state = 'sending' AND claimed_by = $7",
        week,
        recipient,
        state,
        error,
        at,
        next_attempt_at,
        instance,
    )
    return bool(int(result.split()[-1]))


async def give_up_stale(conn: Conn, claimed_before: datetime) -> list[asyncpg.Record]:
    """Claims older than ``claimed_before`` (their process died while sending) become
    'unknown': the message may have gone, so it is not sent again by itself."""
    return list(
        await conn.fetch(
            "UPDATE digest_deliveries SET state = 'unknown', last_error = "
            "'interrupted while sending (claimed by ' || coalesce(claimed_by, '?') || "
            "'): it may have gone' "
            "WHERE state = 'sending' AND claimed_at < $1 "
            "RETURNING week, recipient, claimed_by, claimed_at",
            claimed_before,
        )
    )


async def reopen(
    conn: Conn,
    week: str,
    recipients: Iterable[str],
    states: Iterable[str],
    now: datetime,
    stale_before: datetime,
) -> int:
    """Make deliveries of ``week`` in ``states`` pending again, due now (a send by hand).
    A delivery being sent is reopened only when its claim is stale (older than
    ``stale_before``): one in flight is left to its sender."""
    result = await conn.execute(
        "UPDATE digest_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $4 "
        "WHERE week = $1 AND recipient = ANY($2::text[]) AND state = ANY($3::text[]) "
        "AND (state <> 'sending' OR claimed_at < $5)",
        week,
        list(recipients),
        list(states),
        now,
        stale_before,
    )
    return int(result.split()[-1])


async def deliveries(conn: Conn, week: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT recipient, state, attempts, next_attempt_at, last_error, sent_at "
            "FROM digest_deliveries WHERE week = $1 ORDER BY recipient",
            week,
        )
    )

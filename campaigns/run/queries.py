"""SQL of running campaigns: exactly-once claims, the calls that fall due, moved slots."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

# The calls of active campaigns still waiting for their act (no evaluation, planned), with
# what a sheet needs. $1 = the earliest slot to consider, $2 = the latest.
WAITING = """
SELECT m.id, m.campaign_id, m.scheduled_at, m.service, m.number, m.scenario, m.evaluator,
       m.mode, m.half_day, m.moment, c.name AS campaign_name, c.spec AS campaign_spec,
       c.created_at AS campaign_created_at
FROM mystery_calls m JOIN campaigns c ON c.id = m.campaign_id
WHERE c.status = 'active' AND m.status = 'planned'
  AND m.scheduled_at >= $1 AND m.scheduled_at <= $2
  AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.mystery_call_id = m.id)
ORDER BY m.scheduled_at, m.id
"""


def slot_key(action: str, call_id: int, scheduled_at: datetime) -> str:
    """The claim of one act on one slot: a moved call's new slot is a new claim."""
    return f"{action}:{call_id}:{int(scheduled_at.timestamp())}"


async def waiting(conn: Any, earliest: datetime, latest: datetime) -> list[asyncpg.Record]:
    return list(await conn.fetch(WAITING, earliest, latest))


async def claimed(conn: Any, keys: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT key FROM run_claims WHERE key = ANY($1::text[])", keys)
    return {r["key"] for r in rows}


async def claim(
    conn: Any, key: str, instance: str, now: datetime, detail: Mapping[str, object] | None = None
) -> bool:
    """Take ``key`` for this instance; False when anyone (this one included) already has."""
    status: str = await conn.execute(
        "INSERT INTO run_claims (key, claimed_by, claimed_at, detail) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (key) DO NOTHING",
        key,
        instance,
        now,
        detail or {},
    )
    return status == "INSERT 0 1"


async def finish(conn: Any, key: str, outcome: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE run_claims SET finished_at = $2, outcome = $3 WHERE key = $1", key, now, outcome
    )


async def release(conn: Any, key: str) -> None:
    """Give a claim back after the act could not even start (the next round tries again)."""
    await conn.execute("DELETE FROM run_claims WHERE key = $1 AND finished_at IS NULL", key)


async def others_of(conn: Any, campaign_id: int, call_id: int) -> list[asyncpg.Record]:
    """The campaign's other calls that hold a time: done, or still planned."""
    return list(
        await conn.fetch(
            "SELECT m.scheduled_at, m.service, m.number, m.evaluator FROM mystery_calls m "
            "WHERE m.campaign_id = $1 AND m.id <> $2 AND (m.status = 'planned' OR EXISTS "
            "(SELECT 1 FROM evaluations e WHERE e.mystery_call_id = m.id))",
            campaign_id,
            call_id,
        )
    )


async def move(
    conn: Any, call_id: int, to: datetime, evaluator: str, reason: str, now: datetime
) -> None:
    await conn.execute(
        "UPDATE mystery_calls SET moved_from = coalesce(moved_from, scheduled_at), "
        "scheduled_at = $2, evaluator = $3, moved_reason = $4, status_at = $5, "
        "status_by = 'scheduler' WHERE id = $1",
        call_id,
        to,
        evaluator,
        reason,
        now,
    )


async def mark_missed(conn: Any, call_id: int, reason: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE mystery_calls SET status = 'missed', status_reason = $2, status_by = "
        "'scheduler', status_at = $3 WHERE id = $1 AND status = 'planned'",
        call_id,
        reason,
        now,
    )


async def lock_call(conn: Any, call_id: int) -> bool:
    """Hold the call (and its campaign, shared) like an evaluation or a re-plan does; False
    when it is no longer waiting."""
    await conn.execute(
        "SELECT 1 FROM campaigns WHERE id = "
        "(SELECT campaign_id FROM mystery_calls WHERE id = $1) FOR SHARE",
        call_id,
    )
    row = await conn.fetchrow(
        "SELECT m.status, c.status AS campaign_status FROM mystery_calls m "
        "JOIN campaigns c ON c.id = m.campaign_id WHERE m.id = $1 FOR UPDATE OF m",
        call_id,
    )
    if row is None or row["status"] != "planned" or row["campaign_status"] != "active":
        return False
    evaluated = await conn.fetchval("SELECT 1 FROM evaluations WHERE mystery_call_id = $1", call_id)
    return evaluated is None


LOOK_BACK = timedelta(days=7)  # misfires older than this are left to the derived 'missed'


# -- the Twilio side of assisted calls ----------------------------------------------------

RUN_COLUMNS = (
    "mystery_call_id, kind, state, outcome, detail, dial_seconds, placed_at, call_sid, "
    "target_sid, evaluator_answered_at, target_initiated_at, target_ringing_at, "
    "target_answered_at, ended_at, ring_seconds, recording_sid, recording_url, "
    "recording_seconds, recording_erased_at, prefill"
)


async def start_run(conn: Any, call_id: int, kind: str, now: datetime) -> None:
    """A fresh run for the call (a moved slot's new attempt replaces the old one)."""
    await conn.execute(
        "INSERT INTO mystery_runs (mystery_call_id, kind, placed_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (mystery_call_id) DO UPDATE SET kind = $2, state = 'placing', "
        "outcome = NULL, detail = NULL, dial_seconds = NULL, placed_at = $3, call_sid = NULL, "
        "target_sid = NULL, evaluator_answered_at = NULL, target_initiated_at = NULL, "
        "target_ringing_at = NULL, target_answered_at = NULL, ended_at = NULL, "
        "ring_seconds = NULL, recording_sid = NULL, recording_url = NULL, "
        "recording_seconds = NULL, recording_erased_at = NULL, prefill = '{}', "
        "updated_at = now()",
        call_id,
        kind,
        now,
    )


async def run_of(conn: Any, call_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {RUN_COLUMNS} FROM mystery_runs WHERE mystery_call_id = $1",  # noqa: S608
        call_id,
    )
    return row


async def run_placed(conn: Any, call_id: int, sid: str) -> None:
    await conn.execute(
        "UPDATE mystery_runs SET call_sid = coalesce(call_sid, $2), state = CASE WHEN "
        "state = 'placing' THEN 'placed' ELSE state END, updated_at = now() "
        "WHERE mystery_call_id = $1",
        call_id,
        sid,
    )


async def run_unknown(conn: Any, call_id: int, detail: str) -> None:
    """Twilio's answer was lost: the run stays open to its callbacks, if the call exists."""
    await conn.execute(
        "UPDATE mystery_runs SET detail = $2, updated_at = now() WHERE mystery_call_id = $1",
        call_id,
        detail,
    )


async def run_failed(conn: Any, call_id: int, detail: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE mystery_runs SET state = 'ended', outcome = 'failed', detail = $2, "
        "ended_at = $3, updated_at = now() WHERE mystery_call_id = $1",
        call_id,
        detail,
        now,
    )


async def update_run(conn: Any, call_id: int, sid: str, sets: str, *args: Any) -> bool:
    """Apply ``sets`` (SQL assignments using $3…) to the run whose Décroché-created leg is
    ``sid`` — or whose leg is still unknown while it is being placed (Twilio may call back
    before its REST answer was stored, or that answer was lost). A run that failed takes no
    stray leg."""
    status: str = await conn.execute(
        f"UPDATE mystery_runs SET call_sid = coalesce(call_sid, $2), {sets}, "  # noqa: S608
        "updated_at = now() WHERE mystery_call_id = $1 AND (call_sid = $2 OR "
        "(call_sid IS NULL AND state = 'placing'))",
        call_id,
        sid,
        *args,
    )
    return status == "UPDATE 1"


# -- what each callback of an assisted call changes in its run (voice_flow) ----------------

# The run's columns a leg's moment may fill (the values of voice.TARGET_MOMENTS).
MOMENT_COLUMNS = {"target_initiated_at", "target_ringing_at", "target_answered_at"}


def _moment(column: str, param: int) -> str:
    """The assignment keeping the first time of a moment (callbacks may come twice)."""
    if column not in MOMENT_COLUMNS:
        raise ValueError(f"not a moment of a run: {column!r}")
    return f"{column} = coalesce({column}, ${param})"


async def call_brief(conn: Any, call_id: int) -> asyncpg.Record | None:
    """What the evaluator's briefing says: the number, service, scenario and campaign spec."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT m.number, m.service, m.scenario, c.spec FROM mystery_calls m "
        "JOIN campaigns c ON c.id = m.campaign_id WHERE m.id = $1",
        call_id,
    )
    return row


async def call_number(conn: Any, call_id: int) -> str:
    """The number a call dials (of a call known to exist: just locked)."""
    number: str = await conn.fetchval("SELECT number FROM mystery_calls WHERE id = $1", call_id)
    return number


async def run_bridged(conn: Any, call_id: int, sid: str, answered_at: datetime | None) -> bool:
    """The evaluator picked up at ``answered_at`` (None for a probe: its pick-up is timed
    by its leg's own event)."""
    if answered_at is None:
        return await update_run(conn, call_id, sid, "state = 'bridged'")
    sets = "state = 'bridged', evaluator_answered_at = coalesce(evaluator_answered_at, $3)"
    return await update_run(conn, call_id, sid, sets, answered_at)


async def run_seen(conn: Any, call_id: int, sid: str) -> bool:
    """Only the leg is recorded (the run's state stays); False when no run has it."""
    return await update_run(conn, call_id, sid, "state = state")


async def evaluator_unanswered(
    conn: Any, call_id: int, sid: str, at: datetime, outcome: str
) -> bool:
    sets = "state = 'ended', ended_at = coalesce(ended_at, $3), outcome = coalesce(outcome, $4)"
    return await update_run(conn, call_id, sid, sets, at, outcome)


async def evaluator_hung_up(conn: Any, call_id: int, sid: str, at: datetime, detail: str) -> bool:
    """The evaluator's leg completed without a ``<Dial>`` verdict (yet): no target leg
    means nobody took the call for real; ``detail`` when they had picked up."""
    sets = (
        "state = 'ended', ended_at = coalesce(ended_at, $3), outcome = coalesce(outcome, "
        "CASE WHEN target_sid IS NULL THEN 'evaluator-no-answer' ELSE 'failed' END), "
        "detail = coalesce(detail, CASE WHEN evaluator_answered_at IS NOT NULL AND "
        "target_sid IS NULL THEN $4 END)"
    )
    return await update_run(conn, call_id, sid, sets, at, detail)


async def target_moment(
    conn: Any, call_id: int, sid: str, target_sid: str | None, column: str | None, at: datetime
) -> bool:
    """The target's leg (``target_sid``) is known, and its moment ``column`` if any."""
    if column is None:
        return await update_run(
            conn, call_id, sid, "target_sid = coalesce(target_sid, $3)", target_sid
        )
    sets = f"target_sid = coalesce(target_sid, $3), {_moment(column, 4)}"
    return await update_run(conn, call_id, sid, sets, target_sid, at)


async def probe_moment(conn: Any, call_id: int, sid: str, column: str, at: datetime) -> bool:
    return await update_run(conn, call_id, sid, _moment(column, 3), at)


async def probe_ended(conn: Any, call_id: int, sid: str, at: datetime, outcome: str) -> bool:
    sets = "state = 'ended', ended_at = coalesce(ended_at, $3), outcome = $4"
    return await update_run(conn, call_id, sid, sets, at, outcome)


async def dial_verdict(
    conn: Any, call_id: int, sid: str, outcome: str, seconds: int | None, detail: str
) -> bool:
    """The ``<Dial>``'s verdict: it wins over what the evaluator's leg implied."""
    sets = "outcome = $3, dial_seconds = $4, detail = $5"
    return await update_run(conn, call_id, sid, sets, outcome, seconds, detail)


async def recording_ready(
    conn: Any,
    call_id: int,
    sid: str,
    recording_sid: str | None,
    url: str | None,
    seconds: int | None,
) -> bool:
    sets = "recording_sid = $3, recording_url = $4, recording_seconds = $5"
    return await update_run(conn, call_id, sid, sets, recording_sid, url, seconds)


async def ring_moments(conn: Any, call_id: int) -> asyncpg.Record | None:
    """The target's moments and the campaign's grid definition, the run locked."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT r.target_initiated_at, r.target_ringing_at, r.target_answered_at, "
        "g.definition FROM mystery_runs r JOIN mystery_calls m ON m.id = r.mystery_call_id "
        "JOIN campaigns c ON c.id = m.campaign_id JOIN grids g ON g.id = c.grid_id "
        "WHERE r.mystery_call_id = $1 FOR UPDATE OF r",
        call_id,
    )
    return row


async def set_ring(conn: Any, call_id: int, ring: float, prefill: Any) -> None:
    await conn.execute(
        "UPDATE mystery_runs SET ring_seconds = $2, prefill = $3 WHERE mystery_call_id = $1",
        call_id,
        ring,
        prefill,
    )


# -- recordings' expiry (recordings.py) ----------------------------------------------------


async def recordings_placed_before(conn: Any, before: datetime) -> list[asyncpg.Record]:
    """Mystery-call recordings not yet erased, of runs placed before ``before``."""
    return list(
        await conn.fetch(
            "SELECT mystery_call_id, recording_sid FROM mystery_runs WHERE recording_sid IS NOT "
            "NULL AND recording_erased_at IS NULL AND placed_at < $1 ORDER BY placed_at",
            before,
        )
    )


async def recording_erased(conn: Any, call_id: int, now: datetime) -> None:
    """Deleted at Twilio: the run keeps when, not where."""
    await conn.execute(
        "UPDATE mystery_runs SET recording_erased_at = $2, recording_url = NULL "
        "WHERE mystery_call_id = $1",
        call_id,
        now,
    )

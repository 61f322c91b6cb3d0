"""What each Twilio callback of an assisted call changes in its run (``mystery_runs``).

Callbacks may come twice or out of order (a leg's ``completed`` before the ``<Dial>``'s
action): every update is idempotent (first timestamps kept with ``coalesce``) and the
``<Dial>``'s own verdict wins over what the evaluator's leg implies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from campaigns.run import queries as q
from campaigns.run import voice
from service.settings import Settings


class UnknownRun(Exception):
    """No run of this call has this leg (an old attempt's callback, or a wrong URL)."""


async def answered(
    pool: asyncpg.Pool,
    settings: Settings,
    base: str,
    call_id: int,
    params: Mapping[str, str],
    now: datetime,
) -> str:
    """The evaluator picked up (or, for a probe, the closed service): the TwiML that briefs
    the evaluator and asks for a key, or that listens to the service."""
    sid = params.get("CallSid", "")
    at = voice.twilio_time(params, now)
    async with pool.acquire() as conn, conn.transaction():
        if not await q.lock_call(conn, call_id):
            return voice.hangup_twiml()
        row = await conn.fetchrow(
            "SELECT m.number, m.service, m.scenario, c.spec FROM mystery_calls m "
            "JOIN campaigns c ON c.id = m.campaign_id WHERE m.id = $1",
            call_id,
        )
        run = await q.run_of(conn, call_id)
        probe = run is not None and run["kind"] == "probe"
        # A probe's pick-up is timed by its leg's own event (Twilio's clock, like its
        # ringing): this request carries no Timestamp and usually comes before that event.
        sets = (
            "state = 'bridged'"
            if probe
            else "state = 'bridged', evaluator_answered_at = coalesce(evaluator_answered_at, $3)"
        )
        ok = await q.update_run(conn, call_id, sid, sets, *(() if probe else (at,)))
    if ok and probe:
        return voice.probe_twiml()
    if not ok or row is None:
        return voice.hangup_twiml()
    scenario = next((s for s in row["spec"]["scenarios"] if s["id"] == row["scenario"]), None)
    service = settings.municipality.service(row["service"])
    return voice.briefing_twiml(
        service_name=service.name if service else row["service"],
        question=scenario["question"] if scenario else None,
        base=base,
        call_id=call_id,
    )


async def ready(
    pool: asyncpg.Pool,
    settings: Settings,
    base: str,
    call_id: int,
    params: Mapping[str, str],
    now: datetime,
) -> str:
    """The evaluator pressed a key after the briefing: bridge to the target (if the call is
    still to be made)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await q.lock_call(conn, call_id):
            return voice.hangup_twiml()
        number = await conn.fetchval("SELECT number FROM mystery_calls WHERE id = $1", call_id)
        ok = await q.update_run(conn, call_id, params.get("CallSid", ""), "state = state")
    if not ok or settings.twilio_caller_id is None:
        return voice.hangup_twiml()
    return voice.bridge_twiml(
        number=number, caller_id=settings.twilio_caller_id, base=base, call_id=call_id
    )


async def evaluator_leg(
    pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime
) -> None:
    """An event of the evaluator's leg: only its end matters."""
    status = params.get("CallStatus", "")
    at = voice.twilio_time(params, now)
    if status in voice.UNANSWERED:
        sets = "state = 'ended', ended_at = coalesce(ended_at, $3), outcome = coalesce(outcome, $4)"
        args: tuple[Any, ...] = (at, voice.UNANSWERED[status])
    elif status == "completed":
        # Hung up without a <Dial> verdict (yet): no target leg means nobody took the call
        # for real (no key pressed: a voicemail, or the evaluator hung up first).
        sets = (
            "state = 'ended', ended_at = coalesce(ended_at, $3), outcome = coalesce(outcome, "
            "CASE WHEN target_sid IS NULL THEN 'evaluator-no-answer' ELSE 'failed' END), "
            "detail = coalesce(detail, CASE WHEN evaluator_answered_at IS NOT NULL AND "
            "target_sid IS NULL THEN $4 END)"
        )
        args = (at, "picked up but no key pressed (a voicemail?)")
    else:
        sets, args = "state = state", ()
    await _update(pool, call_id, params, sets, *args)


async def target_leg(
    pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime
) -> None:
    """An event of the target's leg: the moments that measure the ring time."""
    status = params.get("CallStatus", "")
    at = voice.twilio_time(params, now)
    column = voice.TARGET_MOMENTS.get(status)
    ours = params.get("ParentCallSid") or params.get("CallSid", "")
    sets = "target_sid = coalesce(target_sid, $3)"
    args: tuple[Any, ...] = (params.get("CallSid"),)
    if column is not None:
        sets += f", {column} = coalesce({column}, $4)"
        args += (at,)
    async with pool.acquire() as conn, conn.transaction():
        if not await q.update_run(conn, call_id, ours, sets, *args):
            raise UnknownRun(call_id)
        await _measure(conn, call_id)


async def probe_leg(
    pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime
) -> None:
    """An event of a probe's leg (Twilio calling the closed service): the moments, and at
    the end the outcome."""
    status = params.get("CallStatus", "")
    at = voice.twilio_time(params, now)
    column = voice.TARGET_MOMENTS.get(status)
    args: tuple[Any, ...]
    if column is not None:
        sets, args = f"{column} = coalesce({column}, $3)", (at,)
    elif status in voice.PROBE_OUTCOMES:
        sets = "state = 'ended', ended_at = coalesce(ended_at, $3), outcome = $4"
        args = (at, voice.PROBE_OUTCOMES[status])
    else:
        return
    async with pool.acquire() as conn, conn.transaction():
        if not await q.update_run(conn, call_id, params.get("CallSid", ""), sets, *args):
            raise UnknownRun(call_id)
        await _measure(conn, call_id)


async def _measure(conn: Any, call_id: int) -> None:
    """The ring time and the answers it pre-fills, from whatever moments are known."""
    row = await conn.fetchrow(
        "SELECT r.target_initiated_at, r.target_ringing_at, r.target_answered_at, "
        "g.definition FROM mystery_runs r JOIN mystery_calls m ON m.id = r.mystery_call_id "
        "JOIN campaigns c ON c.id = m.campaign_id JOIN grids g ON g.id = c.grid_id "
        "WHERE r.mystery_call_id = $1 FOR UPDATE OF r",
        call_id,
    )
    ring = voice.ring_seconds(
        row["target_initiated_at"], row["target_ringing_at"], row["target_answered_at"]
    )
    if ring is not None:
        await conn.execute(
            "UPDATE mystery_runs SET ring_seconds = $2, prefill = $3 WHERE mystery_call_id = $1",
            call_id,
            ring,
            voice.prefill(row["definition"], ring),
        )


async def dialed(pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime) -> str:
    """The ``<Dial>`` ended: its verdict is the call's outcome."""
    outcome = voice.DIAL_OUTCOMES.get(params.get("DialCallStatus", ""), "failed")
    duration = params.get("DialCallDuration", "")
    await _update(
        pool,
        call_id,
        params,
        "outcome = $3, dial_seconds = $4, detail = $5",
        outcome,
        int(duration) if duration.isdigit() else None,
        f"DialCallStatus={params.get('DialCallStatus', '')}",
    )
    return voice.closing_twiml(outcome)


async def recorded(
    pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime
) -> None:
    """The recording is ready: linked to the call (fetched through Twilio when listened to)."""
    if params.get("RecordingStatus", "completed") != "completed":
        return
    seconds = params.get("RecordingDuration", "")
    await _update(
        pool,
        call_id,
        params,
        "recording_sid = $3, recording_url = $4, recording_seconds = $5",
        params.get("RecordingSid"),
        params.get("RecordingUrl"),
        int(seconds) if seconds.isdigit() else None,
    )


async def _update(
    pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], sets: str, *args: Any
) -> None:
    """Update the run of the leg ``CallSid`` names; UnknownRun when there is none."""
    if not await q.update_run(pool, call_id, params.get("CallSid", ""), sets, *args):
        raise UnknownRun(call_id)

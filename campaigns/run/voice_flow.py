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
        row = await q.call_brief(conn, call_id)
        run = await q.run_of(conn, call_id)
        probe = run is not None and run["kind"] == "probe"
        # A probe's pick-up is timed by its leg's own event (Twilio's clock, like its
        # ringing): this request carries no Timestamp and usually comes before that event.
        ok = await q.run_bridged(conn, call_id, sid, None if probe else at)
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
        number = await q.call_number(conn, call_id)
        ok = await q.run_seen(conn, call_id, params.get("CallSid", ""))
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
    sid = params.get("CallSid", "")
    at = voice.twilio_time(params, now)
    if status in voice.UNANSWERED:
        ok = await q.evaluator_unanswered(pool, call_id, sid, at, voice.UNANSWERED[status])
    elif status == "completed":
        # Hung up without a <Dial> verdict (yet): no key pressed means a voicemail, or the
        # evaluator hung up first.
        detail = "picked up but no key pressed (a voicemail?)"
        ok = await q.evaluator_hung_up(pool, call_id, sid, at, detail)
    else:
        ok = await q.run_seen(pool, call_id, sid)
    _known(ok, call_id)


async def target_leg(
    pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime
) -> None:
    """An event of the target's leg: the moments that measure the ring time."""
    column = voice.TARGET_MOMENTS.get(params.get("CallStatus", ""))
    ours = params.get("ParentCallSid") or params.get("CallSid", "")
    at = voice.twilio_time(params, now)
    async with pool.acquire() as conn, conn.transaction():
        ok = await q.target_moment(conn, call_id, ours, params.get("CallSid"), column, at)
        _known(ok, call_id)
        await _measure(conn, call_id)


async def probe_leg(
    pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime
) -> None:
    """An event of a probe's leg (Twilio calling the closed service): the moments, and at
    the end the outcome."""
    status = params.get("CallStatus", "")
    sid = params.get("CallSid", "")
    at = voice.twilio_time(params, now)
    column = voice.TARGET_MOMENTS.get(status)
    if column is None and status not in voice.PROBE_OUTCOMES:
        return
    async with pool.acquire() as conn, conn.transaction():
        if column is not None:
            ok = await q.probe_moment(conn, call_id, sid, column, at)
        else:
            ok = await q.probe_ended(conn, call_id, sid, at, voice.PROBE_OUTCOMES[status])
        _known(ok, call_id)
        await _measure(conn, call_id)


async def _measure(conn: Any, call_id: int) -> None:
    """The ring time and the answers it pre-fills, from whatever moments are known."""
    row = await q.ring_moments(conn, call_id)
    assert row is not None  # the run was just updated, in this transaction
    ring = voice.ring_seconds(
        row["target_initiated_at"], row["target_ringing_at"], row["target_answered_at"]
    )
    if ring is not None:
        await q.set_ring(conn, call_id, ring, voice.prefill(row["definition"], ring))


async def dialed(pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime) -> str:
    """The ``<Dial>`` ended: its verdict is the call's outcome."""
    outcome = voice.DIAL_OUTCOMES.get(params.get("DialCallStatus", ""), "failed")
    duration = params.get("DialCallDuration", "")
    ok = await q.dial_verdict(
        pool,
        call_id,
        params.get("CallSid", ""),
        outcome,
        int(duration) if duration.isdigit() else None,
        f"DialCallStatus={params.get('DialCallStatus', '')}",
    )
    _known(ok, call_id)
    return voice.closing_twiml(outcome)


async def recorded(
    pool: asyncpg.Pool, call_id: int, params: Mapping[str, str], now: datetime
) -> None:
    """The recording is ready: linked to the call (fetched through Twilio when listened to)."""
    if params.get("RecordingStatus", "completed") != "completed":
        return
    seconds = params.get("RecordingDuration", "")
    ok = await q.recording_ready(
        pool,
        call_id,
        params.get("CallSid", ""),
        params.get("RecordingSid"),
        params.get("RecordingUrl"),
        int(seconds) if seconds.isdigit() else None,
    )
    _known(ok, call_id)


def _known(updated: bool, call_id: int) -> None:
    """UnknownRun when no run of the call has the leg the callback names."""
    if not updated:
        raise UnknownRun(call_id)

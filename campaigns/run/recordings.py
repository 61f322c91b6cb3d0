"""Recordings of mystery calls expire like the others (``privacy.keep_recordings_days``).

The daily job ``campaigns.recordings`` deletes, through Twilio's API, every mystery-call
recording older than the policy, then marks it erased: the evaluation stays, the link
answers 410 with the date. A recording Twilio could not delete now is kept and retried at
the next run.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from campaigns.run import queries as q
from service.privacy.recordings import RecordingDeleter
from service.settings import Settings

log = logging.getLogger(__name__)


async def erase_expired(
    pool: asyncpg.Pool,
    account_sid: str,
    keep_days: int,
    twilio: RecordingDeleter,
    now: datetime,
) -> tuple[int, list[str]]:
    """Delete what has outlived ``keep_days``; (how many were erased, what was kept, why)."""
    rows = await q.recordings_placed_before(pool, now - timedelta(days=keep_days))
    erased, errors = 0, []
    for r in rows:
        try:
            await twilio.delete_recording(account_sid, r["recording_sid"])
        except Exception as exc:  # TwilioUnavailable, or anything the library raises
            errors.append(f"{r['recording_sid']}: {exc}")
            continue
        await q.recording_erased(pool, r["mystery_call_id"], now)
        erased += 1
    return erased, errors


async def recordings_job(pool: asyncpg.Pool, settings: Settings, twilio: RecordingDeleter) -> int:
    """The scheduled job: one pass of :func:`erase_expired` with the service's settings,
    through ``twilio`` (the service's client)."""
    if not settings.twilio_account_sid:
        return 0
    erased, errors = await erase_expired(
        pool,
        settings.twilio_account_sid,
        settings.municipality.privacy.keep_recordings_days,
        twilio,
        datetime.now(UTC),
    )
    if erased:
        log.info("campaigns: %d mystery-call recording(s) erased", erased)
    for error in errors:
        log.warning("campaigns: recording kept, retried next run: %s", error)
    return erased

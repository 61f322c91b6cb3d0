"""The retention job: what has outlived its keeping period is erased (run daily, and on demand).

* Full numbers older than ``privacy.keep_numbers_days``: in the stored events (normalised
  and raw) the number becomes its pseudonym token, and the call is refolded, so it keeps its
  caller's hash and last two digits and loses the number.
* Recordings older than ``privacy.keep_recordings_days``: deleted where they live (Twilio),
  then their addresses are removed from the events and the call.
* Quarantined bodies older than ``keep_numbers_days``: every run that looks like a phone
  number is masked to its last two digits (the body is kept for the record).
* Expired sessions and day-old login failures are deleted.

Every step works in small batches, each its own transaction, and is idempotent: a run
interrupted halfway is finished by the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from service.municipality.model import PrivacyConfig
from service.privacy import queries
from service.privacy.pseudonyms import Pseudonymiser
from service.privacy.recordings import Outcome, RecordingDeleter, delete_recording
from service.privacy.scrub import literal_replacer, mask_numbers, number_replacer
from service.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]


@dataclass
class RetentionReport:
    """What one run did; ``errors`` says why recordings were kept (retried next run)."""

    numbers: int = 0  # calls whose full number was erased
    events: int = 0  # stored events rewritten
    recordings: dict[str, int] = field(default_factory=lambda: {o.value: 0 for o in Outcome})
    quarantined: int = 0  # quarantined bodies masked
    sessions: int = 0  # expired sessions and old login failures deleted
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "numbers_erased": self.numbers,
            "events_rewritten": self.events,
            "recordings": self.recordings,
            "quarantine_masked": self.quarantined,
            "sessions_deleted": self.sessions,
            "errors": self.errors,
        }


def _nothing(step: str, n: int) -> None:
    pass


async def run_retention(
    pool: asyncpg.Pool,
    policy: PrivacyConfig,
    pseudonymise: Pseudonymiser,
    twilio: RecordingDeleter,
    now: datetime,
    *,
    batch: int = 500,
    progress: Progress = _nothing,
) -> RetentionReport:
    report = RetentionReport()
    numbers_before = now - timedelta(days=policy.keep_numbers_days)
    await _expire_numbers(pool, pseudonymise, numbers_before, batch, report, progress)
    recordings_before = now - timedelta(days=policy.keep_recordings_days)
    await _expire_recordings(pool, pseudonymise, twilio, recordings_before, batch, report, progress)
    await _mask_quarantine(pool, numbers_before, batch, report, progress)
    report.sessions = await queries.forget_expired_sessions(pool)
    return report


async def _expire_numbers(
    pool: asyncpg.Pool,
    pseudonymise: Pseudonymiser,
    before: datetime,
    batch: int,
    report: RetentionReport,
    progress: Progress,
) -> None:
    while True:
        async with pool.acquire() as conn, conn.transaction():
            calls = await queries.calls_with_numbers(conn, before, batch)
            if not calls:
                return
            replacers = {
                (c["source"], c["external_id"]): number_replacer(
                    {c["caller_number"]: pseudonymise.token(c["caller_number"])}
                )
                for c in calls
            }
            changed, kept = await queries.scrub_calls(conn, replacers, pseudonymise)
            # Unconditionally: a number in a form the patterns missed (or a call with no
            # events) must not bring the same calls back into the next batch.
            await queries.drop_numbers(conn, list(replacers))
        report.events += changed
        report.errors += [
            f"{s}/{e}: a number in a form not recognised stays in its events" for s, e in kept
        ]
        report.numbers += len(calls)
        progress("numbers", len(calls))


async def _expire_recordings(
    pool: asyncpg.Pool,
    pseudonymise: Pseudonymiser,
    twilio: RecordingDeleter,
    before: datetime,
    batch: int,
    report: RetentionReport,
    progress: Progress,
) -> None:
    after: tuple[datetime, int] | None = None
    while True:
        calls = await queries.calls_with_recordings(pool, before, after, batch)
        if not calls:
            return
        after = (calls[-1]["started_at"], calls[-1]["id"])
        keys = [(c["source"], c["external_id"]) for c in calls]
        async with pool.acquire() as conn:
            urls = await queries.recording_urls(conn, keys)
        # Deleted where they live first, outside any transaction (a network call each);
        # only what is gone there is then removed from our records.
        gone: dict[tuple[str, str], dict[str, str]] = {}
        for key, addresses in urls.items():
            for url in sorted(addresses):
                outcome = await delete_recording(url, twilio, report.errors)
                report.recordings[outcome.value] += 1
                if outcome is not Outcome.KEPT:
                    gone.setdefault(key, {})[url] = ""
        if gone:
            async with pool.acquire() as conn, conn.transaction():
                replacers = {k: literal_replacer(v) for k, v in gone.items()}
                changed, _ = await queries.scrub_calls(conn, replacers, pseudonymise)
            report.events += changed
        progress("recordings", len(calls))


async def _mask_quarantine(
    pool: asyncpg.Pool, before: datetime, batch: int, report: RetentionReport, progress: Progress
) -> None:
    after_id = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await queries.quarantined(conn, after_id, batch, unmasked_before=before)
            if not rows:
                return
            after_id = rows[-1]["id"]
            await queries.rewrite_quarantined(
                conn, {r["id"]: mask_numbers(r["body"]) for r in rows}, masked=True
            )
        report.quarantined += len(rows)
        progress("quarantine", len(rows))


async def retention_job(
    pool: asyncpg.Pool,
    settings: Settings,
    twilio: RecordingDeleter,
    progress: Progress = _nothing,
) -> RetentionReport:
    """One run of the retention policy of ``settings`` (the scheduled job, and the CLI's),
    deleting expired recordings through ``twilio`` (the service's client, or the CLI's)."""
    report = await run_retention(
        pool,
        settings.municipality.privacy,
        Pseudonymiser(settings.secret_key),
        twilio,
        datetime.now(UTC),
        progress=progress,
    )
    log.info("retention: %s", report.as_json())
    for error in report.errors:
        log.warning("retention: recording kept, retried next run: %s", error)
    return report

"""Erase one caller's data on request (GDPR article 17, right to erasure).

Every call of the caller (recognised by the keyed hash of the number, so every spelling of
it) loses its number, its hash, its last two digits and its recordings; in the stored events
the number, and its pseudonym token where the number had already expired, become
``erased``; quarantined bodies lose the number too. The calls themselves stay, anonymous:
the statistics of Engagement 8 do not change.

Recordings are deleted first, where they live. If one cannot be deleted now, nothing else
is erased and the request fails with the reason: erased calls could no longer be found by
the number, so a half-done erasure could not be finished by asking again.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from service.calls.queries import fold_pending
from service.privacy import queries
from service.privacy.pseudonyms import ERASED, Pseudonymiser
from service.privacy.queries import CallKey, Replacer
from service.privacy.recordings import Outcome, RecordingDeleter, delete_recording
from service.privacy.scrub import chain, literal_replacer, number_replacer


class ErasureRefused(Exception):
    """The request cannot be carried out: not a number, or (``retry``) a recording could
    not be deleted now."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Erasure:
    calls: int
    events: int
    recordings: int
    quarantined: int
    unrecognised: int  # calls whose events still hold the number in a form not recognised

    def as_json(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "events_rewritten": self.events,
            "recordings_deleted": self.recordings,
            "quarantine_rewritten": self.quarantined,
            "unrecognised": self.unrecognised,
        }


async def erase_caller(
    pool: asyncpg.Pool,
    pseudonymise: Pseudonymiser,
    twilio: RecordingDeleter,
    number: str,
    *,
    batch: int = 200,
) -> Erasure:
    """Erase everything of the caller of ``number``; :class:`ErasureRefused` says why not."""
    digest, _ = pseudonymise(number)
    if digest is None or number.startswith("pseudonym:"):
        raise ErasureRefused(f"{number!r} is not a phone number")
    await _fold_pending(pool, pseudonymise)
    async with pool.acquire() as conn:
        keys = await queries.calls_of_caller(conn, digest)
        urls = await queries.recording_urls(conn, keys) if keys else {}
    deleted = await _delete_recordings(twilio, urls)
    numbers = number_replacer({number: ERASED})
    tokens = literal_replacer({pseudonymise.token(number): ERASED})
    events, unrecognised = await _scrub_calls(
        pool, pseudonymise, keys, chain(numbers, tokens), deleted, batch
    )
    async with pool.acquire() as conn:
        await queries.forget_callback_marks(conn, digest)
    quarantined = await _scrub_quarantine(pool, numbers)
    return Erasure(
        calls=len(keys),
        events=events,
        recordings=sum(len(v) for v in deleted.values()),
        quarantined=quarantined,
        unrecognised=unrecognised,
    )


async def _fold_pending(pool: asyncpg.Pool, pseudonymise: Pseudonymiser) -> None:
    """Fold every event received but not folded yet: it would escape the search by hash."""
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if await fold_pending(conn, 500, pseudonymise) == 0:
                return


async def _delete_recordings(
    twilio: RecordingDeleter, urls: dict[CallKey, set[str]]
) -> dict[CallKey, dict[str, str]]:
    """Delete every recording where it lives; per call, the addresses gone (→ ``""``, what
    replaces them in the events). Refused, with the reasons, if any could not be deleted."""
    errors: list[str] = []
    deleted: dict[CallKey, dict[str, str]] = {}
    for key, addresses in urls.items():
        for url in sorted(addresses):
            if await delete_recording(url, twilio, errors) is not Outcome.KEPT:
                deleted.setdefault(key, {})[url] = ""
    if errors:
        raise ErasureRefused(
            "nothing was erased: these recordings could not be deleted, try again later: "
            + "; ".join(errors),
            retry=True,
        )
    return deleted


async def _scrub_calls(
    pool: asyncpg.Pool,
    pseudonymise: Pseudonymiser,
    keys: list[CallKey],
    caller: Replacer,
    deleted: dict[CallKey, dict[str, str]],
    batch: int,
) -> tuple[int, int]:
    """Rewrite the calls' events without the caller (``caller``) and their recordings, a
    batch a transaction; (events changed, calls whose events still hold the number)."""
    events = unrecognised = 0
    for i in range(0, len(keys), batch):
        part = keys[i : i + batch]
        replacers = {k: chain(caller, literal_replacer(deleted.get(k, {}))) for k in part}
        async with pool.acquire() as conn, conn.transaction():
            changed, kept = await queries.scrub_calls(conn, replacers, pseudonymise)
            unrecognised += len(kept)
            # Whatever the events say, these rows no longer point at the caller.
            await queries.drop_numbers(conn, part, whole_caller=True)
            events += changed
    return events, unrecognised


async def _scrub_quarantine(pool: asyncpg.Pool, numbers: Replacer) -> int:
    """Rewrite every quarantined body that holds the number; how many were."""
    quarantined = 0
    after_id = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await queries.quarantined(conn, after_id, 1000, unmasked_before=None)
            if not rows:
                return quarantined
            after_id = rows[-1]["id"]
            changed = {r["id"]: body for r in rows if (body := numbers(r["body"])) != r["body"]}
            if changed:
                await queries.rewrite_quarantined(conn, changed, masked=False)
            quarantined += len(changed)

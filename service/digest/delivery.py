"""Sending the weekly digest: each (week, recipient) exactly once.

When a week's digest falls due (``[digest] send_at``, default Monday 07:30 local, for the
ISO week before), a pending delivery is recorded for each recipient; each is then claimed
(committed as 'sending') before its message goes, so two instances, a restart or a second
run never send it twice. A server that refuses or cannot be reached is tried again with
back-off (1, 2, 4 … 60 minutes, :data:`MAX_ATTEMPTS` tries); one that may have taken the
message (a connection lost after the data) is not: the delivery is 'unknown', shown in the
logs, in ``/metrics`` and on the preview page, and ``decroche digest send --force`` sends
it again by hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.digest import queries as q
from service.digest.build import MysterySource, build_digest
from service.digest.message import Charts, build_message
from service.digest.model import Digest
from service.digest.weeks import CATCH_UP, IsoWeek, due_week
from service.municipality.model import Municipality
from service.outside.mail import Mailer, MailUnavailable
from service.scheduler import instance_id

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# A claim this old belongs to a process that died while sending (a message takes seconds,
# the SMTP timeout is 20 s).
STALE_CLAIM = timedelta(minutes=10)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: 1, 2, 4, 8, 16, 32, then 60 minutes."""
    return timedelta(minutes=min(2 ** (attempts - 1), 60))


def recipients(m: Municipality) -> dict[str, tuple[str, ...]]:
    """Every recipient (lower-cased address) and the services they receive first: the global
    list receives every service; a service's list receives that service first."""
    out: dict[str, list[str]] = {a.lower(): [] for a in m.digest.recipients}
    for s in m.services:
        for a in s.digest_recipients:
            out.setdefault(a.lower(), []).append(s.slug)
    return {a: tuple(slugs) for a, slugs in out.items()}


@dataclass(frozen=True)
class Outcome:
    week: str
    recipient: str
    result: str  # sent | retry | failed | unknown
    error: str | None = None


class DigestSender:
    """Builds and sends digests; ``clock`` is injectable (tests move time)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        m: Municipality,
        mailer: Mailer,
        *,
        mystery: MysterySource | None = None,
        link: str | None = None,
        clock: Callable[[], datetime] | None = None,
        on_result: Callable[[str], None] | None = None,
        instance: str | None = None,
    ) -> None:
        self.pool, self.m, self.mailer = pool, m, mailer
        self.mystery = mystery
        self.link = link
        self.clock = clock or (lambda: datetime.now(UTC))
        self.on_result = on_result or (lambda _result: None)
        self.instance = instance or instance_id()
        self._told: set[IsoWeek] = set()

    async def build(self, week: IsoWeek) -> Digest:
        return await build_digest(self.pool, self.m, week, now=self.clock(), mystery=self.mystery)

    async def weekly(self) -> list[Outcome]:
        """The scheduled job: record the due week's deliveries (once), then send what is due
        (retries included).

        It runs at the configured time and every minute after: a digest that fell due while
        no instance ran, or at a time the clock skipped, still goes out within
        :data:`CATCH_UP`; recording is idempotent, so the repeats cost one query."""
        now = self.clock()
        for r in await q.give_up_stale(self.pool, now - STALE_CLAIM):
            log.error(
                "digest %s to %s: claimed by %s at %s and never finished (the process died "
                "while sending?); it may have gone, so it is not sent again "
                "(decroche digest send --week %s --force)",
                r["week"],
                r["recipient"],
                r["claimed_by"],
                r["claimed_at"].isoformat(),
                r["week"],
            )
            self.on_result("unknown")
        d = self.m.digest
        week, due = due_week(now, d.send_weekday, d.send_time, self.m.tz)
        if now - due <= CATCH_UP and self._can_send(week):
            added = await q.enqueue(self.pool, str(week), recipients(self.m), now)
            if added:
                log.info("digest %s: %d deliveries recorded", week, added)
        if not self.mailer.configured:
            return []
        return await self.deliver()

    def _can_send(self, week: IsoWeek) -> bool:
        """Whether there is someone to send to and a server to send through (said once a
        week in the logs when not)."""
        missing = (
            "no recipients are configured ([digest] recipients)"
            if not recipients(self.m)
            else "DECROCHE_SMTP_URL is not set"
            if not self.mailer.configured
            else None
        )
        if missing and week not in self._told:
            self._told.add(week)
            log.warning("digest %s: %s; nothing is sent", week, missing)
        return missing is None

    async def deliver(self, week: IsoWeek | None = None, *, by_hand: bool = False) -> list[Outcome]:
        """Send every pending delivery due now (``by_hand``: due or not), of ``week`` or all.

        A week's digest is built before any of its deliveries is claimed: if the database
        fails while building, nothing is left half-claimed."""
        due_by = None if by_hand else self.clock()
        weeks = await q.due_weeks(self.pool, due_by)
        out: list[Outcome] = []
        for w in weeks:
            if week is not None and w != str(week):
                continue
            digest = await self.build(IsoWeek.parse(w))
            charts = Charts(digest)
            focus = recipients(self.m)
            tried: list[str] = []  # once per run: by hand, a refusal is not retried at once
            while (
                row := await q.claim(self.pool, w, due_by, self.instance, self.clock(), tried)
            ) is not None:
                tried.append(row["recipient"])
                out.append(await self._send(digest, charts, row, focus))
        return out

    async def _send(
        self,
        digest: Digest,
        charts: Charts,
        row: asyncpg.Record,
        focus: Mapping[str, Sequence[str]],
    ) -> Outcome:
        week, to, attempts = str(digest.week), row["recipient"], row["attempts"]
        mine = focus.get(to, ())
        handed = False
        try:
            # Drawing and inlining take a fifth of a second a message for fifty services:
            # off the event loop, which keeps answering webhooks meanwhile.
            message = await asyncio.to_thread(
                lambda: build_message(digest, to, mine, charts.for_recipient(mine), link=self.link)
            )
            handed = True
            await self.mailer.send(message)
        except MailUnavailable as exc:
            return await self._failed(week, to, attempts, str(exc), maybe_sent=exc.maybe_sent)
        except Exception as exc:  # a bug: counted and capped like a refusal, and logged
            log.exception("digest %s to %s: could not be sent", week, to)
            return await self._failed(week, to, attempts, repr(exc), maybe_sent=handed)
        except BaseException as exc:
            # A cancellation (shutdown): before the message went, the delivery is given back;
            # while it was going, it may have gone.
            await asyncio.shield(
                self._finish(
                    week,
                    to,
                    "unknown" if handed else "pending",
                    error=repr(exc),
                    next_attempt_at=self.clock() + backoff(attempts),
                )
            )
            raise
        await self._finish(week, to, "sent")
        log.info("digest %s sent to %s", week, to)
        self.on_result("sent")
        return Outcome(week, to, "sent")

    async def _failed(
        self, week: str, to: str, attempts: int, error: str, *, maybe_sent: bool
    ) -> Outcome:
        now = self.clock()
        if maybe_sent:
            result = "unknown"
            await self._finish(week, to, "unknown", error=error)
            log.error(
                "digest %s to %s: %s; it may have gone, so it is not sent again "
                "(decroche digest send --week %s --force)",
                week,
                to,
                error,
                week,
            )
        elif attempts >= MAX_ATTEMPTS:
            result = "failed"
            await self._finish(week, to, "failed", error=error)
            log.error("digest %s to %s: gave up after %d tries: %s", week, to, attempts, error)
        else:
            result = "retry"
            again = now + backoff(attempts)
            await self._finish(week, to, "pending", error=error, next_attempt_at=again)
            log.warning(
                "digest %s to %s: %s; try %d of %d at %s",
                week,
                to,
                error,
                attempts + 1,
                MAX_ATTEMPTS,
                again.isoformat(),
            )
        self.on_result(result)
        return Outcome(week, to, result, error)

    async def _finish(self, week: str, to: str, state: str, **kw: Any) -> None:
        """Record the claim's outcome; a claim taken from us meanwhile is said, not lost."""
        if not await q.finish(
            self.pool, week, to, state, instance=self.instance, at=self.clock(), **kw
        ):
            log.warning(
                "digest %s to %s: ended %s, but the delivery was reopened or given up "
                "meanwhile (its state is left as it is)",
                week,
                to,
                state,
            )

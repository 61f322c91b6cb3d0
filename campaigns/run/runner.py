"""Running campaigns: what falls due is done once, whichever instance leads and whenever.

``CampaignRunner.tick`` is the scheduler's job (``campaigns.run``, every
``DECROCHE_CAMPAIGN_TICK_S`` seconds on the leader). Each round reads the clock once and:

- mails each **manual** call's sheet from ``SHEET_LEAD`` before its slot; a sheet that could
  not go before the slot (service down, no SMTP) is recorded as not sent — the slot stays,
  since the evaluator may have called from the plan, the morning summary or the calendar;
- mails each evaluator, from ``SUMMARY_AT`` local time, the summary of the day's calls;
- places each **assisted** call at its slot through Twilio (at most
  ``DECROCHE_TWILIO_CALLS_PER_SECOND``), which calls the evaluator and then bridges to the
  target, and each **probe** (Twilio calls the closed service and records it;
  ``campaigns/run/voice.py``); a slot that could not be honoured — no round within ``GRACE``
  of it (the service was down), or Twilio refused — moves to a later slot of its stratum
  (``campaigns/plan/misfire.py``), or is marked missed with the reason.

Every act is *claimed* first: a row in ``run_claims``, committed before the act, keyed by the
act and the slot. Two instances racing, or one restarting, find the claim and do nothing —
at most once, never twice. An act that fails before it starts (the SMTP server refuses)
gives its claim back, so the next round tries again. Slots from before the campaign existed
(a campaign recorded after the fact) have no act.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg

from campaigns.plan.misfire import Busy, Slot, new_slot
from campaigns.queries import record_as
from campaigns.run import queries as q
from campaigns.run import voice
from campaigns.run.sheets import SheetCall, call_sheet, day_summary
from campaigns.spec import EvaluatorJson, ScenarioJson, parse_campaign
from service.db.errors import is_unavailable
from service.municipality.calendar import Calendar
from service.outside.mail import Mailer, MailUnavailable
from service.outside.twilio.rest import Pacer, TwilioRest, TwilioUnavailable
from service.scheduler import instance_id
from service.settings import Settings

log = logging.getLogger(__name__)

SHEET_LEAD = timedelta(minutes=30)  # a sheet goes this long before its slot
SUMMARY_AT = time(7, 30)  # local time of the morning summary
GRACE = timedelta(minutes=10)  # an assisted call is still placed this long after its slot


@dataclass
class Round:
    """What one round did."""

    sheets: int = 0
    summaries: int = 0
    not_sent: int = 0
    placed: int = 0
    failed: int = 0
    moved: int = 0
    missed: int = 0


@dataclass(frozen=True)
class Failure:
    """Why a call was not placed. ``kind``: ``transient`` (Twilio did nothing now: another
    slot may do), ``unknown`` (Twilio may have placed it: do nothing more), ``failed``."""

    problem: str
    kind: str


class CampaignRunner:
    """The acts of every active campaign; ``clock`` is injectable (tests accelerate time)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        mailer: Mailer,
        *,
        twilio: TwilioRest | None = None,
        clock: Callable[[], datetime] | None = None,
        instance: str | None = None,
        base: str | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.calendar = Calendar(settings.municipality)
        self.tz = settings.municipality.tz
        self.mailer = mailer
        self.twilio = twilio
        self.pacer = Pacer(settings.twilio_calls_per_second)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.instance = instance or instance_id()
        self.base = base or settings.public_url or f"http://{settings.host}:{settings.port}"
        # Twilio must reach the callbacks: without a public URL it would be told localhost.
        self.reachable = base is not None or settings.public_url is not None
        self._mail_errors: dict[str, str] = {}

    async def tick(self) -> Round:
        """One round: everything due at the clock's time."""
        now = self.clock()
        done = Round()
        local = now.astimezone(self.tz)
        tonight = datetime.combine(local.date() + timedelta(days=1), time(), self.tz)
        rows = await q.waiting(self.pool, now - q.LOOK_BACK, max(tonight, now + SHEET_LEAD))
        rows = [r for r in rows if r["scheduled_at"] > r["campaign_created_at"]]
        due = [r for r in rows if r["scheduled_at"] - SHEET_LEAD <= now]
        # Calls first (their minute matters), then mail; each act reads the clock again:
        # a round may last (the pacer, a slow SMTP server).
        await self._placements([r for r in due if r["mode"] in ("assisted", "probe")], done)
        await self._sheets([r for r in due if r["mode"] == "manual"], done)
        await self._summaries(rows, done)
        return done

    async def _claim_waiting(
        self, r: Mapping[str, Any], key: str, now: datetime, run_kind: str | None = None
    ) -> bool:
        """Claim ``key`` while holding the call, as an evaluation, a re-plan or a cancel
        would: False when it is no longer waiting (cancelled, re-planned, evaluated since
        the round read it) or already claimed. ``run_kind`` also opens its Twilio run."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await q.lock_call(conn, r["id"]):
                return False
            if not await q.claim(conn, key, self.instance, now):
                return False
            if run_kind is not None:
                await q.start_run(conn, r["id"], run_kind, now)
        return True

    # -- assisted calls and probes: placed through Twilio ------------------------------------

    async def _placements(self, rows: list[asyncpg.Record], done: Round) -> None:
        keys = {r["id"]: q.slot_key("call", r["id"], r["scheduled_at"]) for r in rows}
        taken = await q.claimed(self.pool, list(keys.values()))
        for r in rows:
            key, now = keys[r["id"]], self.clock()
            if key in taken or now < r["scheduled_at"]:
                continue
            if now >= r["scheduled_at"] + GRACE:
                if await self._claim_waiting(r, key, now):
                    await self._move_or_miss(r, key, done, "the service was not running then")
                continue
            if not await self._claim_waiting(r, key, now, run_kind=r["mode"]):
                continue
            failure = await self._place(r)
            now = self.clock()
            if failure is None:
                await q.finish(self.pool, key, "placed", now)
                done.placed += 1
            elif failure.kind == "transient":  # Twilio did nothing: the slot is lost, not the call
                await self._move_or_miss(r, key, done, failure.problem)
            elif failure.kind == "unknown":  # it may ring: never risk a second call
                await q.finish(self.pool, key, f"unknown: {failure.problem}", now)
                done.failed += 1
            else:  # a setting, a phone, a refusal: no other slot would do better
                await q.finish(self.pool, key, f"failed: {failure.problem}", now)
                done.failed += 1

    async def _place(self, r: Mapping[str, Any]) -> Failure | None:
        """Ask Twilio to call the evaluator (assisted) or the target (probe); what went
        wrong, or None. A crash between the claim and Twilio's answer leaves the run
        ``placing``: that call is lost, never placed twice."""
        evaluator = _evaluator(r)
        phone = evaluator.get("phone") if evaluator else None
        twilio, caller = self.twilio, self.settings.twilio_caller_id
        if twilio is None or not twilio.configured:
            problem = "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set"
        elif caller is None:
            problem = "DECROCHE_TWILIO_CALLER_ID is not set"
        elif not self.reachable:
            problem = "DECROCHE_PUBLIC_URL is not set: Twilio could not reach the callbacks"
        elif r["mode"] == "probe":  # Twilio calls the closed service itself, and records it
            return await self._dial(r, twilio, caller, r["number"], probe=True)
        elif not phone:
            problem = f"the evaluator {r['evaluator']} has no phone in the campaign"
        else:
            return await self._dial(r, twilio, caller, phone)
        await q.run_failed(self.pool, r["id"], problem, self.clock())
        return Failure(problem, "failed")

    async def _dial(
        self,
        r: Mapping[str, Any],
        twilio: TwilioRest,
        caller: str,
        phone: str,
        *,
        probe: bool = False,
    ) -> Failure | None:
        def url(event: str) -> str:
            return self.base + voice.callback_path(r["id"], event)

        await self.pacer.wait()
        try:
            sid = await twilio.create_call(
                to=phone,
                from_=caller,
                url=url("answer"),
                status_callback=url("probe" if probe else "evaluator"),
                timeout_s=voice.DIAL_TIMEOUT_S if probe else voice.EVALUATOR_TIMEOUT_S,
                record=probe,
                recording_callback=url("recording") if probe else None,
            )
        except TwilioUnavailable as exc:
            log.warning("campaigns: mystery call %d not placed: %s", r["id"], exc)
            if exc.maybe_done:
                detail = f"Twilio's answer was lost ({exc}): the call may ring; not placed again"
                await q.run_unknown(self.pool, r["id"], detail)
                return Failure(str(exc), "unknown")
            await q.run_failed(self.pool, r["id"], str(exc), self.clock())
            return Failure(str(exc), "failed" if exc.permanent else "transient")
        await q.run_placed(self.pool, r["id"], sid)
        return None

    async def _move_or_miss(self, r: Mapping[str, Any], key: str, done: Round, why: str) -> None:
        """The slot of ``r`` could not be honoured: a later slot of its stratum, or missed."""
        spec = parse_campaign(r["campaign_spec"], f"campaign {r['campaign_id']}", self.calendar.m)
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            if not await q.lock_call(conn, r["id"]):
                await q.finish(conn, key, "nothing to do: the call is no longer planned", now)
                return
            others = [
                record_as(Busy, o) for o in await q.others_of(conn, r["campaign_id"], r["id"])
            ]
            slot = record_as(Slot, r)
            found = new_slot(spec, self.calendar, slot, others, now + GRACE)
            if found is None:
                reason = f"{why}; no later slot of the same stratum before {spec.ends_on}"
                await q.mark_missed(conn, r["id"], reason, now)
                await q.finish(conn, key, f"missed: {reason}", now)
                done.missed += 1
                return
            at, evaluator = found
            reason = f"{why}; moved from {r['scheduled_at'].astimezone(self.tz):%Y-%m-%d %H:%M}"
            await q.move(conn, r["id"], at, evaluator, reason, now)
            await q.finish(conn, key, f"moved to {at.astimezone(self.tz).isoformat()}", now)
            done.moved += 1
        log.warning("campaigns: mystery call %d %s", r["id"], reason)

    # -- manual mode: sheets and summaries --------------------------------------------------

    async def _sheets(self, rows: list[asyncpg.Record], done: Round) -> None:
        keys = {r["id"]: q.slot_key("sheet", r["id"], r["scheduled_at"]) for r in rows}
        taken = await q.claimed(self.pool, list(keys.values()))
        for r in rows:
            key, now = keys[r["id"]], self.clock()
            if key in taken:
                continue
            if now >= r["scheduled_at"]:
                why = self._mail_errors.pop(key, "the service was not running")
                if await self._claim_waiting(r, key, now):
                    await q.finish(self.pool, key, f"not sent: the slot had passed ({why})", now)
                    done.not_sent += 1
                    log.warning("campaigns: sheet of mystery call %d not sent (%s)", r["id"], why)
                continue
            if not self._mail_ready(key) or not await self._claim_waiting(r, key, now):
                continue
            if await self._send(key, call_sheet(self._sheet_call(r))):
                done.sheets += 1

    async def _summaries(self, rows: list[asyncpg.Record], done: Round) -> None:
        """Each evaluator's calls of the day still to come: the ones they place, and the
        assisted ones Décroché will call them for (not probes: nobody has to be there)."""
        now = self.clock()
        local = now.astimezone(self.tz)
        if local.time() < SUMMARY_AT:
            return
        today = local.date()
        mine: dict[str, list[asyncpg.Record]] = {}
        for r in rows:
            if (
                r["mode"] != "probe"
                and r["scheduled_at"] > now
                and r["scheduled_at"].astimezone(self.tz).date() == today
            ):
                mine.setdefault(r["evaluator"], []).append(r)
        keys = {email: summary_key(today, email) for email in mine}
        taken = await q.claimed(self.pool, list(keys.values()))
        for email, calls in mine.items():
            key = keys[email]
            if key in taken or not self._mail_ready(key):
                continue
            if not await q.claim(self.pool, key, self.instance, self.clock()):
                continue
            if await self._send(key, day_summary(today, [self._sheet_call(r) for r in calls])):
                done.summaries += 1

    def _mail_ready(self, key: str) -> bool:
        if self.mailer.configured:
            return True
        self._mail_errors[key] = "DECROCHE_SMTP_URL is not set"
        return False

    async def _send(self, key: str, message: EmailMessage) -> bool:
        """Send under the claim ``key``: a refused message gives the claim back (the next
        round tries again); one perhaps delivered keeps it (never twice)."""
        try:
            await self.mailer.send(message)
        except MailUnavailable as exc:
            log.warning("campaigns: %s not sent: %s", key, exc)
            if exc.maybe_sent:
                await q.finish(self.pool, key, f"unknown: {exc}", self.clock())
                return False
            self._mail_errors[key] = str(exc)
            try:
                await q.release(self.pool, key)
            except Exception as db_exc:  # the claim stays: at most once wins
                if not is_unavailable(db_exc):
                    raise
            return False
        self._mail_errors.pop(key, None)
        await q.finish(self.pool, key, "sent", self.clock())
        return True

    def _sheet_call(self, r: Mapping[str, Any]) -> SheetCall:
        spec = r["campaign_spec"]
        scenario: ScenarioJson | None = next(
            (s for s in spec.get("scenarios", []) if s["id"] == r["scenario"]), None
        )
        evaluator = _evaluator(r)
        service = self.settings.municipality.service(r["service"])
        return SheetCall(
            id=r["id"],
            scheduled_at=r["scheduled_at"].astimezone(self.tz),
            campaign=r["campaign_name"],
            service_name=service.name if service else r["service"],
            number=r["number"],
            mode=r["mode"],
            question=scenario.get("question") if scenario else None,
            expected=(scenario.get("expected") or None) if scenario else None,
            evaluator_name=evaluator.get("name", r["evaluator"]) if evaluator else r["evaluator"],
            evaluator_email=r["evaluator"],
            link=f"{self.base}/appels-mysteres/{r['id']}",
        )


def _evaluator(r: Mapping[str, Any]) -> EvaluatorJson | None:
    """The call's evaluator as the campaign's structure describes them (None: not there)."""
    found: EvaluatorJson | None = next(
        (e for e in r["campaign_spec"].get("evaluators", []) if e["email"] == r["evaluator"]),
        None,
    )
    return found


def summary_key(day: date, email: str) -> str:
    return f"summary:{day.isoformat()}:{email}"

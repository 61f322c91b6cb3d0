"""Send simulated Twilio callbacks to a running service, signed as Twilio signs them.

``backfill`` replays whole past days as fast as the service takes them (deterministic call
SIDs: replaying the same days again changes nothing); ``run_live`` starts new calls now, at a
given rate, and sends each callback at its own instant, with the small reorderings and
duplicate deliveries real webhooks have.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time as clock
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
from twilio.request_validator import RequestValidator

from service.demo.traffic import Params, Profile, SimCall, TrafficGenerator
from service.municipality.model import Municipality

log = logging.getLogger(__name__)


@dataclass
class SendStats:
    sent: int = 0
    failed: int = 0
    calls: int = 0
    status: dict[int, int] = field(default_factory=dict)


class Sender:
    """Posts signed callbacks, retrying like Twilio on 5xx and connection errors."""

    def __init__(self, session: aiohttp.ClientSession, url: str, auth_token: str) -> None:
        self.session = session
        self.url = url
        self.validator = RequestValidator(auth_token)
        self.stats = SendStats()

    async def send(self, params: Params, attempts: int = 4) -> int:
        signature = self.validator.compute_signature(self.url, params)
        headers = {"X-Twilio-Signature": signature}
        delay = 0.5
        status = 0
        for attempt in range(attempts):
            try:
                async with self.session.post(self.url, data=params, headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.debug("send failed (%s), attempt %d", exc, attempt + 1)
                status = 0
            if status and status < 500:
                break
            await asyncio.sleep(delay)
            delay *= 2
        self.stats.status[status] = self.stats.status.get(status, 0) + 1
        if 200 <= status < 300:
            self.stats.sent += 1
        else:
            self.stats.failed += 1
        return status


async def backfill(
    sender: Sender,
    municipality: Municipality,
    days: Iterable[date],
    *,
    seed: int,
    until: datetime,
    concurrency: int = 16,
) -> SendStats:
    """Send every callback of the given past days (calls finished before ``until``)."""
    queue: asyncio.Queue[Params] = asyncio.Queue()
    for day in days:
        gen = TrafficGenerator(municipality, seed=seed * 100_000 + day.toordinal())
        calls = gen.day(day)
        for call in calls + gen.call_backs(calls):
            if call.ended_at < until:
                sender.stats.calls += 1
                for _, params in call.callbacks:
                    queue.put_nowait(params)

    async def worker() -> None:
        while not queue.empty():
            await sender.send(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sender.stats


async def _play(
    sender: Sender, call: SimCall, rng: random.Random, speed: float, after: float = 0.0
) -> None:
    """Send one call's callbacks at their instants (starting ``after`` seconds from now),
    with jitter and some duplicates."""
    t0 = clock.monotonic() + after
    start = call.started_at
    plan: list[tuple[float, Params]] = []
    for at, params in call.callbacks:
        offset = (at - start).total_seconds() / speed + rng.uniform(0, 1.5)
        plan.append((offset, params))
        if rng.random() < 0.03:
            plan.append((offset + rng.uniform(0.5, 3), params))  # a retried delivery
    plan.sort(key=lambda p: p[0])
    for offset, params in plan:
        await asyncio.sleep(max(0.0, t0 + offset - clock.monotonic()))
        await sender.send(params)


async def run_live(
    sender: Sender,
    municipality: Municipality,
    *,
    rate: float,
    duration: float | None,
    seed: int | None = None,
    speed: float = 1.0,
    profile: Profile | None = None,
) -> SendStats:
    """Start ``rate`` calls per second (Poisson arrivals) until ``duration`` seconds pass."""
    rng = random.Random(seed)
    gen = TrafficGenerator(municipality, seed=rng.randrange(2**31), profile=profile)
    deadline = None if duration is None else clock.monotonic() + duration
    tasks: set[asyncio.Task[None]] = set()
    # Call-backs come minutes after the lost call: still pending at the end, they are
    # dropped rather than waited for.
    backs: set[asyncio.Task[None]] = set()

    def start(job: Coroutine[Any, Any, None], into: set[asyncio.Task[None]]) -> None:
        task = asyncio.create_task(job)
        into.add(task)
        task.add_done_callback(into.discard)

    try:
        while deadline is None or clock.monotonic() < deadline:
            call = gen.live(datetime.now(UTC))
            sender.stats.calls += 1
            start(_play(sender, call, rng, speed), tasks)
            back = gen.call_back(call) if gen.is_lost(call) else None
            if back is not None:
                later = (back.started_at - call.started_at).total_seconds() / speed
                start(_play(sender, back, rng, speed, after=later), backs)
            pause = rng.expovariate(rate)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - clock.monotonic()))
            await asyncio.sleep(pause)
        for task in backs:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        for task in tasks | backs:
            task.cancel()
    return sender.stats


def past_days(today: date, count: int) -> list[date]:
    return [today - timedelta(days=i) for i in range(count, -1, -1)]

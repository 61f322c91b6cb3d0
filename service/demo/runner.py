"""``decroche serve --demo``: a simulated switchboard feeding the service it runs in.

It goes through the real webhook path (HTTP, signature, ingestion), so what a newcomer sees
is what production does: first the past week is replayed, then live calls keep coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from service.demo.simulate import Sender, backfill, past_days, run_live
from service.keys import SETTINGS

log = logging.getLogger(__name__)

DEMO_SEED = 2026


def demo_ctx(
    url: str, *, rate: float, backfill_days: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` running the simulator against ``url`` once the server listens."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        token = settings.twilio_auth_token
        assert token is not None, "serve --demo sets a Twilio token"

        async def feed() -> None:
            await asyncio.sleep(0.5)  # let the server start listening
            async with aiohttp.ClientSession() as session:
                sender = Sender(session, url, token)
                now = datetime.now(UTC)
                today = now.astimezone(settings.municipality.tz).date()
                stats = await backfill(
                    sender,
                    settings.municipality,
                    past_days(today, backfill_days),
                    seed=DEMO_SEED,
                    until=now,
                )
                log.info(
                    "demo: replayed %d calls of the last %d days (%d callbacks)",
                    stats.calls,
                    backfill_days,
                    stats.sent,
                )
                await run_live(sender, settings.municipality, rate=rate, duration=None)

        task = asyncio.create_task(feed(), name="demo-switchboard")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx

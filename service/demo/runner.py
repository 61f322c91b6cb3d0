"""``decroche serve --demo``: a simulated switchboard feeding the service it runs in.

It goes through the real webhook path (HTTP, signature, ingestion), so what a newcomer sees
is what production does: first the past week is replayed, then live calls keep coming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from service.accounts import queries as accounts
from service.accounts.model import Role
from service.accounts.passwords import hash_password
from service.demo.campaign import run_demo_campaign
from service.demo.simulate import Sender, backfill, past_days, run_live
from service.keys import DB_POOL, SETTINGS

log = logging.getLogger(__name__)

DEMO_SEED = 2026
DEMO_EMAIL = "demo@decroche.test"


async def demo_account(app: web.Application) -> tuple[str, str]:
    """The demo's admin account, with a fresh random password at each start (printed), and
    an API token of it for the demo's own requests."""
    pool = app[DB_POOL]
    user = await accounts.get_user(pool, DEMO_EMAIL)
    uid = user["id"] if user else await accounts.add_user(pool, DEMO_EMAIL, Role.ADMIN)
    password = secrets.token_urlsafe(12)
    await accounts.set_password(pool, uid, await asyncio.to_thread(hash_password, password))
    _, token = await accounts.create_token(pool, "api", uid, "démonstration")
    return password, token


def demo_ctx(
    url: str, *, rate: float, backfill_days: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` running the simulator against ``url`` once the server listens."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        password, api_token = await demo_account(app)
        base = url.removesuffix("/webhooks/twilio")
        print(
            f"  tableau de bord : {base}/ — connexion : {DEMO_EMAIL} / {password}",
            flush=True,
        )
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
                try:
                    await run_demo_campaign(
                        session, base, api_token, settings.municipality, DEMO_SEED
                    )
                except (aiohttp.ClientError, KeyError, ValueError) as exc:
                    log.warning("demo: no demo campaign (%s)", exc)
                await run_live(sender, settings.municipality, rate=rate, duration=None)

        task = asyncio.create_task(feed(), name="demo-switchboard")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx

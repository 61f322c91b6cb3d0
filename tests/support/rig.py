"""A running service with a fake Twilio (a real local server) and a campaign runner on an
injected clock: the ``rig`` fixture of the assisted-call and probe tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from campaigns.run.runner import CampaignRunner
from service.app import create_app
from service.keys import DB_POOL, MAILER, TWILIO
from service.settings import Settings
from tests.campaigns.run.test_campaign_runner import WEEK, Clock
from tests.campaigns.web.test_campaigns_api import body
from tests.conftest import ADMIN_HEADERS, AUTH_TOKEN, Database, make_settings
from tests.support.fake_twilio import Behaviour, FakeTwilio

Client = TestClient[web.Request, web.Application]
CALLER_ID = "+33100009999"
CLAIRE, PAUL = "+33600000001", "+33600000002"
ACCUEIL, ETAT_CIVIL = "+33100000001", "+33100000002"  # the services' first lines
EVALUATORS = [
    {"name": "Claire Martin", "email": "claire.martin@ville.test", "phone": CLAIRE},
    {"name": "Paul Durand", "email": "paul.durand@ville.test", "phone": PAUL},
]


class Rig:
    """The service, the fake Twilio, and a runner on an injected clock."""

    def __init__(self, client: Client, fake: FakeTwilio, settings: Settings) -> None:
        self.client, self.fake, self.settings = client, fake, settings
        self.clock = Clock(datetime(2027, 3, 22, 6, 0, tzinfo=UTC))
        fake.clock = self.clock
        # The service's own Twilio client and mailer (app contexts), so the rig's runner and
        # the service's handlers talk to the fake Twilio through the same client.
        self.rest = client.app[TWILIO]
        self.runner = CampaignRunner(
            client.app[DB_POOL],
            settings,
            client.app[MAILER],
            twilio=self.rest,
            clock=self.clock,
            base=str(client.make_url("")).rstrip("/"),
        )

    @property
    def pool(self) -> asyncpg.Pool:
        return self.client.app[DB_POOL]

    async def campaign(self, **overrides: Any) -> list[asyncpg.Record]:
        data = body(**(WEEK | {"mode": "assisted", "evaluators": EVALUATORS} | overrides))
        resp = await self.client.post("/api/v1/campaigns", json=data)
        assert resp.status == 201, await resp.text()
        # created a week before it starts, whatever today is (its slots all come after)
        await self.pool.execute(
            "UPDATE campaigns SET created_at = $2::date - 7 WHERE id = $1",
            (await resp.json())["id"],
            date.fromisoformat(data["starts_on"]),
        )
        return list(await self.pool.fetch("SELECT * FROM mystery_calls ORDER BY scheduled_at"))

    async def at(self, t: datetime) -> None:
        self.clock.now = t
        await self.runner.tick()
        await self.fake.idle()

    async def run(self, call_id: int) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT * FROM mystery_runs WHERE mystery_call_id = $1", call_id
        )
        assert row is not None
        return row


@pytest.fixture
async def rig(
    db: asyncpg.Connection,
    database: Database,
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> AsyncIterator[Rig]:
    fake = FakeTwilio("AC" + "0" * 32, AUTH_TOKEN)  # the account of make_settings
    fake.behaviours = {
        CLAIRE: Behaviour("answer", ring_s=3),
        PAUL: Behaviour("no-answer"),
        ACCUEIL: Behaviour("answer", ring_s=7),
        ETAT_CIVIL: Behaviour("busy"),
    }
    server = TestServer(fake.app())
    await server.start_server()
    settings = make_settings(
        database.dsn,
        tmp_path,
        twilio_api_base=str(server.make_url("")).rstrip("/"),
        twilio_caller_id=CALLER_ID,
        twilio_calls_per_second=50.0,
        campaign_tick_s=3600.0,  # the service's own round stays out of the way
    )
    client = await aiohttp_client(create_app(settings), headers=ADMIN_HEADERS)
    made = Rig(client, fake, settings)
    yield made
    await made.fake.idle()
    await server.close()

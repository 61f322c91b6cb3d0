"""Assisted mystery calls end to end against a fake Twilio that is a real local server:
placed once at their slot, the evaluator called then bridged, the ring time measured from
the target leg's events, the grid pre-filled, the recording linked and served; failures
recorded as each call's outcome; slots the service could not honour moved in their stratum."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from campaigns.recordings import erase_expired
from campaigns.runner import GRACE, CampaignRunner
from service.accounts.model import Role
from service.app import create_app
from service.keys import DB_POOL
from service.mail import Mailer
from service.settings import Settings
from service.twilio_rest import Pacer, TwilioRest
from tests.conftest import ADMIN_HEADERS, AUTH_TOKEN, Database, make_settings
from tests.support.browser import needs_chromium
from tests.support.fake_twilio import Behaviour, FakeTwilio
from tests.test_campaign_pages import account, open_as
from tests.test_campaign_runner import WEEK, Clock
from tests.test_campaigns_api import body

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
        self.rest = TwilioRest(settings)
        self.runner = CampaignRunner(
            client.app[DB_POOL],
            settings,
            Mailer(None, "decroche@ville.test"),
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


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig(
    db: asyncpg.Connection,
    database: Database,
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Any:
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
    await made.rest.__aexit__(None, None, None)
    await server.close()


async def test_each_call_is_placed_once_measured_and_its_outcome_recorded(rig: Rig) -> None:
    calls = await rig.campaign()
    for c in calls:
        await rig.at(c["scheduled_at"] - timedelta(minutes=1))  # not yet
        await rig.at(c["scheduled_at"] + timedelta(seconds=30))
        await rig.at(c["scheduled_at"] + timedelta(minutes=2))  # nothing twice
    assert len(rig.fake.calls) == len(calls)
    base = str(rig.client.make_url("")).rstrip("/")
    for c, placed in zip(calls, rig.fake.calls, strict=True):
        phone = CLAIRE if c["evaluator"].startswith("claire") else PAUL
        assert (placed["To"], placed["From"]) == (phone, CALLER_ID)
        assert placed["Url"] == f"{base}/webhooks/twilio/mystery/{c['id']}/answer"
    assert all(status in (200, 204) for _, _, status in rig.fake.callbacks)
    seen = set()
    for c in calls:
        run = await rig.run(c["id"])
        paul = c["evaluator"].startswith("paul")
        expected = (
            "evaluator-no-answer"
            if paul
            else "answered"
            if c["number"] == ACCUEIL
            else "target-busy"
        )
        seen.add(expected)
        assert (run["state"], run["outcome"]) == ("ended", expected), dict(run)
        if expected == "answered":
            assert run["ring_seconds"] == 7
            assert run["prefill"] == {"delai": 7}
            assert run["recording_sid"] in rig.fake.recordings
            assert run["recording_seconds"] == 90
        else:
            assert run["recording_sid"] is None
            assert run["prefill"] == {}
    assert seen == {"answered", "evaluator-no-answer", "target-busy"}
    claims = await rig.pool.fetch("SELECT outcome FROM run_claims WHERE key LIKE 'call:%'")
    assert [c["outcome"] for c in claims] == ["placed"] * len(calls)


async def test_the_scoring_page_gets_the_measure_and_the_recording(rig: Rig) -> None:
    calls = await rig.campaign()
    answered = next(c for c in calls if c["number"] == ACCUEIL and c["evaluator"][0] == "c")
    await rig.at(answered["scheduled_at"])
    page = await (await rig.client.get(f"/api/v1/mystery-calls/{answered['id']}")).json()
    run = page["run"]
    assert (run["outcome"], run["ring_seconds"], run["prefill"]) == ("answered", 7, {"delai": 7})
    assert run["outcome_label"] == "le service a décroché"
    resp = await rig.client.get(run["recording"]["url"])
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "audio/mpeg"
    assert (await resp.read()).startswith(b"ID3RE")
    # another evaluator may not listen; an anonymous visitor is sent to log in
    other = next(c for c in calls if c["id"] != answered["id"])
    resp = await rig.client.get(f"/api/v1/mystery-calls/{other['id']}/recording")
    assert resp.status == 404  # no recording for a call not placed yet


async def test_events_twice_and_out_of_order_measure_the_same(rig: Rig) -> None:
    rig.fake.out_of_order = True
    rig.fake.twice = True
    calls = await rig.campaign()
    answered = next(c for c in calls if c["number"] == ACCUEIL and c["evaluator"][0] == "c")
    await rig.at(answered["scheduled_at"])
    run = await rig.run(answered["id"])
    assert (run["outcome"], run["ring_seconds"]) == ("answered", 7)


async def test_forged_or_malformed_callbacks_change_nothing(rig: Rig) -> None:
    calls = await rig.campaign()
    call = calls[0]
    await rig.at(call["scheduled_at"])
    before = dict(await rig.run(call["id"]))
    url = f"/webhooks/twilio/mystery/{call['id']}/dialed"
    params = {"CallSid": before["call_sid"], "DialCallStatus": "busy"}
    resp = await rig.client.post(url, data=params, headers={"X-Twilio-Signature": "forged"})
    assert resp.status == 403
    resp = await rig.client.post(
        url,
        data=b"\xff\xfe not a form",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 400
    kept = await rig.pool.fetchrow("SELECT source, reason FROM quarantine")
    assert (kept["source"], kept["reason"]) == ("twilio-mystery", "body is not form-encoded UTF-8")
    assert dict(await rig.run(call["id"])) == before
    resp = await rig.client.post(f"/webhooks/twilio/mystery/{call['id']}/nonsense")
    assert resp.status == 404


async def test_a_slot_twilio_or_the_service_missed_moves_inside_its_stratum(rig: Rig) -> None:
    calls = await rig.campaign(ends_on="2027-04-02")  # two weeks: room to move
    tz = rig.settings.municipality.tz

    async def check_moved(c: asyncpg.Record, why: str) -> datetime:
        row = await rig.pool.fetchrow("SELECT * FROM mystery_calls WHERE id = $1", c["id"])
        assert row["status"] == "planned", dict(row)
        assert row["moved_from"] == c["scheduled_at"]
        assert row["scheduled_at"] > rig.clock.now
        assert (row["half_day"], row["moment"]) == (c["half_day"], c["moment"])
        assert row["moved_reason"].startswith(why)
        assert row["scheduled_at"].astimezone(tz).date().isoformat() <= "2027-04-02"
        moved: datetime = row["scheduled_at"]
        return moved

    first, second = calls[0], calls[1]
    rig.fake.fail_with = 503
    await rig.at(first["scheduled_at"])  # Twilio refuses: a later slot of the same moment
    rig.fake.fail_with = None
    moved = await check_moved(first, "Twilio answered 503")
    assert rig.fake.calls == []
    listed = await (await rig.client.get(f"/api/v1/campaigns/{first['campaign_id']}/calls")).json()
    shown = next(c for c in listed["calls"] if c["id"] == first["id"])
    assert shown["moved_from"] == first["scheduled_at"].astimezone(tz).isoformat()
    await rig.at(moved)  # placed at its new slot, once
    await rig.at(moved + timedelta(minutes=1))
    assert [c["Url"].split("/")[-2] for c in rig.fake.calls] == [str(first["id"])]
    # the service was down at the second slot and for its whole grace
    await rig.at(second["scheduled_at"] + GRACE + timedelta(minutes=1))
    await check_moved(second, "the service was not running then")
    assert len(rig.fake.calls) == 1


async def test_a_missed_slot_with_no_room_left_in_its_stratum_is_missed(rig: Rig) -> None:
    calls = await rig.campaign()  # one week, six calls to the reception: every day has one
    call = next(c for c in calls if c["number"] == ACCUEIL)
    await rig.at(call["scheduled_at"] + GRACE + timedelta(minutes=1))
    row = await rig.pool.fetchrow(
        "SELECT status, status_reason, scheduled_at FROM mystery_calls WHERE id = $1", call["id"]
    )
    assert (row["status"], row["scheduled_at"]) == ("missed", call["scheduled_at"])
    assert "no later slot of the same stratum before 2027-03-26" in row["status_reason"]
    claim = await rig.pool.fetchval("SELECT outcome FROM run_claims WHERE key LIKE $1",
                                    f"call:{call['id']}:%")  # fmt: skip
    assert claim.startswith("missed: the service was not running then")


async def test_two_instances_racing_place_each_call_once(rig: Rig) -> None:
    calls = await rig.campaign()
    other = CampaignRunner(
        rig.pool,
        rig.settings,
        Mailer(None, "decroche@ville.test"),
        twilio=rig.rest,
        clock=rig.clock,
        base=rig.runner.base,
    )
    for c in calls:
        rig.clock.now = c["scheduled_at"] + timedelta(seconds=5)
        await asyncio.gather(rig.runner.tick(), other.tick(), rig.runner.tick())
        await rig.fake.idle()
    placed = Counter(c["Url"].split("/")[-2] for c in rig.fake.calls)
    assert placed == Counter(str(c["id"]) for c in calls)


async def test_recordings_expire_with_the_privacy_policy(rig: Rig) -> None:
    calls = await rig.campaign()
    answered = next(c for c in calls if c["number"] == ACCUEIL and c["evaluator"][0] == "c")
    await rig.at(answered["scheduled_at"])
    sid = (await rig.run(answered["id"]))["recording_sid"]
    later = answered["scheduled_at"] + timedelta(days=89)
    assert await erase_expired(rig.pool, rig.fake.account_sid, 90, rig.rest, later) == (0, [])
    rig.fake.fail_with = 503
    erased, errors = await erase_expired(
        rig.pool, rig.fake.account_sid, 90, rig.rest, later + timedelta(days=2)
    )
    assert (erased, len(errors)) == (0, 1)  # Twilio down: kept, retried next run
    assert sid in rig.fake.recordings
    rig.fake.fail_with = None
    erased, errors = await erase_expired(
        rig.pool, rig.fake.account_sid, 90, rig.rest, later + timedelta(days=2)
    )
    assert (erased, errors) == (1, [])
    assert sid not in rig.fake.recordings
    resp = await rig.client.get(f"/api/v1/mystery-calls/{answered['id']}/recording")
    assert resp.status == 410
    page = await (await rig.client.get(f"/api/v1/mystery-calls/{answered['id']}")).json()
    assert page["run"]["recording"] is None
    assert page["run"]["recording_erased_at"] is not None
    assert page["run"]["ring_seconds"] == 7  # the measure stays


async def test_the_pacer_never_lets_two_calls_closer_than_its_rate() -> None:
    pacer = Pacer(40.0)
    starts = []
    for _ in range(6):
        await pacer.wait()
        starts.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1 / 40 - 0.002  # (the clock's resolution)


@needs_chromium
async def test_the_scoring_page_shows_the_outcome_the_measure_and_the_player(
    rig: Rig, page: Any
) -> None:
    calls = await rig.campaign()
    answered = next(c for c in calls if c["number"] == ACCUEIL and c["evaluator"][0] == "c")
    busy = next(c for c in calls if c["number"] == ETAT_CIVIL and c["evaluator"][0] == "c")
    await rig.at(answered["scheduled_at"])
    await rig.at(busy["scheduled_at"])
    await account(rig.client, EVALUATORS[0]["email"], Role.VIEWER)
    await open_as(
        page, rig.client, "claire.martin@ville.test", f"/appels-mysteres/{answered['id']}"
    )
    assert await page.text_content('dd[data-field="outcome"]') == "le service a décroché"
    assert await page.text_content('dd[data-field="ring"]') == "7 s (mesurée)"
    delai = page.locator('.item[data-item="delai"] input[type="number"]')
    assert await delai.input_value() == "7"
    src = await page.get_attribute('dd[data-field="recording"] audio', "src")
    assert src == f"/api/v1/mystery-calls/{answered['id']}/recording"
    await page.goto(f"http://{rig.client.host}:{rig.client.port}/appels-mysteres/{busy['id']}")
    await page.wait_for_selector("body[data-loaded=true]")
    assert await page.text_content('dd[data-field="outcome"]') == (
        "le numéro du service était occupé"
    )
    assert await page.locator('dd[data-field="recording"]').count() == 0

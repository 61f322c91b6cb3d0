"""Assisted mystery calls end to end against a fake Twilio that is a real local server:
placed once at their slot, the evaluator called then bridged, the ring time measured from
the target leg's events, the grid pre-filled, the recording linked and served; failures
recorded as each call's outcome; slots the service could not honour moved in their stratum."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from twilio.request_validator import RequestValidator

from campaigns.run.recordings import erase_expired
from campaigns.run.runner import GRACE, CampaignRunner
from service.accounts import queries as accounts
from service.accounts.model import Role
from service.db.pool import create_pool
from service.keys import SCHEDULER
from service.outside.mail import Mailer
from service.outside.twilio.rest import Pacer, TwilioRest
from service.scheduler import Scheduler, every
from tests.campaigns.web.test_campaign_pages import account, open_as
from tests.conftest import Database
from tests.support.browser import needs_chromium
from tests.support.fake_twilio import Behaviour
from tests.support.rig import ACCUEIL, CALLER_ID, CLAIRE, ETAT_CIVIL, EVALUATORS, PAUL, Rig
from tests.support.tcp_proxy import DatabaseProxy


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
    rig.fake.delay_s = 0.05  # and slowly: the runner's round is long over when they come
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
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    resp = await rig.client.post(url, data=b"\xff\xfe not a form", headers=form)
    assert resp.status == 403  # issue 24: the signature is checked first, even here
    resp = await rig.client.post(
        url, data=b"\xff\xfe not a form", headers={**form, "X-Twilio-Signature": "forged"}
    )
    assert resp.status == 400  # cannot be verified: refused, and (issue 24) not kept
    assert await rig.pool.fetchval("SELECT count(*) FROM quarantine") == 0
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


async def test_two_instances_with_their_schedulers_and_a_leader_cut_off_place_each_once(
    rig: Rig, database: Database
) -> None:
    calls = await rig.campaign()
    await rig.client.app[SCHEDULER].stop()  # the rig's own service steps aside for the two
    proxy = DatabaseProxy(database.dsn)
    await proxy.start()
    pool_a = await create_pool(proxy.dsn, min_size=1, max_size=4, command_timeout=2)
    pool_b = await create_pool(database.dsn, min_size=1, max_size=4)
    tz = rig.settings.municipality.tz
    instances: list[Scheduler] = []
    for pool in (pool_a, pool_b):
        runner = CampaignRunner(
            pool,
            rig.settings,
            Mailer(None, "decroche@ville.test"),
            twilio=rig.rest,
            clock=rig.clock,
            base=rig.runner.base,
        )
        scheduler = Scheduler(pool, tz, elect_every_s=0.05)
        scheduler.add("campaigns.run", runner.tick, every(0.05, tz))
        instances.append(scheduler)

    async def leads(s: Scheduler) -> bool:
        for _ in range(500):
            if s.is_leader:
                return True
            await asyncio.sleep(0.02)
        return False

    async def rounds_after(t: datetime) -> None:
        rig.clock.now = t
        before = sum(s.runs.get("campaigns.run", 0) for s in instances)
        for _ in range(500):
            if sum(s.runs.get("campaigns.run", 0) for s in instances) >= before + 2:
                break
            await asyncio.sleep(0.02)
        await rig.fake.idle()

    try:
        a, b = instances
        await a.start()
        assert await leads(a)
        await b.start()
        half = len(calls) // 2
        for c in calls[:half]:
            await rounds_after(c["scheduled_at"] + timedelta(seconds=20))
        assert not b.is_leader
        await proxy.cut()  # the leader loses its database mid-campaign
        assert await leads(b)
        for c in calls[half:]:
            await rounds_after(c["scheduled_at"] + timedelta(seconds=20))
    finally:
        for s in instances:
            await s.stop()
        pool_a.terminate()
        await pool_b.close()
        await proxy.cut()
    placed = Counter(c["Url"].split("/")[-2] for c in rig.fake.calls)
    assert placed == Counter(str(c["id"]) for c in calls)
    claimed_by = {
        r["claimed_by"] for r in await rig.pool.fetch("SELECT claimed_by FROM run_claims")
    }
    assert len(claimed_by) == 2  # each instance placed some


async def test_the_recording_is_for_its_evaluator_and_the_quality_team_only(rig: Rig) -> None:
    calls = await rig.campaign()
    answered = next(c for c in calls if c["number"] == ACCUEIL and c["evaluator"][0] == "c")
    await rig.at(answered["scheduled_at"])
    path = f"/api/v1/mystery-calls/{answered['id']}/recording"
    pool = rig.pool
    for email, role, status in (
        ("claire.martin@ville.test", Role.VIEWER, 200),  # its evaluator
        ("paul.durand@ville.test", Role.VIEWER, 403),  # another evaluator
        ("qualite@ville.test", Role.QUALITY, 200),
    ):
        uid = await accounts.add_user(pool, email, role)
        _, token = await accounts.create_token(pool, "api", uid, "t")
        resp = await rig.client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert resp.status == status, (email, await resp.text())
    async with aiohttp.ClientSession() as anonymous:
        resp = await anonymous.get(rig.client.make_url(path))
        assert resp.status == 401


async def test_a_refusal_fails_the_call_and_a_lost_answer_never_calls_twice(rig: Rig) -> None:
    calls = await rig.campaign()
    refused, lost = calls[0], calls[1]
    rig.fake.fail_with = 400  # e.g. an unverified caller ID: no other slot would do better
    await rig.at(refused["scheduled_at"])
    rig.fake.fail_with = None
    row = await rig.pool.fetchrow("SELECT * FROM mystery_calls WHERE id = $1", refused["id"])
    assert (row["scheduled_at"], row["moved_from"]) == (refused["scheduled_at"], None)
    run = await rig.run(refused["id"])
    assert (run["state"], run["outcome"]) == ("ended", "failed")
    assert run["detail"].startswith("Twilio answered 400")
    # Twilio creates the call but its answer is lost (a timeout): the call happens, once
    rig.runner.twilio = TwilioRest(rig.settings, timeout_s=0.3)
    rig.fake.respond_after_s = 1.0
    try:
        await rig.at(lost["scheduled_at"])
        rig.fake.respond_after_s = 0.0
        await rig.at(lost["scheduled_at"] + timedelta(minutes=1))
        await rig.at(lost["scheduled_at"] + GRACE + timedelta(minutes=1))
    finally:
        await rig.runner.twilio.__aexit__(None, None, None)
    placed = [c for c in rig.fake.calls if c["Url"].split("/")[-2] == str(lost["id"])]
    assert len(placed) == 1
    claim = await rig.pool.fetchval(
        "SELECT outcome FROM run_claims WHERE key LIKE $1", f"call:{lost['id']}:%"
    )
    assert claim.startswith("unknown: Twilio is unreachable")
    run = await rig.run(lost["id"])
    assert run["state"] == "ended"  # its callbacks came, and were taken
    assert run["call_sid"] is not None
    row = await rig.pool.fetchrow("SELECT * FROM mystery_calls WHERE id = $1", lost["id"])
    assert row["moved_from"] is None


async def test_a_stray_call_for_a_failed_run_is_hung_up(rig: Rig) -> None:
    calls = await rig.campaign(ends_on="2027-04-02")
    call = calls[0]
    rig.fake.fail_with = 503  # Twilio did nothing: the slot moves
    await rig.at(call["scheduled_at"])
    rig.fake.fail_with = None
    before = dict(await rig.run(call["id"]))
    assert before["state"] == "ended"
    params = {"CallSid": "CA" + "9" * 32, "CallStatus": "in-progress", "AccountSid": "AC"}
    url = f"/webhooks/twilio/mystery/{call['id']}/answer"
    signature = RequestValidator(rig.fake.auth_token).compute_signature(
        str(rig.client.make_url(url)), params
    )
    resp = await rig.client.post(url, data=params, headers={"X-Twilio-Signature": signature})
    assert resp.status == 200
    assert "<Hangup/>" in await resp.text()
    assert "<Dial" not in await resp.text()
    assert dict(await rig.run(call["id"])) == before


async def test_a_call_cancelled_while_a_round_runs_is_not_placed(
    rig: Rig, database: Database
) -> None:
    calls = await rig.campaign()
    call = calls[0]
    cancelling = await asyncpg.connect(database.dsn)
    try:
        tx = cancelling.transaction()
        await tx.start()
        await cancelling.execute(
            "SELECT 1 FROM campaigns WHERE id = $1 FOR UPDATE", call["campaign_id"]
        )
        rig.clock.now = call["scheduled_at"]
        round_task = asyncio.create_task(rig.runner.tick())
        await asyncio.sleep(0.3)  # the round has read the call, and waits for the cancel
        await cancelling.execute(
            "UPDATE mystery_calls SET status = 'cancelled' WHERE campaign_id = $1",
            call["campaign_id"],
        )
        await tx.commit()
        await asyncio.wait_for(round_task, 10)
    finally:
        await cancelling.close()
    await rig.fake.idle()
    assert rig.fake.calls == []
    assert await rig.pool.fetchval("SELECT count(*) FROM run_claims") == 0


async def test_without_a_public_url_twilio_is_not_asked(rig: Rig) -> None:
    calls = await rig.campaign()
    runner = CampaignRunner(
        rig.pool, rig.settings, Mailer(None, "x@y.z"), twilio=rig.rest, clock=rig.clock
    )
    rig.clock.now = calls[0]["scheduled_at"]
    await runner.tick()
    assert rig.fake.calls == []
    run = await rig.run(calls[0]["id"])
    assert run["detail"] == "DECROCHE_PUBLIC_URL is not set: Twilio could not reach the callbacks"


async def test_a_voicemail_that_takes_the_evaluators_call_calls_nobody(rig: Rig) -> None:
    rig.fake.behaviours[CLAIRE] = Behaviour("answer", ring_s=20, presses=False)
    calls = await rig.campaign()
    call = next(c for c in calls if c["evaluator"].startswith("claire"))
    await rig.at(call["scheduled_at"])
    run = await rig.run(call["id"])
    assert (run["state"], run["outcome"]) == ("ended", "evaluator-no-answer")
    assert run["detail"] == "picked up but no key pressed (a voicemail?)"
    assert run["target_sid"] is None  # the service was never called
    dialled = [p for url, p, _ in rig.fake.callbacks if url.endswith("/target")]
    assert dialled == []

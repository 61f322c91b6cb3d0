"""Callers' numbers and recordings: pseudonyms, the retention job, erasure on request."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from service.app import create_app, source_parsers
from service.calls.rebuild import mark_all, refold_all, reparse
from service.demo.traffic import SimCall, build_callbacks
from service.keys import DB_POOL, FOLDER, SCHEDULER
from service.municipality.model import PrivacyConfig
from service.outside.twilio.rest import TwilioRest
from service.privacy import Pseudonymiser, canonical
from service.privacy.retention import RetentionReport, run_retention
from service.privacy.scrub import mask_numbers, number_pattern, number_replacer
from service.settings import Settings
from tests.conftest import (
    ADMIN_HEADERS,
    AUTH_TOKEN,
    TEST_CONFIG,
    ClientFactory,
    Database,
    make_settings,
)
from tests.support.fake_twilio import FakeTwilio
from tests.support.processes import decroche_env, run_decroche
from tests.support.twilio_client import TwilioPoster

ACCOUNT = "AC" + "0" * 32
CITIZEN = "+33612345678"
NEIGHBOUR = "+33698765432"
NOW = datetime.now(UTC).replace(microsecond=0)
PSEUDO = Pseudonymiser("test-secret-key")

PARIS = ZoneInfo("Europe/Paris")


# --- pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("+33 6 12 34 56 78", CITIZEN),
        ("06.12.34.56.78", CITIZEN),
        ("0033612345678", CITIZEN),
        ("0612345678", CITIZEN),
        ("+442071838750", "+442071838750"),
        ("anonymous", None),
        ("", None),
    ],
)
def test_one_spelling_per_number(written: str, expected: str | None) -> None:
    assert canonical(written) == expected


def test_a_caller_is_recognised_whatever_the_source_wrote() -> None:
    digest, last2 = PSEUDO(CITIZEN)
    assert digest is not None
    assert len(digest) == 32
    assert last2 == "78"
    assert PSEUDO("06 12 34 56 78") == (digest, last2)
    assert PSEUDO(NEIGHBOUR)[0] != digest
    assert Pseudonymiser("another-key")(CITIZEN)[0] != digest  # keyed, not a plain hash
    # The token that replaces an expired number folds to the same pseudonym, no number.
    token = PSEUDO.token(CITIZEN)
    assert "612345678" not in token
    assert PSEUDO(token) == (digest, last2)
    assert PSEUDO("erased") == (None, None)
    assert PSEUDO("anonymous") == (None, None)


@given(
    digits=st.text(alphabet="0123456789", min_size=8, max_size=8),
    first=st.sampled_from("1234567"),
    prefix=st.sampled_from(["+33", "0033", "0", "+33 ", "%2B33"]),
    sep=st.sampled_from(["", " ", ".", "-", "+"]),
    before=st.sampled_from(["", "appel de ", "|", "ENTERQUEUE||"]),
    after=st.sampled_from(["", " ce matin", "|1", "|3"]),
)
def test_a_number_is_found_however_it_is_written(
    digits: str, first: str, prefix: str, sep: str, before: str, after: str
) -> None:
    national = first + digits
    pairs = [national[0]] + [national[i : i + 2] for i in range(1, 9, 2)]
    written = prefix + sep.join(pairs)
    text = before + written + after
    replace = number_replacer({"+33" + national: "X"})
    assert replace(text) == before + "X" + after
    # A longer number that merely contains it is another number.
    assert replace(text.replace(written, written + "9")) == text.replace(written, written + "9")


def test_other_numbers_and_digits_are_left_alone() -> None:
    pattern = number_pattern(CITIZEN)
    assert pattern is not None
    for text in (NEIGHBOUR, "2026-11-23T10:00:00", "CA612345678", "+33612345679", "1612345678"):
        assert pattern.search(text) is None, text
    assert number_pattern("anonymous") is None


def test_masking_keeps_the_last_two_digits_only() -> None:
    body = "From=%2B33612345678&To=+33100000001&Timestamp=Mon, 23 Nov 2026 10:00:00 +0000"
    masked = mask_numbers(body.replace("%2B", "+") + " rappeler le 06 98 76 54 32")
    assert "612345678" not in masked
    assert "98 76 54" not in masked
    assert "…78" in masked
    assert "…32" in masked
    assert "…01" in masked
    assert "10:00:00" in masked
    assert "2026" in masked


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
async def fake_twilio() -> AsyncIterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio(ACCOUNT, AUTH_TOKEN)
    server = TestServer(fake.app())
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
def privacy_settings(
    database: Database, tmp_path: Path, fake_twilio: tuple[FakeTwilio, str]
) -> Settings:
    return make_settings(database.dsn, tmp_path, twilio_api_base=fake_twilio[1])


@pytest.fixture
async def app_client(
    db: asyncpg.Connection, privacy_settings: Settings, aiohttp_client: ClientFactory
) -> TestClient[Any, Any]:
    client = await aiohttp_client(create_app(privacy_settings), headers=ADMIN_HEADERS)
    # The app runs the retention job once when elected; let that run end before the test
    # writes anything, so what the test measures is its own run.
    await first_retention(client)
    return client


async def first_retention(client: TestClient[Any, Any]) -> int:
    """How many times the app's scheduler ran the retention job, once it has run once."""
    scheduler = client.app[SCHEDULER]
    for _ in range(1000):
        if scheduler.runs.get("privacy.retention"):
            break
        await asyncio.sleep(0.01)
    return int(scheduler.runs.get("privacy.retention", 0))


def citizen_call(
    sid_digit: str, start: datetime, *, caller: str = CITIZEN, answered: bool = False
) -> SimCall:
    call = SimCall(
        "CA" + sid_digit * 32,
        "+33100000001",
        caller,
        "queue",
        start,
        answered,
        40,
        60 if answered else 0,
    )
    build_callbacks(call, random.Random(sid_digit))
    return call


def recording_of(call: SimCall, digit: str) -> dict[str, str]:
    rid = "RE" + digit * 32
    return {
        "AccountSid": ACCOUNT,
        "CallSid": call.sid,
        "RecordingSid": rid,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{rid}",
        "RecordingStatus": "completed",
        "RecordingDuration": "60",
    }


async def deliver(poster: TwilioPoster, *calls: SimCall) -> None:
    for call in calls:
        for _, params in call.callbacks:
            assert (await poster.post(params)).status == 200
    await poster.client.app[FOLDER].catch_up()


async def call_row(db: asyncpg.Connection, call: SimCall) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM calls WHERE external_id = $1", call.sid)
    assert row is not None
    return row


async def stored_text(db: asyncpg.Connection, call: SimCall) -> str:
    """Everything stored about a call's events, as one text to search."""
    texts = await db.fetch(
        "SELECT norm::text || payload::text AS t FROM events WHERE call_key = $1", call.sid
    )
    return "\n".join(r["t"] for r in texts)


async def retention(settings: Settings, pool: asyncpg.Pool, now: datetime) -> RetentionReport:
    async with TwilioRest(settings) as twilio:
        return await run_retention(
            pool, PrivacyConfig(30, 90), Pseudonymiser(settings.secret_key), twilio, now
        )


# --- the retention job ----------------------------------------------------------------------


async def test_expired_numbers_and_recordings_are_erased_and_stay_erased(
    app_client: TestClient[Any, Any],
    db: asyncpg.Connection,
    privacy_settings: Settings,
    fake_twilio: tuple[FakeTwilio, str],
) -> None:
    fake, _ = fake_twilio
    poster = TwilioPoster(app_client, AUTH_TOKEN)
    ancient = citizen_call("1", NOW - timedelta(days=120), answered=True)  # both expired
    old = citizen_call("2", NOW - timedelta(days=40), answered=True)  # number expired only
    recent = citizen_call("3", NOW - timedelta(days=2))  # nothing expired
    await deliver(poster, ancient, old, recent)
    for call, digit in ((ancient, "a"), (old, "b")):
        fake.recordings.add("RE" + digit * 32)
        assert (await poster.post(recording_of(call, digit))).status == 200
    await app_client.app[FOLDER].catch_up()
    before = {c.sid: await call_row(db, c) for c in (ancient, old, recent)}

    pool = app_client.app[DB_POOL]
    report = await retention(privacy_settings, pool, NOW)

    assert report.numbers == 2
    assert report.recordings["deleted"] == 1
    assert not report.errors
    assert fake.recordings == {"RE" + "b" * 32}  # the 120-day-old one was deleted at Twilio
    for call in (ancient, old):
        row = await call_row(db, call)
        assert row["caller_number"] is None
        # Still recognised (call-backs, repeat callers) and still displayed as …78.
        assert row["caller_hash"] == before[call.sid]["caller_hash"] is not None
        assert row["caller_last2"] == "78"
        assert "12345678" not in await stored_text(db, call)
        assert (row["wait_s"], row["answered"]) == (40, True)
    assert (await call_row(db, ancient))["recording_url"] is None
    assert (await call_row(db, old))["recording_url"] == recording_of(old, "b")["RecordingUrl"]
    assert (await call_row(db, recent))["caller_number"] == CITIZEN
    assert "612345678" in await stored_text(db, recent)

    # Rebuilding every call from the raw payloads brings nothing back.
    async with pool.acquire() as conn:
        await reparse(pool, source_parsers(PARIS), lambda n: None)
        await mark_all(conn)
    await refold_all(pool, Pseudonymiser(privacy_settings.secret_key), lambda n: None)
    for call in (ancient, old):
        row = await call_row(db, call)
        assert row["caller_number"] is None
        assert row["caller_hash"] == before[call.sid]["caller_hash"]
    assert (await call_row(db, ancient))["recording_url"] is None

    # A second run has nothing left to do.
    again = await retention(privacy_settings, pool, NOW)
    assert (again.numbers, again.events, again.recordings["deleted"]) == (0, 0, 0)


async def test_a_recording_twilio_will_not_delete_is_kept_and_retried(
    app_client: TestClient[Any, Any],
    db: asyncpg.Connection,
    privacy_settings: Settings,
    fake_twilio: tuple[FakeTwilio, str],
) -> None:
    fake, _ = fake_twilio
    poster = TwilioPoster(app_client, AUTH_TOKEN)
    call = citizen_call("4", NOW - timedelta(days=100), answered=True)
    await deliver(poster, call)
    fake.recordings.add("RE" + "c" * 32)
    await poster.post(recording_of(call, "c"))
    await app_client.app[FOLDER].catch_up()
    pool = app_client.app[DB_POOL]

    fake.fail_with = 503
    report = await retention(privacy_settings, pool, NOW)
    assert report.recordings["kept"] == 1
    assert "503" in report.errors[0]
    assert (await call_row(db, call))["recording_url"] is not None  # not forgotten

    fake.fail_with = None
    report = await retention(privacy_settings, pool, NOW)
    assert report.recordings["deleted"] == 1
    assert not report.errors
    assert (await call_row(db, call))["recording_url"] is None
    assert not fake.recordings
    # Without credentials nothing can be deleted at Twilio: kept, with the reason.
    fake.recordings.add("RE" + "d" * 32)
    await poster.post(recording_of(call, "d"))
    await app_client.app[FOLDER].catch_up()
    blind = privacy_settings.with_overrides(twilio_auth_token=None)
    report = await retention(blind, pool, NOW)
    assert report.recordings["kept"] == 1
    assert "TWILIO_AUTH_TOKEN" in report.errors[0]


async def test_old_quarantined_bodies_are_masked(
    app_client: TestClient[Any, Any], db: asyncpg.Connection, privacy_settings: Settings
) -> None:
    body = "CallSid=CA1&From=%2B33612345678&Timestamp=hier&CallStatus=ringing"
    old_id = await db.fetchval(
        "INSERT INTO quarantine (source, reason, body, received_at) "
        "VALUES ('twilio', 'test', $1, $2) RETURNING id",
        "From=%2B33612345678&Caller=06+12+34+56+78",
        NOW - timedelta(days=31),
    )
    new_id = await db.fetchval(
        "INSERT INTO quarantine (source, reason, body) VALUES ('twilio', 'test', $1) RETURNING id",
        body,
    )
    report = await retention(privacy_settings, app_client.app[DB_POOL], NOW)
    assert report.quarantined == 1
    old = await db.fetchrow("SELECT body, masked_at FROM quarantine WHERE id = $1", old_id)
    assert old["body"] == "From=…78&Caller=…78"  # form-encoded "+" and spaces too
    assert old["masked_at"] is not None
    assert await db.fetchval("SELECT body FROM quarantine WHERE id = $1", new_id) == body


async def test_the_service_runs_the_retention_job_when_it_starts(
    db: asyncpg.Connection, privacy_settings: Settings, aiohttp_client: ClientFactory
) -> None:
    """The job is wired: an instance that becomes leader erases what expired while none ran."""
    first = await aiohttp_client(create_app(privacy_settings), headers=ADMIN_HEADERS)
    assert await first_retention(first) == 1
    poster = TwilioPoster(first, AUTH_TOKEN)
    old = citizen_call("5", NOW - timedelta(days=45))
    await deliver(poster, old)
    await first.close()
    assert (await call_row(db, old))["caller_number"] == CITIZEN
    second = await aiohttp_client(create_app(privacy_settings), headers=ADMIN_HEADERS)
    assert await first_retention(second) == 1
    assert (await call_row(db, old))["caller_number"] is None


# --- erasure on request ---------------------------------------------------------------------


async def test_a_caller_is_erased_on_request_and_nobody_else(
    app_client: TestClient[Any, Any],
    db: asyncpg.Connection,
    privacy_settings: Settings,
    fake_twilio: tuple[FakeTwilio, str],
) -> None:
    fake, _ = fake_twilio
    poster = TwilioPoster(app_client, AUTH_TOKEN)
    expired = citizen_call("6", NOW - timedelta(days=60), answered=True)
    recent = citizen_call("7", NOW - timedelta(days=1), answered=True)
    other = citizen_call("8", NOW - timedelta(days=1), caller=NEIGHBOUR)
    await deliver(poster, expired, recent, other)
    fake.recordings.add("RE" + "e" * 32)
    await poster.post(recording_of(recent, "e"))
    await db.execute(
        "INSERT INTO quarantine (source, reason, body) VALUES ('twilio', 'test', $1)",
        "From=06 12 34 56 78&To=+33100000001&Caller=%2B33612345678",
    )
    pool = app_client.app[DB_POOL]
    await retention(privacy_settings, pool, NOW)  # the 60-day-old call holds only a token
    assert "pseudonym:" in await stored_text(db, expired)
    neighbour_before = await call_row(db, other)

    resp = await app_client.post("/api/v1/privacy/erase", json={"number": "06 12 34 56 78"})
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["calls"] == 2
    assert done["recordings_deleted"] == 1
    assert done["quarantine_rewritten"] == 1
    assert done["unrecognised"] == 0
    assert not fake.recordings
    for call in (expired, recent):
        row = await call_row(db, call)
        assert (row["caller_hash"], row["caller_last2"], row["caller_number"]) == (None,) * 3
        assert row["recording_url"] is None
        assert row["answered"] is True  # the figures do not change
        text = await stored_text(db, call)
        assert "612345678" not in text
        assert "pseudonym:" not in text
    body = await db.fetchval("SELECT body FROM quarantine")
    assert "12 34 56 78" not in body
    assert "612345678" not in body
    assert "+33100000001" in body  # the town's line is not the caller
    assert dict(await call_row(db, other)) == dict(neighbour_before)

    # Refolding from the raw payloads does not bring the caller back.
    async with pool.acquire() as conn:
        await reparse(pool, source_parsers(PARIS), lambda n: None)
        await mark_all(conn)
    await refold_all(pool, Pseudonymiser(privacy_settings.secret_key), lambda n: None)
    assert (
        await db.fetchval("SELECT count(*) FROM calls WHERE caller_hash IS NOT NULL") == 1
    )  # the neighbour's

    # Audited, without the number.
    audit = await db.fetchrow("SELECT * FROM audit_log WHERE action = 'privacy.erase'")
    assert audit is not None
    assert audit["actor"] == "env-admin"
    assert "78" not in (audit["target"] or "")
    assert "612345678" not in str(audit["detail"])


async def test_erasure_refusals(
    app_client: TestClient[Any, Any],
    db: asyncpg.Connection,
    fake_twilio: tuple[FakeTwilio, str],
    anonymous: Any,
) -> None:
    fake, _ = fake_twilio
    poster = TwilioPoster(app_client, AUTH_TOKEN)
    call = citizen_call("9", NOW - timedelta(days=1))
    await deliver(poster, call)
    fake.recordings.add("RE" + "f" * 32)
    await poster.post(recording_of(call, "f"))
    await app_client.app[FOLDER].catch_up()

    resp = await app_client.post("/api/v1/privacy/erase", json={"number": "anonymous"})
    assert resp.status == 400
    assert (await resp.json())["field"] == "number"
    resp = await app_client.post("/api/v1/privacy/erase", data="number=+33612345678")
    assert resp.status == 415
    # Twilio cannot delete the recording: nothing is erased, the request can be repeated.
    fake.fail_with = 500
    resp = await app_client.post("/api/v1/privacy/erase", json={"number": CITIZEN})
    assert resp.status == 503
    assert "nothing was erased" in (await resp.json())["error"]
    assert (await call_row(db, call))["caller_number"] == CITIZEN
    fake.fail_with = None
    resp = await app_client.post("/api/v1/privacy/erase", json={"number": CITIZEN})
    assert resp.status == 200
    assert (await resp.json())["calls"] == 1
    # Only an administrator may erase.
    resp = await anonymous.post("/api/v1/privacy/erase", json={"number": CITIZEN})
    assert resp.status == 401


async def test_cli_erase_and_purge(
    app_client: TestClient[Any, Any],
    db: asyncpg.Connection,
    database: Database,
    tmp_path: Path,
) -> None:
    poster = TwilioPoster(app_client, AUTH_TOKEN)
    old = citizen_call("a", NOW - timedelta(days=35), caller=NEIGHBOUR)
    recent = citizen_call("b", NOW - timedelta(days=3))
    await deliver(poster, old, recent)
    env = decroche_env(tmp_path, DATABASE_URL=database.dsn, DECROCHE_SECRET_KEY="test-secret-key")

    res = run_decroche("privacy", "purge", "--config", str(TEST_CONFIG), env=env)
    assert res.returncode == 0, res.stderr
    assert "numbers erased from 1 calls" in res.stdout
    assert (await call_row(db, old))["caller_number"] is None

    # The number is prompted for, so it stays out of the shell history.
    res = run_decroche(
        "privacy", "erase", "--config", str(TEST_CONFIG), env=env, stdin="0612345678\n"
    )
    assert res.returncode == 0, res.stderr
    assert "erased: 1 calls" in res.stdout
    assert (await call_row(db, recent))["caller_hash"] is None
    assert (await call_row(db, old))["caller_hash"] is not None
    res = run_decroche("privacy", "erase", "restricted", "--config", str(TEST_CONFIG), env=env)
    assert res.returncode == 1
    assert "not a phone number" in res.stderr


# --- DST and the daily trigger ------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 23)])
def test_the_daily_job_fires_once_a_day_at_half_past_three_local(day: date) -> None:
    from zoneinfo import ZoneInfo

    from service.scheduler import daily

    paris = ZoneInfo("Europe/Paris")
    trigger = daily(3, 30, paris)
    start = datetime.combine(day - timedelta(days=1), datetime.min.time(), paris)
    fires = []
    previous = None
    now = start
    while now < start + timedelta(days=3):
        nxt = trigger.get_next_fire_time(previous, now)
        assert nxt is not None
        fires.append(nxt)
        previous = nxt
        now = nxt + timedelta(seconds=1)
    local = [f.astimezone(paris) for f in fires]
    assert [(t.hour, t.minute) for t in local] == [(3, 30)] * len(local)
    assert len({t.date() for t in local}) == len(local)  # once per local day
    assert day in {t.date() for t in local}


async def test_a_number_the_events_do_not_explain_is_still_erased(
    app_client: TestClient[Any, Any], db: asyncpg.Connection, privacy_settings: Settings
) -> None:
    """A row whose number no event carries in a known form (here: no event at all) loses it,
    and the job ends rather than finding the same rows again forever."""
    started = NOW - timedelta(days=31)
    month = started.astimezone(UTC).date().replace(day=1)
    await db.execute("SELECT ensure_month_partitions($1::date[])", [month])
    await db.execute(
        "INSERT INTO calls (month, source, external_id, direction, caller_hash, caller_last2, "
        "caller_number, started_at, answered, time_from_events) "
        "VALUES ($3, 'cdr', 'x1', 'inbound', 'h', '78', $1, $2, false, true)",
        CITIZEN,
        started,
        month,
    )
    pool = app_client.app[DB_POOL]
    report = await asyncio.wait_for(retention(privacy_settings, pool, NOW), timeout=30)
    assert report.numbers == 1
    assert await db.fetchval("SELECT caller_number FROM calls WHERE external_id = 'x1'") is None
    assert await db.fetchval("SELECT caller_last2 FROM calls WHERE external_id = 'x1'") == "78"

"""``POST /webhooks/twilio`` on a real server and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.demo.traffic import SimCall, TrafficGenerator, build_callbacks
from service.keys import FOLDER
from service.municipality.model import load_municipality
from service.settings import Settings
from service.web.cookies import sign
from tests.conftest import (
    ADMIN_HEADERS,
    AUTH_TOKEN,
    TEST_CONFIG,
    ClientFactory,
    Database,
    make_settings,
)
from tests.support.tcp_proxy import DatabaseProxy
from tests.support.twilio_client import TwilioPoster

M = load_municipality(TEST_CONFIG)
T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # Monday 10:00 in Paris


def sim(
    topology: str,
    answered: bool,
    wait: int,
    *,
    sid: str = "CA" + "1" * 32,
    line: str = "+33100000001",
    start: datetime = T0,
) -> SimCall:
    call = SimCall(
        sid, line, "+33612345678", topology, start, answered, wait, 75 if answered else 0, agents=2
    )
    build_callbacks(call, random.Random(sid))
    return call


async def send_all(twilio: TwilioPoster, call: SimCall, **kw: Any) -> list[int]:
    statuses = []
    for _, params in call.callbacks:
        resp = await twilio.post(params, **kw)
        statuses.append(resp.status)
    return statuses


async def stored_call(
    db: asyncpg.Connection, sid: str, poster: TwilioPoster | None = None
) -> asyncpg.Record | None:
    """The call row, once the folder has caught up with what was acknowledged."""
    if poster is not None:
        await poster.client.app[FOLDER].catch_up()
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT * FROM calls WHERE source = 'twilio' AND external_id = $1", sid
    )
    return row


def assert_truth(row: asyncpg.Record | None, call: SimCall) -> None:
    assert row is not None
    assert row["started_at"] == call.started_at
    assert row["answered"] is call.answered
    assert row["answered_at"] == call.answered_at
    assert row["ended_at"] == call.ended_at
    assert row["wait_s"] == call.wait_s
    assert row["line"] == call.line


@pytest.mark.parametrize("topology", ["dial", "queue"])
@pytest.mark.parametrize(("answered", "wait"), [(True, 18), (False, 47)])
async def test_topologies_are_stored_as_the_truth(
    twilio: TwilioPoster, db: asyncpg.Connection, topology: str, answered: bool, wait: int
) -> None:
    call = sim(topology, answered, wait)
    assert set(await send_all(twilio, call)) == {200}
    assert_truth(await stored_call(db, call.sid, twilio), call)
    assert await db.fetchval("SELECT count(*) FROM events") == len(call.callbacks)
    # Raw payloads are kept as received, so calls can be rebuilt if a rule changes.
    raw = await db.fetchval("SELECT payload->>'CallStatus' FROM events ORDER BY id LIMIT 1")
    assert raw == "ringing"


async def test_action_callbacks_answer_twiml(twilio: TwilioPoster) -> None:
    call = sim("queue", True, 10)
    action = next(p for _, p in call.callbacks if "QueueResult" in p)
    resp = await twilio.post(action)
    assert resp.content_type == "text/xml"
    assert (await resp.text()).endswith("<Response/>")
    resp = await twilio.post(action, path="/webhooks/twilio?next=https://ivr.example/menu")
    body = await resp.text()
    assert resp.status == 200
    assert '<Redirect method="POST">https://ivr.example/menu</Redirect>' in body


async def test_a_body_arriving_in_two_packets_is_read_whole(twilio: TwilioPoster) -> None:
    """A callback split across TCP packets keeps its signature (the body is read to its end)."""
    params = sim("direct", True, 5).callbacks[0][1]
    body = urlencode(params).encode()
    signature = twilio.validator.compute_signature(twilio.url("/webhooks/twilio"), params)
    host, port = twilio.client.host, twilio.client.port
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /webhooks/twilio HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    writer.write(head + body[:10])
    await writer.drain()
    await asyncio.sleep(0.2)  # the server has read what came: it must wait for the rest
    writer.write(body[10:])
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"200", status_line


async def test_duplicates_change_nothing_and_are_answered_alike(
    twilio: TwilioPoster, db: asyncpg.Connection, client: TestClient[web.Request, web.Application]
) -> None:
    call = sim("dial", True, 21)
    await send_all(twilio, call)
    before = await stored_call(db, call.sid, twilio)
    assert before is not None
    bodies = set()
    for _, params in call.callbacks:
        resp = await twilio.post(params)
        assert resp.status == 200
        bodies.add(await resp.text())
    after = await stored_call(db, call.sid, twilio)
    assert after is not None
    assert await db.fetchval("SELECT count(*) FROM events") == len(call.callbacks)
    assert after["updated_at"] == before["updated_at"]  # not even rewritten
    assert len(bodies) == 1
    metrics = await (await client.get("/metrics")).text()
    assert (
        f'decroche_webhooks_total{{reason="",result="duplicate",source="twilio"}} '
        f"{float(len(call.callbacks))}"
    ) in metrics


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10**9), data=st.data())
async def test_any_arrival_order_with_duplicates_folds_to_the_truth(
    twilio: TwilioPoster, db: asyncpg.Connection, seed: int, data: st.DataObject
) -> None:
    gen = TrafficGenerator(M, seed=seed)
    call = gen.call(M.services[seed % 2], T0 + timedelta(minutes=seed % 300))
    deliveries = [p for _, p in call.callbacks]
    deliveries = list(data.draw(st.permutations(deliveries)))
    deliveries += data.draw(st.lists(st.sampled_from(deliveries), max_size=6))
    random.Random(seed).shuffle(deliveries)
    for params in deliveries:
        assert (await twilio.post(params)).status == 200
    assert_truth(await stored_call(db, call.sid, twilio), call)


async def test_concurrent_deliveries_of_one_call_fold_completely(
    twilio: TwilioPoster, db: asyncpg.Connection
) -> None:
    call = sim("dial", True, 33)
    resps = await asyncio.gather(*(twilio.post(p) for _, p in call.callbacks))
    assert {r.status for r in resps} == {200}
    assert_truth(await stored_call(db, call.sid, twilio), call)


async def test_two_instances_racing_on_the_same_calls_fold_them_all(
    db: asyncpg.Connection, database: Database, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    """Deliveries of the same calls spread over two instances, all at once: every event is
    folded (no mark consumed without its event, no deadlock between instances)."""
    a = TwilioPoster(
        await aiohttp_client(create_app(make_settings(database.dsn, tmp_path))), AUTH_TOKEN
    )
    b = TwilioPoster(
        await aiohttp_client(create_app(make_settings(database.dsn, tmp_path))), AUTH_TOKEN
    )
    gen = TrafficGenerator(M, seed=99)
    calls = [gen.call(M.services[i % 2], T0 + timedelta(seconds=7 * i)) for i in range(40)]
    deliveries = [(i, p) for i, c in enumerate(calls) for _, p in c.callbacks]
    random.Random(1).shuffle(deliveries)
    posts = [(a if i % 2 else b).post(p) for i, p in deliveries]
    assert {r.status for r in await asyncio.gather(*posts)} == {200}
    for call in calls:
        assert_truth(await stored_call(db, call.sid, b), call)
    assert await db.fetchval("SELECT count(*) FROM fold_queue") == 0


async def test_forged_or_missing_signature_is_refused_and_not_kept(
    twilio: TwilioPoster, db: asyncpg.Connection, client: TestClient[web.Request, web.Application]
) -> None:
    params = sim("dial", True, 5).callbacks[0][1]
    forged = dict(params, To="+33100000002")  # tampered after signing
    sig = twilio.validator.compute_signature(twilio.url("/webhooks/twilio"), params)
    assert (await twilio.post(forged, signature=sig)).status == 403
    resp = await client.post("/webhooks/twilio", data=params)
    assert resp.status == 403
    assert "X-Twilio-Signature" in (await resp.json())["error"]
    other_token = TwilioPoster(client, "not-the-token")
    assert (await other_token.post(params)).status == 403
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'reason="bad_signature",result="refused",source="twilio"} 2.0' in metrics
    assert 'reason="missing_signature",result="refused",source="twilio"} 1.0' in metrics


async def test_public_url_behind_a_proxy(
    db: asyncpg.Connection, database: Database, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    settings_ = make_settings(database.dsn, tmp_path, public_url="https://decroche.ville.fr")
    poster = TwilioPoster(await aiohttp_client(create_app(settings_)), AUTH_TOKEN)
    params = sim("dial", True, 5).callbacks[0][1]
    # Twilio signs the URL exactly as configured: public base, path and query string.
    public = "https://decroche.ville.fr/webhooks/twilio?next=https://ivr.example/a"
    ok = await poster.post(
        params, path="/webhooks/twilio?next=https://ivr.example/a", signed_url=public
    )
    assert ok.status == 200
    # Signed over the address the server sees, not the public one: refused.
    assert (await poster.post(params)).status == 403


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        ("CallSid=CA1&Timestamp=hier&CallStatus=ringing", None, "RFC 2822"),
        ("CallStatus=ringing", None, "missing parameter CallSid"),
        ("CallSid=CA" + "1" * 32 + "&Foo=bar", None, "not a Twilio voice callback"),
    ],
)
async def test_signed_but_malformed_goes_to_quarantine(
    twilio: TwilioPoster, db: asyncpg.Connection, body: str, content_type: str | None, words: str
) -> None:
    from urllib.parse import parse_qsl

    params = dict(parse_qsl(body))
    resp = await twilio.post(params)
    assert resp.status == 400
    assert words in (await resp.json())["error"]
    row = await db.fetchrow("SELECT source, reason, body FROM quarantine")
    assert row is not None
    assert row["source"] == "twilio"
    assert words in row["reason"]
    assert "CallStatus=ringing" in row["body"] or "Foo=bar" in row["body"]
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_undecodable_body_is_refused_and_not_kept(
    client: TestClient[web.Request, web.Application], db: asyncpg.Connection
) -> None:
    # Issue 24: a body that is not a form cannot be verified, so it is not kept either.
    resp = await client.post(
        "/webhooks/twilio",
        data=b"\xff\xfe=%%%",
        headers={"X-Twilio-Signature": "x", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 400
    assert "signature cannot be checked" in (await resp.json())["error"]
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 0


async def test_oversized_body_is_refused(
    client: TestClient[web.Request, web.Application], db: asyncpg.Connection
) -> None:
    resp = await client.post(
        "/webhooks/twilio", data=b"a=" + b"x" * 70_000, headers={"X-Twilio-Signature": "x"}
    )
    assert resp.status == 413


async def test_unknown_line_is_kept_as_such(
    twilio: TwilioPoster, db: asyncpg.Connection, client: TestClient[web.Request, web.Application]
) -> None:
    call = sim("dial", False, 9, line="+33999999999")
    assert set(await send_all(twilio, call)) == {200}
    data = await (await client.get("/api/v1/calls")).json()
    assert [(c["line"], c["service"], c["in_hours"]) for c in data["calls"]] == [
        ("+33999999999", None, False)
    ]


async def test_without_auth_token_twilio_webhooks_are_unavailable(
    db: asyncpg.Connection,
    settings: Settings,
    aiohttp_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await aiohttp_client(create_app(settings.with_overrides(twilio_auth_token=None)))
    poster = TwilioPoster(client, AUTH_TOKEN)
    resp = await poster.post(sim("dial", True, 5).callbacks[0][1])
    assert resp.status == 503
    assert "TWILIO_AUTH_TOKEN" in (await resp.json())["error"]
    assert "TWILIO_AUTH_TOKEN is not set" in caplog.text
    assert await db.fetchval("SELECT count(*) FROM events") == 0


async def test_database_down_means_503_and_nothing_half_written(
    db: asyncpg.Connection, database: Database, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    proxy = DatabaseProxy(database.dsn)
    await proxy.start()
    client = await aiohttp_client(
        create_app(make_settings(proxy.dsn, tmp_path)), headers=ADMIN_HEADERS
    )
    poster = TwilioPoster(client, AUTH_TOKEN)
    call = sim("queue", True, 14)
    first, rest = call.callbacks[0][1], [p for _, p in call.callbacks[1:]]
    assert (await poster.post(first)).status == 200
    assert (await client.get("/healthz")).status == 200

    await proxy.cut()
    statuses = [(await poster.post(p)).status for p in rest]
    assert statuses == [503] * len(rest)
    health = await client.get("/healthz")
    assert health.status == 503
    listing = await client.get("/api/v1/calls")
    assert listing.status == 503
    assert (await listing.json())["error"] == "database unavailable; retry later"
    # A user's token or session cannot be checked either: 503 (retry), never a 401 or a 500.
    session = sign("test-secret-key", "some-session-id")
    for creds in (
        {"Authorization": "Bearer dcr_someone"},
        {"Cookie": f"decroche_session={session}"},
    ):
        async with aiohttp.ClientSession() as other:
            resp = await other.get(client.make_url("/api/v1/engagement8"), headers=creds)
            assert resp.status == 503, creds
    assert await db.fetchval("SELECT count(*) FROM events") == 1  # only what was acknowledged
    malformed = await poster.post({"CallSid": "CA1", "Timestamp": "x", "CallStatus": "ringing"})
    assert malformed.status == 503  # cannot be quarantined now, so the sender must retry

    await proxy.restore()
    # Twilio retries what got a 5xx: everything then lands exactly once.
    for p in rest:
        assert (await poster.post(p)).status == 200
    assert (await client.get("/healthz")).status == 200
    assert await db.fetchval("SELECT count(*) FROM events") == len(call.callbacks)
    assert_truth(await stored_call(db, call.sid, poster), call)
    await proxy.cut()


async def test_recording_callback_links_the_recording(
    twilio: TwilioPoster, db: asyncpg.Connection
) -> None:
    call = sim("dial", True, 8)
    await send_all(twilio, call)
    recording = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call.sid,
        "RecordingSid": "RE" + "5" * 32,
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE5",
        "RecordingStatus": "completed",
        "RecordingDuration": "75",
    }
    assert (await twilio.post(recording)).status == 200
    row = await stored_call(db, call.sid, twilio)
    assert row is not None
    assert row["recording_url"] == recording["RecordingUrl"]
    assert_truth(row, call)  # a recording changes nothing else


async def test_calls_are_rebuilt_from_the_raw_events(
    twilio: TwilioPoster, db: asyncpg.Connection, database: Database, tmp_path: Path
) -> None:
    """The call rows are derived data: wiped, they come back identical from the events."""
    calls = [sim("dial", True, 11, sid="CA" + "7" * 32), sim("queue", False, 61)]
    for call in calls:
        await send_all(twilio, call)
    before = [await stored_call(db, c.sid, twilio) for c in calls]
    await db.execute("DELETE FROM calls")
    from tests.support.processes import decroche_env, run_decroche

    res = run_decroche(
        "refold",
        "--reparse",
        "--config",
        str(TEST_CONFIG),
        env=decroche_env(
            tmp_path, DATABASE_URL=database.dsn, DECROCHE_SECRET_KEY="test-secret-key"
        ),
    )
    assert res.returncode == 0, res.stderr
    assert "rebuilt 2 calls from" in res.stdout
    after = [await stored_call(db, c.sid) for c in calls]
    for old, new in zip(before, after, strict=True):
        assert old is not None
        assert new is not None
        assert {k: v for k, v in dict(old).items() if k not in ("id", "updated_at")} == {
            k: v for k, v in dict(new).items() if k not in ("id", "updated_at")
        }

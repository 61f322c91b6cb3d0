"""Faults made to happen on real processes: ``decroche serve`` instances, a PostgreSQL server of
the test's own that is stopped and started for real, instances killed with SIGKILL, a disk
that fills up, an SMTP server that is not there, a Twilio API that fails.

Each test is bounded (every wait has a deadline) and stays on loopback. The truth is the
simulated calls' own: after the fault, every call is stored once, as it happened.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from service.demo.traffic import SimCall, TrafficGenerator
from tests.campaigns.web.test_campaigns_api import body as campaign_body
from tests.conftest import ADMIN_HEADERS, ADMIN_TOKEN, AUTH_TOKEN, TEST_CONFIG, Database
from tests.service.cli.test_digest_cli import Client, digest
from tests.service.cli.test_digest_cli import config as config
from tests.service.metrics.test_engagement8 import ingest
from tests.support.cluster import Cluster
from tests.support.digest import CHEF_EC, DGS, MAIRE, WEEK, weeks_of_calls
from tests.support.fake_twilio import FakeTwilio
from tests.support.instances import Instance, TwilioSender
from tests.support.processes import decroche_env
from tests.support.smtp import Inbox, free_port, smtp_server
from tests.webhooks.test_webhook_twilio import M, assert_truth

T = TypeVar("T")
DAY = date(2026, 11, 17)  # a Tuesday: both services open


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "pg")
    try:
        yield c
    finally:
        c.close()


def service_env(data_dir: Path, cluster: Cluster | None, **extra: str) -> dict[str, str]:
    """The environment of an instance: the test town, on ``cluster`` (else embedded)."""
    env = {
        "DECROCHE_CONFIG": str(TEST_CONFIG),
        "DECROCHE_SECRET_KEY": "faults-secret-key",
        "DECROCHE_ADMIN_TOKEN": ADMIN_TOKEN,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    }
    if cluster is not None:
        env["DATABASE_URL"] = cluster.dsn
    return decroche_env(data_dir, **env, **extra)


def some_calls(count: int, seed: int) -> list[SimCall]:
    calls = TrafficGenerator(M, seed).day(DAY)
    return random.Random(seed).sample(calls, count)


async def until(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within_s: float = 30
) -> T:
    """Probe until ``ok``; fails with the last value after ``within_s`` seconds."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not ok(value := await probe()):
        assert asyncio.get_running_loop().time() < deadline, f"still {value!r}"
        await asyncio.sleep(0.05)
    return value


def soon(check: Callable[[], bool], within_s: float = 30) -> Awaitable[bool]:
    async def probe() -> bool:
        return check()

    return until(probe, bool, within_s)


async def stored_as_truth(dsn: str, calls: list[SimCall]) -> None:
    """Once everything is folded: every call stored once, as it happened; every event once."""
    db = await asyncpg.connect(dsn)
    try:

        async def progress() -> tuple[int, int]:
            return (
                await db.fetchval("SELECT count(*) FROM calls"),
                await db.fetchval("SELECT count(*) FROM fold_queue"),
            )

        await until(progress, lambda p: p == (len(calls), 0))
        rows = {r["external_id"]: r for r in await db.fetch("SELECT * FROM calls")}
        for call in calls:
            assert_truth(rows.get(call.sid), call)
        events = await db.fetchval("SELECT count(*) FROM events")
        assert events == sum(len(c.callbacks) for c in calls)
        assert await db.fetchval("SELECT count(*) FROM quarantine") == 0
    finally:
        await db.close()


def clean(instance: Instance) -> None:
    """A clean log: outages are one line each, and no bug left a traceback."""
    assert "Traceback" not in instance.output(), instance.output()


async def test_postgres_restarted_during_ingestion(tmp_path: Path, cluster: Cluster) -> None:
    """Stopped while callbacks stream in: they get 503 (nothing else), the instance stays up
    and resumes by itself once PostgreSQL is back; Twilio's retries land each event once."""
    instance = Instance(service_env(tmp_path, cluster), tmp_path / "serve.log").wait_healthy()
    try:
        calls = some_calls(60, seed=3)
        total = sum(len(c.callbacks) for c in calls)
        sender = TwilioSender([instance.base], AUTH_TOKEN)
        sending = asyncio.create_task(sender.deliver_calls(calls, per_second=120))
        await soon(lambda: sender.delivered >= total // 3)
        await asyncio.to_thread(cluster.stop)
        await soon(lambda: sender.attempts["503"] >= 5)  # deliveries go on meanwhile
        assert await asyncio.to_thread(instance.health) == 503
        await asyncio.to_thread(cluster.start)
        await asyncio.wait_for(sending, 90)
        assert instance.proc.poll() is None  # it never had to be restarted
        assert sender.refused == []
        # Only « stored » and « retry later »: never a 500, never a dropped connection.
        assert set(sender.attempts) == {"200", "503"}, sender.attempts
        assert sender.delivered == total
        await stored_as_truth(cluster.dsn, calls)
        assert await asyncio.to_thread(instance.health) == 200
    finally:
        code = instance.stop()
    assert code == 0, instance.output()
    assert "PostgreSQL is restarting" in instance.output()  # what the 503s were about
    clean(instance)


async def test_an_instance_killed_mid_request(tmp_path: Path, cluster: Cluster) -> None:
    """Two instances share the database; one dies (SIGKILL) with a request half received and
    others in flight. The sender moves to the other instance, which folds everything."""
    env = service_env(tmp_path, cluster)
    first = Instance(env, tmp_path / "first.log").wait_healthy()
    second = Instance(env, tmp_path / "second.log").wait_healthy()
    try:
        calls = some_calls(60, seed=4)
        total = sum(len(c.callbacks) for c in calls)
        sender = TwilioSender([first.base, second.base], AUTH_TOKEN)
        sending = asyncio.create_task(sender.deliver_calls(calls, per_second=120))
        await soon(lambda: sender.delivered >= total // 3)

        # A delivery whose body is still arriving when the instance dies: it must not count
        # (the sender saw no answer and retries it; here, the stream's own copy does).
        params = calls[0].callbacks[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", first.port)
        data = "&".join(f"{k}={v}" for k, v in params.items()).encode()
        writer.write(
            b"POST /webhooks/twilio HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data[: len(data) // 2]
        )
        await writer.drain()
        await asyncio.sleep(0.2)  # the instance is reading it
        await asyncio.to_thread(first.kill)
        assert await reader.read() == b""  # the connection died with it: no answer
        writer.close()

        await asyncio.wait_for(sending, 90)
        assert sender.refused == []
        assert set(sender.attempts) <= {"200", "refused", "disconnected"}, sender.attempts
        assert sender.attempts["refused"] > 0  # the dead one was tried, and left
        assert sender.delivered == total
        await stored_as_truth(cluster.dsn, calls)
    finally:
        second.stop()
        first.stop()
    clean(second)


async def leads(session: aiohttp.ClientSession, instance: Instance) -> bool:
    """What the instance's ``/metrics`` says of its leadership."""
    async with session.get(f"{instance.base}/metrics") as resp:
        text = await resp.text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("decroche_scheduler_leader ")]
    return float(line.split()[1]) == 1.0


async def test_a_killed_leader_is_replaced(tmp_path: Path, cluster: Cluster) -> None:
    """The scheduler's leader dies without a word: its lock goes with its connection, and the
    other instance leads within seconds (no job is left without a runner)."""
    env = service_env(tmp_path, cluster)
    instances = [Instance(env, tmp_path / f"{n}.log").wait_healthy() for n in ("a", "b")]
    try:
        async with aiohttp.ClientSession() as session:

            async def leaders() -> list[Instance]:
                alive = [i for i in instances if i.proc.poll() is None]
                return [i for i in alive if await leads(session, i)]

            (leader,) = await until(leaders, lambda found: len(found) == 1)
            await asyncio.to_thread(leader.kill)
            (other,) = [i for i in instances if i is not leader]
            await until(leaders, lambda found: found == [other])
    finally:
        for i in instances:
            i.stop()


# -- the embedded database's disk fills up ---------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 160 MB file system of its own (tmpfs), to fill up without harming the machine."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system (tmpfs) needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(
        ["/usr/bin/mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(disk)], check=True
    )
    try:
        yield disk
    finally:
        subprocess.run(["/usr/bin/umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    return filler


async def test_a_full_disk_under_the_embedded_database(tmp_path: Path, small_disk: Path) -> None:
    """Its disk full, the service says so (health, 503 with the reason, one log line each)
    and loses nothing: once space is freed, the retried deliveries are all stored."""
    env = service_env(small_disk / "data", None)
    instance = Instance(env, tmp_path / "serve.log").wait_healthy()
    try:
        calls = some_calls(200, seed=5)
        sender = TwilioSender([instance.base], AUTH_TOKEN)
        await sender.deliver_calls(calls[:10])
        filler = await asyncio.to_thread(fill, small_disk)

        async with aiohttp.ClientSession() as session:
            async with session.get(f"{instance.base}/healthz") as resp:
                health = await resp.json()
                assert resp.status == 503
            assert health["database"] == "disk full"
            assert f"embedded database ({small_disk / 'data' / 'pg'}) is full" in health["reason"]
            # Deliveries until PostgreSQL needs room it has not (pages fill up first).
            answers: list[tuple[int, str]] = []
            for call in calls[10:]:
                for _, params in call.callbacks:
                    answers.append(await sender.post_once(session, params))
                if answers[-1][0] != 200:
                    break
        status, text = answers[-1]
        assert {s for s, _ in answers} <= {200, 503}, answers
        assert status == 503, "the disk never filled up"
        assert "disk is full: free some space" in json.loads(text)["reason"]

        filler.unlink()
        await until(lambda: asyncio.to_thread(instance.health), lambda s: s == 200)
        await sender.deliver_calls(calls[10:])  # Twilio's retries, and the rest
        await stored_as_truth(embedded_dsn(small_disk / "data" / "pg"), calls)
    finally:
        instance.stop()
    assert "PostgreSQL's disk is full" in instance.output()
    clean(instance)


def embedded_dsn(pgdata: Path) -> str:
    """The DSN of the embedded server running on ``pgdata`` (from its ``postmaster.pid``)."""
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    port, socket_dir = lines[3], lines[4]
    return f"postgresql://postgres@/decroche?host={socket_dir}&port={port}"


# -- the SMTP server is down ------------------------------------------------------------------


async def test_the_digest_waits_for_an_smtp_server_that_is_down(
    client: Client, database: Database, tmp_path: Path, config: Path, inbox: Inbox
) -> None:
    """Nothing listens: every message is « not sent » (retried later, never « unknown »);
    the server back, each recipient gets its message once."""
    await ingest(client, weeks_of_calls())
    port = free_port()
    env = {"DECROCHE_SMTP_URL": f"smtp://127.0.0.1:{port}", "DECROCHE_MAIL_FROM": "d@ville.test"}
    res = digest(database, tmp_path, config, "send", "--week", str(WEEK), **env)
    assert res.returncode == 1
    assert "3 of 3 messages were not sent" in res.stderr
    assert "Traceback" not in res.stderr
    db = await asyncpg.connect(database.dsn)
    try:
        states = await db.fetch("SELECT state, last_error FROM digest_deliveries")
        assert [s["state"] for s in states] == ["pending"] * 3, states
        assert all("127.0.0.1" in (s["last_error"] or "") for s in states), states
    finally:
        await db.close()

    with ExitStack() as stack:
        stack.enter_context(smtp_server(inbox, port=port))
        res = digest(database, tmp_path, config, "send", "--week", str(WEEK), **env)
    assert res.returncode == 0, res.stderr
    assert sorted(str(m["To"]) for _, m in inbox.messages) == sorted([DGS, MAIRE, CHEF_EC])


# -- Twilio's API fails ------------------------------------------------------------------------


async def test_assisted_calls_survive_a_failing_twilio(tmp_path: Path, cluster: Cluster) -> None:
    """Twilio answers 503, then cannot be reached: the call is moved to a later slot each time
    (Twilio did nothing), never lost; Twilio back, it is placed once."""
    fake = FakeTwilio("AC" + "0" * 32, AUTH_TOKEN)  # the account token signs too
    fake.fail_with = 503
    api_port = free_port()
    server = TestServer(fake.app(), host="127.0.0.1", port=api_port)
    await server.start_server()
    port = free_port()
    env = service_env(
        tmp_path,
        cluster,
        DECROCHE_TWILIO_API_BASE=f"http://127.0.0.1:{api_port}",
        TWILIO_ACCOUNT_SID=fake.account_sid,
        DECROCHE_TWILIO_CALLER_ID="+33100009999",
        DECROCHE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        DECROCHE_CAMPAIGN_TICK_S="0.3",
    )
    instance = Instance(env, tmp_path / "serve.log", port=port).wait_healthy()
    db = await asyncpg.connect(cluster.dsn)
    try:
        call_id = await assisted_campaign(instance)

        async def due_now() -> datetime:
            at = datetime.now(UTC) + timedelta(seconds=1)
            await db.execute(
                "UPDATE mystery_calls SET scheduled_at = $2 WHERE id = $1", call_id, at
            )
            return at

        async def moved_from(at: datetime) -> asyncpg.Record:
            async def row() -> asyncpg.Record:
                return await db.fetchrow(
                    "SELECT scheduled_at, moved_reason FROM mystery_calls WHERE id = $1", call_id
                )

            return await until(row, lambda r: r["scheduled_at"] != at, within_s=20)

        first = await moved_from(await due_now())
        assert first["scheduled_at"] > datetime.now(UTC)
        assert "503" in first["moved_reason"], first
        assert fake.calls == []  # refused: nothing placed

        await server.close()  # now nothing answers at all
        second = await moved_from(await due_now())
        assert second["scheduled_at"] > datetime.now(UTC)
        assert fake.calls == []

        fake.fail_with = None
        server = TestServer(fake.app(), host="127.0.0.1", port=api_port)
        await server.start_server()
        await due_now()
        await soon(lambda: len(fake.calls) == 1, within_s=20)
        run = await until(
            lambda: db.fetchrow(
                "SELECT state FROM mystery_runs WHERE mystery_call_id = $1", call_id
            ),
            lambda r: r is not None and r["state"] != "placing",
        )
        assert run["state"] in ("placed", "bridged", "ended")
        await asyncio.sleep(1)  # a few more rounds: still one call
        assert len(fake.calls) == 1
    finally:
        await db.close()
        instance.stop()
        await server.close()
    clean(instance)


async def assisted_campaign(instance: Instance) -> int:
    """An assisted campaign over the next two weeks (API); its first call's id."""
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    spec: dict[str, Any] = campaign_body(
        mode="assisted",
        starts_on=str(tomorrow),
        ends_on=str(tomorrow + timedelta(days=13)),
        evaluators=[
            {"name": "Claire Martin", "email": "claire@ville.test", "phone": "+33600000001"}
        ],
        targets=[{"service": "accueil", "calls": 3}],
    )
    async with aiohttp.ClientSession(headers=ADMIN_HEADERS) as session:
        async with session.post(f"{instance.base}/api/v1/campaigns", json=spec) as resp:
            created = await resp.json()
            assert resp.status == 201, created
        async with session.get(f"{instance.base}/api/v1/campaigns/{created['id']}/calls") as resp:
            calls = (await resp.json())["calls"]
    return int(min(c["id"] for c in calls))

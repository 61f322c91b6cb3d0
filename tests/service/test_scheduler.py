"""Scheduled jobs run in one instance only, and another takes over when it goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from zoneinfo import ZoneInfo

import asyncpg

from service.db.pool import create_pool
from service.scheduler import Scheduler, daily
from tests.conftest import Database
from tests.support.tcp_proxy import DatabaseProxy

PARIS = ZoneInfo("Europe/Paris")


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def instance(pool: asyncpg.Pool, ran: list[str], name: str) -> Scheduler:
    scheduler = Scheduler(pool, PARIS, elect_every_s=0.05)

    async def job() -> None:
        ran.append(name)

    scheduler.add("test.job", job, daily(3, 30, PARIS))
    return scheduler


async def test_one_leader_runs_the_jobs_and_another_takes_over(
    db: asyncpg.Connection, database: Database
) -> None:
    ran: list[str] = []
    pool_a = await create_pool(database.dsn, min_size=1, max_size=3)
    pool_b = await create_pool(database.dsn, min_size=1, max_size=3)
    a, b = instance(pool_a, ran, "a"), instance(pool_b, ran, "b")
    try:
        await a.start()
        assert await until(lambda: a.is_leader)
        await b.start()
        await asyncio.sleep(0.5)  # ten election rounds for b
        assert not b.is_leader
        assert ran == ["a"]  # run on election, once, by the leader only
        assert b.next_run("test.job") is not None  # b has the job, and skips it

        await a.stop()
        assert await until(lambda: b.is_leader)
        assert await until(lambda: ran == ["a", "b"])
    finally:
        await a.stop()
        await b.stop()
        await pool_a.close()
        await pool_b.close()


async def test_a_leader_that_loses_its_database_steps_down(
    db: asyncpg.Connection, database: Database
) -> None:
    proxy = DatabaseProxy(database.dsn)
    await proxy.start()
    ran: list[str] = []
    pool_a = await create_pool(proxy.dsn, min_size=1, max_size=3, command_timeout=2)
    pool_b = await create_pool(database.dsn, min_size=1, max_size=3)
    a, b = instance(pool_a, ran, "a"), instance(pool_b, ran, "b")
    try:
        await a.start()
        assert await until(lambda: a.is_leader)
        await b.start()
        await proxy.cut()  # a's session ends: its lock is freed on the server
        assert await until(lambda: not a.is_leader)
        assert await until(lambda: b.is_leader)
        assert await until(lambda: ran == ["a", "b"])
        await proxy.restore()
        await asyncio.sleep(0.5)
        assert not a.is_leader  # b still leads: never two leaders
    finally:
        await a.stop()
        await b.stop()
        await pool_a.close()
        await pool_b.close()
        await proxy.cut()

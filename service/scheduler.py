"""Scheduled jobs (APScheduler 3.x), run by one instance only: the elected leader.

Every instance runs a :class:`Scheduler`; the one holding a PostgreSQL advisory lock (on a
connection it keeps) is the leader and runs the jobs, the others skip them. If the leader
stops or loses its database, its session ends, the lock is freed, and another instance
takes it at its next election round. Jobs are declared with stable names; daily ones fire at
a local wall-clock time in the municipality's zone (03:30 is outside both DST changes'
missing or repeated hour, so it fires exactly once every day) and also run when an instance
becomes leader, so a run missed while no instance was up is caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from service.db.errors import is_unavailable
from service.db.queries import ping, try_advisory_lock

log = logging.getLogger(__name__)

# pg advisory lock key of the leader ("decroche-leader" as a stable 63-bit number).
LEADER_LOCK = 0x6465_6372_6F63_6865

Job = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    run: Job
    trigger: BaseTrigger
    on_election: bool


def daily(hour: int, minute: int, tz: ZoneInfo) -> CronTrigger:
    """A trigger firing once a day at ``hour:minute`` local time in ``tz``."""
    return CronTrigger(hour=hour, minute=minute, timezone=tz)


def weekly(weekday: int, hour: int, minute: int, tz: ZoneInfo) -> CronTrigger:
    """A trigger firing once a week, on ``weekday`` (Monday = 0) at ``hour:minute`` local."""
    return CronTrigger(day_of_week=weekday, hour=hour, minute=minute, timezone=tz)


def instance_id() -> str:
    """This process among the service's instances (for the record of who claimed what)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def every(seconds: float, tz: ZoneInfo) -> IntervalTrigger:
    """A trigger firing every ``seconds`` (a polling job: what is due is in the database)."""
    return IntervalTrigger(seconds=seconds, timezone=tz)


class Scheduler:
    """The jobs of one instance, run only while it is the leader."""

    def __init__(self, pool: asyncpg.Pool, tz: ZoneInfo, *, elect_every_s: float = 15.0) -> None:
        self._pool = pool
        self._tz = tz
        self._elect_every_s = elect_every_s
        self._jobs: dict[str, JobSpec] = {}
        self._scheduler = AsyncIOScheduler(timezone=tz)
        self._leader: asyncpg.pool.PoolConnectionProxy | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.runs: dict[str, int] = {}

    @property
    def is_leader(self) -> bool:
        return self._leader is not None

    def add(self, name: str, run: Job, trigger: BaseTrigger, *, on_election: bool = True) -> None:
        """Declare a job; ``on_election`` also runs it when this instance becomes leader."""
        self._jobs[name] = JobSpec(name, run, trigger, on_election)
        self._running[name] = asyncio.Lock()

    async def start(self) -> None:
        for spec in self._jobs.values():
            self._scheduler.add_job(
                self._run_if_leader,
                spec.trigger,
                args=[spec.name],
                id=spec.name,
                name=spec.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=3600,
            )
        self._scheduler.start()
        self._task = asyncio.create_task(self._elect_forever(), name="scheduler-election")

    async def stop(self) -> None:
        """Stop running jobs and give up leadership (idempotent)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._resign()

    def next_run(self, name: str) -> object:
        job = self._scheduler.get_job(name)
        return job.next_run_time if job else None

    async def run(self, name: str) -> None:
        """Run a job now, whoever leads; skipped if this instance is already running it."""
        lock = self._running[name]
        if lock.locked():
            return
        async with lock:
            try:
                await self._jobs[name].run()
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("job %s: database unavailable; the next run retries", name)
                else:
                    log.exception("job %s failed", name)
                return
        self.runs[name] = self.runs.get(name, 0) + 1

    async def _run_if_leader(self, name: str) -> None:
        if self.is_leader:
            await self.run(name)

    async def _elect_forever(self) -> None:
        while True:
            try:
                if self._leader is None:
                    if await self._try_lead():
                        log.info("this instance leads the scheduled jobs")
                        for spec in self._jobs.values():
                            if spec.on_election:
                                # In the background: a long catch-up must not hold up the
                                # leader's liveness checks.
                                task = asyncio.create_task(self.run(spec.name))
                                self._background.add(task)
                                task.add_done_callback(self._background.discard)
                else:
                    await ping(self._leader, limit_s=5)
            except Exception as exc:
                if not is_unavailable(exc) and not isinstance(exc, TimeoutError):
                    log.exception("leader election failed")
                await self._resign()
            await asyncio.sleep(self._elect_every_s)

    async def _try_lead(self) -> bool:
        conn = await self._pool.acquire()
        try:
            if await try_advisory_lock(conn, LEADER_LOCK):
                self._leader = conn
                return True
        except BaseException:
            await self._pool.release(conn)
            raise
        await self._pool.release(conn)
        return False

    async def _resign(self) -> None:
        conn, self._leader = self._leader, None
        if conn is not None:
            # Releasing resets the session (asyncpg runs pg_advisory_unlock_all), and a dead
            # connection is discarded by the pool: either way the lock is gone.
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

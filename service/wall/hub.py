"""The wall hub of one instance: the latest snapshot, rebuilt on change, pushed to streams.

Changes come from PostgreSQL (``LISTEN decroche_calls``: every transaction that writes calls
notifies, whichever instance received the event), so all instances' walls follow the same
database. A burst of changes is coalesced: at most one rebuild per ``min_interval_s``.
The snapshot is also rebuilt every ``refresh_s`` (a wait grows, a service opens) and just
after local midnight (the day's counters start again). Subscribers get the latest snapshot
only; a slow screen skips intermediate ones rather than queueing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from service.db.errors import is_unavailable
from service.db.queries import ping
from service.municipality.calendar import Calendar
from service.wall.model import StableSnapshot, WallSnapshot
from service.wall.queries import CHANNEL
from service.wall.rules import next_midnight
from service.wall.snapshot import build_snapshot, comparable

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# What a stream's queue holds: the latest snapshot, or None to end the stream.
Pushed = asyncio.Queue[WallSnapshot | None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WallHub:
    def __init__(
        self,
        pool: asyncpg.Pool,
        calendar: Calendar,
        *,
        min_interval_s: float = 0.25,
        refresh_s: float = 5.0,
        clock: Clock = _utcnow,
        on_clients: Callable[[int], None] | None = None,
        on_rebuild: Callable[[float], None] | None = None,
    ) -> None:
        self._pool = pool
        self._calendar = calendar
        self._min_interval_s = min_interval_s
        self._refresh_s = refresh_s
        self._clock = clock
        self._on_clients = on_clients
        self._on_rebuild = on_rebuild
        self._dirty = asyncio.Event()
        self._subscribers: set[Pushed] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self.snapshot: WallSnapshot | None = None
        self._comparable: StableSnapshot | None = None
        self.rebuilds = 0

    async def start(self) -> None:
        try:
            await self.rebuild()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
        self._tasks = [
            asyncio.create_task(self._rebuild_forever(), name="wall-rebuild"),
            asyncio.create_task(self._listen_forever(), name="wall-listen"),
            asyncio.create_task(self._tick_forever(), name="wall-tick"),
        ]

    async def stop(self) -> None:
        self.close_streams()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._unlisten()

    def changed(self) -> None:
        """Something was written: rebuild soon."""
        self._dirty.set()

    def subscribe(self) -> Pushed:
        queue: Pushed = asyncio.Queue(maxsize=1)
        self._subscribers.add(queue)
        self._count()
        return queue

    def unsubscribe(self, queue: Pushed) -> None:
        self._subscribers.discard(queue)
        self._count()

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def close_streams(self) -> None:
        """Tell every stream to end (the service is stopping)."""
        for queue in self._subscribers:
            self._offer(queue, None)

    async def rebuild(self) -> WallSnapshot:
        """Build the snapshot now; publish it if anything but the clock changed."""
        started = time.perf_counter()
        snapshot = await build_snapshot(self._pool, self._calendar, self._clock())
        self.rebuilds += 1
        if self._on_rebuild is not None:
            self._on_rebuild(time.perf_counter() - started)
        key = comparable(snapshot)
        self.snapshot = snapshot
        if key != self._comparable:
            self._comparable = key
            for queue in self._subscribers:
                self._offer(queue, snapshot)
        return snapshot

    @staticmethod
    def _offer(queue: Pushed, item: WallSnapshot | None) -> None:
        # Latest wins: drop what the client has not taken yet.
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
        queue.put_nowait(item)

    def _count(self) -> None:
        if self._on_clients is not None:
            self._on_clients(len(self._subscribers))

    async def _rebuild_forever(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = time.monotonic()
            try:
                await self.rebuild()
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("wall snapshot failed")
                self._dirty.set()  # try again after the pause
                await asyncio.sleep(1.0)
            # Coalescing: changes during the pause are folded into the next rebuild.
            await asyncio.sleep(max(0.0, self._min_interval_s - (time.monotonic() - started)))

    async def _tick_forever(self) -> None:
        while True:
            now = self._clock()
            to_midnight = (next_midnight(now, self._calendar.tz) - now).total_seconds()
            await asyncio.sleep(min(self._refresh_s, max(0.0, to_midnight) + 0.05))
            self._dirty.set()

    async def _listen_forever(self) -> None:
        """Keep a LISTEN connection; after a reconnection, rebuild (changes may be missed)."""
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    await self._unlisten()
                    conn = await self._pool.acquire()
                    self._listener = conn
                    await conn.add_listener(CHANNEL, self._notified)
                    self._dirty.set()
                else:
                    await ping(self._listener, 5)
            except Exception as exc:
                if not is_unavailable(exc) and not isinstance(exc, TimeoutError):
                    log.exception("wall listener failed")
                await self._unlisten()
            await asyncio.sleep(2.0)

    def _notified(self, *_args: object) -> None:
        self._dirty.set()

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.remove_listener(CHANNEL, self._notified)
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

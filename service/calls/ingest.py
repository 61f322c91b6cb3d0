"""The one core entry point for every source: append events durably, with group commit.

Handlers call :meth:`Ingestor.ingest` and answer only once it returns: the events are then
committed (a 2xx means « stored »). Concurrent deliveries are gathered into one statement
(« group commit »): under load one commit serves many callbacks, which is what lets a small
machine keep up with a switchboard's bursts without weakening the guarantee.

The call rows are derived from the events by the :mod:`service.calls.folder`, woken after
each commit; readers ask it to catch up first, so they never see a call older than the
events already acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from service.calls.model import Event
from service.calls.partitions import Partitions
from service.calls.queries import append_events
from service.db.errors import StorageUnavailable, describe, is_unavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    new: int
    duplicate: int


@dataclass
class _Item:
    events: Sequence[tuple[Event, dict[str, Any]]]
    future: asyncio.Future[IngestResult]
    queued_at: float = field(default_factory=time.perf_counter)


class Ingestor:
    """Gathers concurrent ingest requests into shared statements.

    ``workers`` batches may be in flight at once, each carrying up to ``max_batch``
    requests; several commits in flight let PostgreSQL flush their WAL together.
    ``on_commit`` is called after each successful commit (it wakes the folder).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        workers: int = 4,
        max_batch: int = 256,
        on_batch: Callable[[int, float], None] | None = None,
        on_commit: Callable[[], None] | None = None,
        acquire_timeout: float = 5.0,
    ) -> None:
        self._pool = pool
        self._on_commit = on_commit
        self._queues: list[asyncio.Queue[_Item]] = [asyncio.Queue() for _ in range(workers)]
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._acquire_timeout = acquire_timeout
        self._tasks: list[asyncio.Task[None]] = []
        self._partitions = Partitions()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(q), name=f"ingest-{i}")
            for i, q in enumerate(self._queues)
        ]

    async def stop(self, grace_s: float = 10.0) -> None:
        # Let what is queued or in flight be committed (senders are waiting), then stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                for q in self._queues:
                    await q.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _shard(self, event: Event) -> int:
        # One call's events go to one shard: its deliveries stay in order of arrival.
        return zlib.crc32(event.call_key.encode()) % len(self._queues)

    async def ingest(self, events: Sequence[tuple[Event, dict[str, Any]]]) -> IngestResult:
        """Store events with their raw payloads; returns once committed.

        Raises :class:`StorageUnavailable` when the database cannot be reached.
        """
        if not events:
            return IngestResult(0, 0)
        loop = asyncio.get_running_loop()
        by_shard: dict[int, list[tuple[Event, dict[str, Any]]]] = {}
        for pair in events:
            by_shard.setdefault(self._shard(pair[0]), []).append(pair)
        futures = []
        for shard, part in by_shard.items():
            future: asyncio.Future[IngestResult] = loop.create_future()
            self._queues[shard].put_nowait(_Item(part, future))
            futures.append(future)
        if len(futures) == 1:
            return await futures[0]
        results = await asyncio.gather(*futures)
        return IngestResult(sum(r.new for r in results), sum(r.duplicate for r in results))

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        # Each worker keeps its own connection: returning it to the pool after every batch
        # would cost a reset round trip each time.
        holder = _Held(self._pool, self._acquire_timeout)
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < self._max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
                try:
                    await self._commit(holder, batch)
                except Exception as exc:  # a bug: the senders get a 500, the worker lives on
                    log.exception("ingest worker error")
                    for item in batch:
                        _settle(item, exc=exc)
                finally:
                    for _ in batch:
                        queue.task_done()
        finally:
            await holder.release()

    async def _commit(self, holder: _Held, batch: list[_Item]) -> None:
        pairs = [pair for item in batch for pair in item.events]
        try:
            new = await append_events(await holder.get(), pairs, self._partitions)
        except Exception as exc:
            if is_unavailable(exc):
                await holder.discard()
                why = describe(exc)
                log.warning("%d delivery(ies) refused with 503: %s", len(batch), why)
                for item in batch:
                    _settle(item, exc=StorageUnavailable(why))
            elif len(batch) > 1:
                # One bad item must not sink the others: retry each on its own.
                for item in batch:
                    await self._commit(holder, [item])
            else:
                log.exception("ingest failed")
                _settle(batch[0], exc=exc)
            return
        if self._on_commit is not None and new:
            self._on_commit()
        if self._on_batch is not None:
            self._on_batch(len(batch), time.perf_counter() - batch[0].queued_at)
        seen: set[tuple[str, str, str]] = set()
        for item in batch:
            keys = {(e.source, e.call_key, e.dedup_key) for e, _ in item.events}
            fresh = len((keys & new) - seen)
            seen |= keys
            _settle(item, result=IngestResult(new=fresh, duplicate=len(keys) - fresh))


class _Held:
    """One pool connection kept across batches; dropped when it breaks, retaken when needed."""

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None

    async def get(self) -> asyncpg.Connection:
        if self._conn is not None and _closed(self._conn):
            # Closed by the server since the last batch (a restart): the pool has already
            # taken it back. Failing this batch on it would refuse deliveries for nothing.
            await self.discard()
        if self._conn is None:
            self._conn = await self._pool.acquire(timeout=self._timeout)
        return self._conn

    async def discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # The pool may already have taken a broken connection back: nothing to undo then.
            with contextlib.suppress(Exception):
                conn.terminate()
            with contextlib.suppress(Exception):
                await self._pool.release(conn)

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await self._pool.release(conn)


def _closed(conn: asyncpg.Connection) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # a pool proxy the pool detached when it closed
        return True


def _settle(
    item: _Item, *, result: IngestResult | None = None, exc: BaseException | None = None
) -> None:
    if item.future.done():  # the sender went away (request cancelled)
        return
    if exc is not None:
        item.future.set_exception(exc)
    else:
        assert result is not None
        item.future.set_result(result)

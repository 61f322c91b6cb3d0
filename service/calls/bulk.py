"""The core's way in for file imports, beside :mod:`service.calls.ingest` (the webhooks').

A reader (``webhooks/files.py``) hands over batches of parsed lines in file order; the
:class:`BulkWriter` stores each as one transaction — its events, its refused lines (the one
quarantine) and the position reached in the file, so an interrupted import resumes where it
stopped — and writes the calls those events fold to beside. Parsing (in a worker process),
storing and folding overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import TracebackType
from typing import Any, NamedTuple

import asyncpg

from service.calls.bulk_queries import (
    HeldCalls,
    append_batch,
    held_calls,
    saved_position,
    write_held,
)
from service.calls.model import Event
from service.calls.partitions import Partitions, months_of
from service.calls.queries import Refusal, event_rows, fold_pending, quarantine
from service.privacy import Pseudonymiser

KEEP_REASONS = 20

Progress = Callable[[int, int], None]  # (bytes read, lines read) since the last call


class Position(NamedTuple):
    """Where an import stands in a file, kept with the batch that reached it."""

    path: str  # the file's real path: where the position is kept
    fingerprint: str  # its first line's: another file at the same path starts over
    byte_offset: int
    line_no: int


@dataclass
class ImportReport:
    """What an import did."""

    lines: int = 0  # lines (rows) read in this run
    new: int = 0  # events stored
    duplicates: int = 0  # events already stored (a second import)
    refused: int = 0  # lines quarantined
    calls: int = 0  # calls folded
    resumed_from: int | None = None  # the line an interrupted import resumed after
    rotations: int = 0
    reasons: list[str] = field(default_factory=list)  # the first refusals, for the user

    def refuse(self, reason: str) -> None:
        self.refused += 1
        if len(self.reasons) < KEEP_REASONS:
            self.reasons.append(reason)


@dataclass(slots=True)
class Parsed:
    """One batch of lines, parsed, in the form it is stored (:func:`prepare`)."""

    rows: str  # the events, as the JSON parameter of the appending statement
    events: int  # how many (each delivery once)
    repeated: int  # lines left out: the same delivery earlier in the batch
    lines: int  # lines read, blank ones excepted
    refused: list[Refusal] = field(default_factory=list)  # reason, line, body
    calls: HeldCalls | None = None  # the calls these events belong to, folded
    months: frozenset[date] = frozenset()  # where new calls may go (their partitions)


def prepare(
    source: str,
    pairs: Sequence[tuple[Event, dict[str, Any]]],
    known: Mapping[str, Collection[Event]],
    pseudonymise: Pseudonymiser,
    *,
    lines: int,
    repeated: int,
    refused: list[Refusal],
) -> Parsed:
    """A batch ready to store: its events with their raw payloads (``pairs``, each delivery
    once) and the calls they touch, folded from every event held for each (``known``). Pure:
    runs in the parsing process."""
    return Parsed(
        rows=event_rows(pairs),
        events=len(pairs),
        repeated=repeated,
        lines=lines,
        refused=refused,
        calls=held_calls(source, known, pseudonymise),
        months=frozenset(months_of(e for e, _ in pairs)),
    )


class BulkWriter:
    """Stores parsed batches in order while the next ones are parsed, and writes their
    calls beside. Use it as an async context manager (its tasks stop on the way out).

    Each batch is one transaction: its events, its refused lines and the file position
    reached, so the position never runs ahead of what is stored. Its calls are written
    once it is stored.
    """

    FOLD_BATCH = 2000  # calls read back per transaction at the end

    def __init__(
        self,
        pool: asyncpg.Pool,
        source: str,
        pseudonymise: Pseudonymiser,
        progress: Progress | None = None,
    ) -> None:
        self.report = ImportReport()
        self._pool = pool
        self._source = source
        self._pseudonymise = pseudonymise
        self._progress = progress
        self._queue: asyncio.Queue[tuple[Parsed, Position | None, int]]
        self._queue = asyncio.Queue(maxsize=3)
        self._stored: list[HeldCalls] = []
        self._partitions = Partitions()
        self._stored_now = asyncio.Event()
        self._folding = asyncio.Lock()
        self._done = False
        # One storing connection: two were slower here, waiting on each other's marks of
        # the same calls.
        self._tasks = [
            asyncio.create_task(self._store_forever()),
            asyncio.create_task(self._fold_forever()),
        ]

    async def __aenter__(self) -> BulkWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def saved_position(self, path: str) -> Position | None:
        """Where a previous import of the file at ``path`` (its real path) stopped."""
        saved = await saved_position(self._pool, self._source, path)
        return Position(*saved) if saved is not None else None

    async def put(self, batch: Parsed, position: Position | None, size: int = 0) -> None:
        """Queue a batch (``size``: the bytes it covers, for the progress bar); waits while
        three are already waiting, so memory stays bounded."""
        await self._until(self._queue.put((batch, position, size)))

    async def flush(self) -> None:
        """Return once everything queued is stored and folded."""
        await self._until(self._queue.join())
        await self._fold_all(everything=True)

    async def close(self) -> None:
        """Stop storing and folding (what is not flushed yet is left)."""
        self._done = True
        self._stored_now.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _until(self, step: Coroutine[Any, Any, None]) -> None:
        """Run ``step`` unless the writer fails first; its error is raised here, in the
        reader (a queue whose writer died would otherwise wait forever)."""
        waiting = asyncio.ensure_future(step)
        await asyncio.wait([waiting, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                waiting.cancel()
                await task
        await waiting

    async def _store_forever(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._store(*item)
            finally:
                self._queue.task_done()
            self._stored_now.set()

    async def _store(self, batch: Parsed, position: Position | None, size: int) -> None:
        async with self._pool.acquire() as conn:
            # Outside the batch's transaction: making a partition locks the whole table.
            await self._partitions.ensure(conn, batch.months)
            if batch.refused:
                async with conn.transaction():
                    await quarantine(conn, self._source, "text/plain", batch.refused)
                    new = await append_batch(conn, batch.rows, self._source, position)
            else:
                # One statement, so one round trip and its own transaction.
                new = await append_batch(conn, batch.rows, self._source, position)
        self._count(batch, new)
        if batch.calls is not None and batch.calls.keys:
            self._stored.append(batch.calls)
        if self._progress is not None:
            self._progress(size, batch.lines)

    def _count(self, batch: Parsed, new: int) -> None:
        report = self.report
        report.lines += batch.lines
        report.new += new
        report.duplicates += batch.events - new + batch.repeated
        for reason, _, _ in batch.refused:
            report.refuse(reason)

    async def _fold_forever(self) -> None:
        while not self._done:
            await self._stored_now.wait()
            self._stored_now.clear()
            await self._fold_all()

    async def _fold_all(self, everything: bool = False) -> None:
        """Write the calls of the batches stored since the last time; with ``everything``,
        also every other call still marked (read back)."""
        # One folder at a time: a flush must not find the marks taken by the background
        # fold (skipped as locked) and return before those calls are written.
        async with self._folding:
            while self._stored:
                calls = self._stored.pop(0)
                async with self._pool.acquire() as conn, conn.transaction():
                    self.report.calls += await write_held(conn, calls, self._pseudonymise)
            # Anything else marked: calls forgotten before they were folded, or held
            # elsewhere. Not while storing goes on: the calls just stored would be read back
            # here rather than folded from the events held.
            while everything:
                async with self._pool.acquire() as conn, conn.transaction():
                    n = await fold_pending(conn, self.FOLD_BATCH, self._pseudonymise)
                self.report.calls += n
                if n < self.FOLD_BATCH:
                    return

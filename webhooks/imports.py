"""File imports: an Asterisk ``queue_log`` (``decroche import asterisk FILE [--follow]``)
and call-detail records as CSV (``decroche import csv FILE``).

The same adapters as the webhooks, stored in large batches. Each batch is one transaction
with the position reached in the file, so an interrupted import resumes where it stopped;
lines are identified by their content, so importing a file again changes nothing. Refused
lines go to quarantine with their line number. ``--follow`` keeps reading a live log, across
rotation (the file renamed and a new one created, or the file truncated in place).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import os
import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import asyncpg

from service.calls.partitions import Partitions
from service.calls.queries import (
    INSERT_EVENTS,
    INSERT_EVENTS_FAST,
    HeldCalls,
    fold_pending,
    quarantine,
    write_held,
)
from service.privacy import Pseudonymiser
from webhooks import asterisk, cdr
from webhooks.import_batches import (
    CdrSpelling,
    Parsed,
    QueueLogSpelling,
    Spelling,
    WorkerParser,
)

BATCH = 2000
KEEP_REASONS = 20
_PIPE_LINE = re.compile(rb"^\s*\d{9,11}(\.\d+)?\|")

Progress = Callable[[int, int], None]  # (bytes read, lines read) since the last call
Position = tuple[str, str, int, int]  # path, fingerprint, byte offset, line number


class UnreadableFile(ValueError):
    """The file cannot be imported at all (missing columns, not a queue_log)."""


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


# The events of a batch and the position reached in the file, written together.
_POSITION = """, position AS (
    INSERT INTO import_files (source, path, fingerprint, byte_offset, line_no)
    SELECT $2, $3, $4, $5, $6 WHERE $3::text IS NOT NULL
    ON CONFLICT (source, path) DO UPDATE SET
        fingerprint = EXCLUDED.fingerprint, byte_offset = EXCLUDED.byte_offset,
        line_no = EXCLUDED.line_no, updated_at = now()
)
SELECT count(*) FROM ins
"""
_APPEND = INSERT_EVENTS + _POSITION
_APPEND_FAST = INSERT_EVENTS_FAST + _POSITION


class _Writer:
    """Stores parsed batches in order while the next ones are parsed, and writes their
    calls beside: parsing (in the worker process), storing and folding overlap.

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
        report: ImportReport,
        progress: Progress | None,
    ) -> None:
        self._pool = pool
        self._source = source
        self._pseudonymise = pseudonymise
        self._report = report
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

    async def put(self, batch: Parsed, position: Position | None, size: int = 0) -> None:
        """Queue a batch (``size``: the bytes it covers, for the progress bar); waits while
        three are already waiting, so memory stays bounded."""
        await self._until(self._queue.put((batch, position, size)))

    async def flush(self) -> None:
        """Return once everything queued is stored and folded."""
        await self._until(self._queue.join())
        await self._fold_all(everything=True)

    async def close(self) -> None:
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
                    new = await self._append(conn, batch, position)
            else:
                # One statement, so one round trip and its own transaction.
                new = await self._append(conn, batch, position)
        self._report.lines += batch.lines
        self._report.new += new
        self._report.duplicates += batch.events - new + batch.repeated
        for reason, _, _ in batch.refused:
            self._report.refuse(reason)
        if batch.calls is not None and batch.calls.keys:
            self._stored.append(batch.calls)
        if self._progress is not None:
            self._progress(size, batch.lines)

    async def _append(
        self, conn: asyncpg.Connection, batch: Parsed, position: Position | None
    ) -> int:
        args = (batch.rows, self._source, *(position or (None,) * 4))
        try:
            if conn.is_in_transaction():  # with refused lines: a savepoint
                async with conn.transaction():
                    new = await conn.fetchval(_APPEND_FAST, *args)
            else:
                new = await conn.fetchval(_APPEND_FAST, *args)
        except asyncpg.UniqueViolationError:
            # Some of these events were stored by another writer meanwhile.
            new = await conn.fetchval(_APPEND, *args)
        return int(new)

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
                    self._report.calls += await write_held(conn, calls, self._pseudonymise)
            # Anything else marked: calls forgotten before they were folded, or held
            # elsewhere. Not while storing goes on: the calls just stored would be read back
            # here rather than folded from the events held.
            while everything:
                async with self._pool.acquire() as conn, conn.transaction():
                    n = await fold_pending(conn, self.FOLD_BATCH, self._pseudonymise)
                self._report.calls += n
                if n < self.FOLD_BATCH:
                    return


# --- Asterisk queue_log -------------------------------------------------------------------


class _LogFile:
    """A queue_log being read: its handle, position and spelling (file or table export)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key = os.path.realpath(path)  # where the position is kept
        self.handle: IO[bytes] = path.open("rb")
        self.inode = os.fstat(self.handle.fileno()).st_ino
        self.offset = 0
        self.line_no = 0
        self.fingerprint: str | None = None
        self.header: list[str] | None = None  # column names of a table export
        self.delimiter = "|"

    def close(self) -> None:
        self.handle.close()

    def identify(self) -> bool:
        """Read the first line to know the file and its spelling; False while it is not
        complete yet (a live file just created)."""
        self.handle.seek(0)
        first = self.handle.readline()
        if not first.endswith(b"\n"):
            self.handle.seek(0)
            return False
        self.fingerprint = hashlib.blake2b(first, digest_size=16).hexdigest()
        if _PIPE_LINE.match(first):
            self.header = None
            self.handle.seek(0)
            return True
        text = first.decode("utf-8-sig", errors="replace").strip()
        for delimiter in ("\t", ";", ",", "|"):
            names = [n.strip().strip('"').lower() for n in text.split(delimiter)]
            if "callid" in names and "event" in names:
                self.header, self.delimiter = names, delimiter
                self.offset, self.line_no = len(first), 1
                return True
        raise UnreadableFile(
            f"{self.path}: neither a queue_log file (epoch|callid|queue|agent|EVENT|…) nor a "
            f"queue_log table export with a header naming callid and event"
        )

    def replaced(self) -> bool:
        """True when the file's first line is no longer the one it had: emptied in place
        and written again between two looks."""
        head = os.pread(self.handle.fileno(), 4096, 0)
        end = head.find(b"\n")
        if end < 0:
            return bool(self.fingerprint) and len(head) < 4096
        first = head[: end + 1]
        return hashlib.blake2b(first, digest_size=16).hexdigest() != self.fingerprint

    def lines(self, limit: int, final: bool) -> Iterator[tuple[int, bytes]]:
        """Up to ``limit`` complete lines from the position, with their numbers. A last line
        without its newline is left for later unless ``final`` (the writer is done with it)."""
        for _ in range(limit):
            raw = self.handle.readline()
            if not raw:
                return
            if not raw.endswith(b"\n") and not final:
                self.handle.seek(self.offset)
                return
            self.offset += len(raw)
            self.line_no += 1
            yield self.line_no, raw

    def spelling(self, tz: ZoneInfo) -> QueueLogSpelling:
        header = tuple(self.header) if self.header is not None else None
        return QueueLogSpelling(tz, header, self.delimiter)


async def _saved_position(pool: asyncpg.Pool, source: str, path: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT fingerprint, byte_offset, line_no FROM import_files "
        "WHERE source = $1 AND path = $2",
        source,
        path,
    )


async def _parse(
    parser: WorkerParser, name: str, numbered: list[tuple[int, bytes]], spelling: Spelling
) -> Parsed:
    return await asyncio.wrap_future(parser.submit(name, numbered, spelling, datetime.now(UTC)))


async def import_asterisk(
    pool: asyncpg.Pool,
    path: Path,
    tz: ZoneInfo,
    pseudonymise: Pseudonymiser,
    *,
    follow: bool = False,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    poll_s: float = 0.5,
    batch_size: int = BATCH,
) -> ImportReport:
    """Import a queue_log file (resuming where a previous run stopped); with ``follow``,
    keep reading it as it grows, across rotation, until ``stop`` is set."""
    report = ImportReport()
    log = _LogFile(path)
    parser = WorkerParser(asterisk.SOURCE, pseudonymise)
    writer = _Writer(pool, asterisk.SOURCE, pseudonymise, report, progress)

    async def read(limit: int, final: bool) -> tuple[Parsed, int]:
        """The next lines, parsed, and how many bytes they were."""
        start = log.offset
        numbered = list(log.lines(limit, final))
        parsed = await _parse(parser, log.path.name, numbered, log.spelling(tz))
        return parsed, log.offset - start

    try:
        while not log.identify():
            if not follow or await _stopped(stop, poll_s):
                return report
        saved = await _saved_position(pool, asterisk.SOURCE, log.key)
        size = os.fstat(log.handle.fileno()).st_size
        if saved and saved["fingerprint"] == log.fingerprint and saved["byte_offset"] <= size:
            log.handle.seek(saved["byte_offset"])
            log.offset, log.line_no = saved["byte_offset"], saved["line_no"]
            report.resumed_from = log.line_no
        while True:
            batch, read_bytes = await read(batch_size, not follow)
            if read_bytes:
                assert log.fingerprint is not None
                position = (log.key, log.fingerprint, log.offset, log.line_no)
                await writer.put(batch, position, read_bytes)
                continue
            # At the end of what is written: everything read is stored and folded (a
            # followed log shows its calls live), then rotated, truncated or waiting.
            await writer.flush()
            if not follow:
                return report
            if _rotated(log):
                await writer.put((await read(1, True))[0], None)  # an unfinished line
                log.close()
                log = _LogFile(path)
                report.rotations += 1
                while not log.identify():
                    if await _stopped(stop, poll_s):
                        return report
                continue
            if os.stat(path).st_size < log.offset or log.replaced():
                # Truncated in place (copytruncate), perhaps already written again.
                log.handle.seek(0)
                log.offset = log.line_no = 0
                report.rotations += 1
                log.identify()
                continue
            if await _stopped(stop, poll_s):
                return report
    finally:
        await writer.close()
        parser.close()
        log.close()


def _rotated(log: _LogFile) -> bool:
    """True when the path now names another file (renamed away and created again)."""
    try:
        return os.stat(log.path).st_ino != log.inode
    except FileNotFoundError:
        return False  # renamed, not yet created again: keep waiting on the old one


async def _stopped(stop: asyncio.Event | None, wait_s: float) -> bool:
    if stop is None:
        await asyncio.sleep(wait_s)
        return False
    try:
        await asyncio.wait_for(stop.wait(), wait_s)
    except TimeoutError:
        return False
    return True


# --- CDR as CSV ---------------------------------------------------------------------------


def _sniff(header: str) -> str:
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d])


async def import_cdr_csv(
    pool: asyncpg.Pool,
    path: Path,
    tz: ZoneInfo,
    pseudonymise: Pseudonymiser,
    *,
    progress: Progress | None = None,
    batch_size: int = BATCH,
) -> ImportReport:
    """Import call-detail records from a CSV file with the webhook's column names
    (separated by commas, semicolons or tabs; UTF-8, with or without BOM; one record per
    line). Unknown columns are ignored."""
    report = ImportReport()
    parser = WorkerParser(cdr.SOURCE, pseudonymise)
    writer = _Writer(pool, cdr.SOURCE, pseudonymise, report, progress)
    try:
        await _read_cdr_csv(path, tz, parser, writer, batch_size)
    finally:
        await writer.close()
        parser.close()
    return report


async def _read_cdr_csv(
    path: Path, tz: ZoneInfo, parser: WorkerParser, writer: _Writer, batch_size: int
) -> None:
    with path.open("rb") as handle:
        first = handle.readline()
        header = first.decode("utf-8-sig", errors="replace")
        delimiter = _sniff(header)
        names = [n.strip().lower() for n in next(csv.reader([header], delimiter=delimiter))]
        missing = [n for n in ("id", "started_at") if n not in names]
        if missing:
            raise UnreadableFile(
                f"{path}: the header has no column {', '.join(missing)} "
                f"(expected columns: {', '.join(cdr.FIELDS)})"
            )
        spelling = CdrSpelling(tz, tuple(names), delimiter)
        numbered: list[tuple[int, bytes]] = []
        read = len(first)
        for no, raw in enumerate(handle, start=2):
            numbered.append((no, raw))
            read += len(raw)
            if len(numbered) >= batch_size:
                await writer.put(await _parse(parser, path.name, numbered, spelling), None, read)
                numbered, read = [], 0
        await writer.put(await _parse(parser, path.name, numbered, spelling), None, read)
        await writer.flush()

"""Reading files for import: an Asterisk ``queue_log`` (``decroche import asterisk FILE
[--follow]``) and call-detail records as CSV (``decroche import csv FILE``).

The lines are read in large batches, parsed by the same adapters as the webhooks (in a
worker process: :mod:`webhooks.import_batches`) and handed in file order to the core's
:class:`~service.calls.bulk.BulkWriter`, which stores each batch with the position reached
in the file: an interrupted import resumes where it stopped. Lines are identified by their
content, so importing a file again changes nothing. ``--follow`` keeps reading a live log,
across rotation (the file renamed and a new one created, or the file truncated in place).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from service.calls.bulk import BulkWriter, Parsed, Position
from service.privacy import Pseudonymiser
from webhooks import asterisk, cdr
from webhooks.import_batches import CdrSpelling, QueueLogSpelling, Spelling, WorkerParser

BATCH = 2000  # lines per batch: each is stored as one transaction
_PIPE_LINE = re.compile(rb"^\s*\d{9,11}(\.\d+)?\|")


class UnreadableFile(ValueError):
    """The file cannot be imported at all (missing columns, not a queue_log)."""


async def _parse(
    parser: WorkerParser, name: str, numbered: list[tuple[int, bytes]], spelling: Spelling
) -> Parsed:
    return await asyncio.wrap_future(parser.submit(name, numbered, spelling, datetime.now(UTC)))


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

    def resume(self, saved: Position | None) -> bool:
        """Go to where a previous import of this file stopped, if it was this file (same
        first line) and no longer than now; returns whether it did."""
        size = os.fstat(self.handle.fileno()).st_size
        if saved and saved.fingerprint == self.fingerprint and saved.byte_offset <= size:
            self.handle.seek(saved.byte_offset)
            self.offset, self.line_no = saved.byte_offset, saved.line_no
            return True
        return False

    def rewind(self) -> None:
        """Start again from the first line (the file was emptied in place)."""
        self.handle.seek(0)
        self.offset = self.line_no = 0

    def position(self) -> Position:
        """The position reached, to be stored with the lines read up to it."""
        assert self.fingerprint is not None
        return Position(self.key, self.fingerprint, self.offset, self.line_no)

    def truncated(self) -> bool:
        """True when the file was emptied in place (copytruncate), perhaps already written
        again: shorter than what was read, or with another first line."""
        return os.stat(self.path).st_size < self.offset or self.replaced()

    def replaced(self) -> bool:
        """True when the file's first line is no longer the one it had: emptied in place
        and written again between two looks."""
        head = os.pread(self.handle.fileno(), 4096, 0)
        end = head.find(b"\n")
        if end < 0:
            return bool(self.fingerprint) and len(head) < 4096
        first = head[: end + 1]
        return hashlib.blake2b(first, digest_size=16).hexdigest() != self.fingerprint

    def rotated(self) -> bool:
        """True when the path now names another file (renamed away and created again)."""
        try:
            return os.stat(self.path).st_ino != self.inode
        except FileNotFoundError:
            return False  # renamed, not yet created again: keep waiting on the old one

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


class _QueueLogReader:
    """One run over a queue_log: from where the last run stopped to its end, then, when
    following, on as it grows, across rotation, until stopped."""

    def __init__(
        self,
        store: BulkWriter,
        path: Path,
        tz: ZoneInfo,
        parser: WorkerParser,
        *,
        follow: bool,
        stop: asyncio.Event | None,
        poll_s: float,
        batch_size: int,
    ) -> None:
        self._store = store
        self._path = path
        self._tz = tz
        self._parser = parser
        self._follow = follow
        self._stop = stop
        self._poll_s = poll_s
        self._batch_size = batch_size
        self._log = _LogFile(path)

    async def run(self) -> None:
        try:
            if not await self._identified():
                return
            if self._log.resume(await self._store.saved_position(self._log.key)):
                self._store.report.resumed_from = self._log.line_no
            while True:
                await self._read_to_end()
                # At the end of what is written: everything read is stored and folded (a
                # followed log shows its calls live), then rotated, truncated or waiting.
                await self._store.flush()
                if not self._follow or not await self._after_end():
                    return
        finally:
            self._log.close()

    async def _identified(self) -> bool:
        """Wait for the file's first line; False when stopped first (at once when not
        following)."""
        while not self._log.identify():
            if not self._follow or await _stopped(self._stop, self._poll_s):
                return False
        return True

    async def _read(self, limit: int, final: bool) -> tuple[Parsed, int]:
        """The next lines, parsed, and how many bytes they were."""
        log = self._log
        start = log.offset
        numbered = list(log.lines(limit, final))
        parsed = await _parse(self._parser, log.path.name, numbered, log.spelling(self._tz))
        return parsed, log.offset - start

    async def _read_to_end(self) -> None:
        while True:
            batch, read_bytes = await self._read(self._batch_size, not self._follow)
            if not read_bytes:
                return
            await self._store.put(batch, self._log.position(), read_bytes)

    async def _after_end(self) -> bool:
        """Follow the file at the end of what is written: into the new file after a
        rotation, from the start after a truncation, or on after a pause. False once
        stopped."""
        if self._log.rotated():
            await self._store.put((await self._read(1, True))[0], None)  # an unfinished line
            self._log.close()
            self._log = _LogFile(self._path)
            self._store.report.rotations += 1
            return await self._identified()
        if self._log.truncated():
            self._log.rewind()
            self._store.report.rotations += 1
            self._log.identify()
            return True
        return not await _stopped(self._stop, self._poll_s)


async def _stopped(stop: asyncio.Event | None, wait_s: float) -> bool:
    if stop is None:
        await asyncio.sleep(wait_s)
        return False
    try:
        await asyncio.wait_for(stop.wait(), wait_s)
    except TimeoutError:
        return False
    return True


async def read_queue_log(
    store: BulkWriter,
    path: Path,
    tz: ZoneInfo,
    pseudonymise: Pseudonymiser,
    *,
    follow: bool = False,
    stop: asyncio.Event | None = None,
    poll_s: float = 0.5,
    batch_size: int = BATCH,
) -> None:
    """Read a queue_log file (or an export of the queue_log table) into ``store``, from
    where a previous import stopped; with ``follow``, keep reading it as it grows, across
    rotation, until ``stop`` is set."""
    parser = WorkerParser(asterisk.SOURCE, pseudonymise)
    try:
        reader = _QueueLogReader(
            store,
            path,
            tz,
            parser,
            follow=follow,
            stop=stop,
            poll_s=poll_s,
            batch_size=batch_size,
        )
        await reader.run()
    finally:
        parser.close()


# --- CDR as CSV ---------------------------------------------------------------------------


def _sniff(header: str) -> str:
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d])


def _cdr_spelling(path: Path, first: bytes, tz: ZoneInfo) -> CdrSpelling:
    """The spelling of a CDR file, from its header line."""
    header = first.decode("utf-8-sig", errors="replace")
    delimiter = _sniff(header)
    names = [n.strip().lower() for n in next(csv.reader([header], delimiter=delimiter))]
    missing = [n for n in ("id", "started_at") if n not in names]
    if missing:
        raise UnreadableFile(
            f"{path}: the header has no column {', '.join(missing)} "
            f"(expected columns: {', '.join(cdr.FIELDS)})"
        )
    return CdrSpelling(tz, tuple(names), delimiter)


async def read_cdr_csv(
    store: BulkWriter,
    path: Path,
    tz: ZoneInfo,
    pseudonymise: Pseudonymiser,
    *,
    batch_size: int = BATCH,
) -> None:
    """Read call-detail records from a CSV file with the webhook's column names (separated
    by commas, semicolons or tabs; UTF-8, with or without BOM; one record per line) into
    ``store``. Unknown columns are ignored."""
    parser = WorkerParser(cdr.SOURCE, pseudonymise)
    try:
        await _read_cdr_csv(store, path, tz, parser, batch_size)
    finally:
        parser.close()


async def _read_cdr_csv(
    store: BulkWriter, path: Path, tz: ZoneInfo, parser: WorkerParser, batch_size: int
) -> None:
    with path.open("rb") as handle:
        first = handle.readline()
        spelling = _cdr_spelling(path, first, tz)
        numbered: list[tuple[int, bytes]] = []
        read = len(first)
        for no, raw in enumerate(handle, start=2):
            numbered.append((no, raw))
            read += len(raw)
            if len(numbered) >= batch_size:
                await store.put(await _parse(parser, path.name, numbered, spelling), None, read)
                numbered, read = [], 0
        await store.put(await _parse(parser, path.name, numbered, spelling), None, read)
        await store.flush()

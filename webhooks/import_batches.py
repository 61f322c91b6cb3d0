"""The CPU side of an import: lines in, what is stored out.

A batch of numbered lines becomes the events to store, the lines refused with their
reasons, and the calls those events fold to, in the form the core stores them
(:func:`service.calls.bulk.prepare`). No I/O: an import runs this in a worker process while
its own process talks to PostgreSQL, so parsing and storing use both cores (parsing in the
storing process held the event loop, and PostgreSQL waited for it).

The parser keeps the events of the calls met in the last few batches: a call whose lines
straddle two batches is folded from all of them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context
from typing import Any
from zoneinfo import ZoneInfo

from service.calls.bulk import Parsed, prepare
from service.calls.model import Event
from service.calls.queries import Refusal
from service.privacy import Pseudonymiser
from webhooks import asterisk, cdr
from webhooks.errors import Malformed

Pair = tuple[Event, dict[str, Any]]  # an event and the raw payload stored with it


@dataclass(frozen=True, slots=True)
class QueueLogSpelling:
    """How a queue_log's lines are written: the file (``header`` None) or a table export."""

    tz: ZoneInfo
    header: tuple[str, ...] | None = None
    delimiter: str = "|"

    def __call__(self, raw: bytes, received_at: datetime) -> Pair:
        text = raw.decode("utf-8", errors="strict").rstrip("\r\n")
        if self.header is None:
            return asterisk.to_event(asterisk.parse_line(text), received_at), {"line": text}
        values = next(csv.reader([text], delimiter=self.delimiter))
        if len(values) > len(self.header):
            raise Malformed(f"{len(values)} columns where the header names {len(self.header)}")
        row = dict(zip(self.header, values, strict=False))
        return asterisk.to_event(asterisk.parse_row(row, self.tz), received_at), row


@dataclass(frozen=True, slots=True)
class CdrSpelling:
    """A CSV of call-detail records: its column names and separator."""

    tz: ZoneInfo
    names: tuple[str, ...]
    delimiter: str

    def __call__(self, raw: bytes, received_at: datetime) -> Pair:
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        values = next(csv.reader([text], delimiter=self.delimiter))
        row = {k: v for k, v in zip(self.names, values, strict=False) if k in cdr.FIELDS}
        return cdr.parse(row, received_at, self.tz), row


Spelling = QueueLogSpelling | CdrSpelling


class BatchParser:
    """Parses batches in order, holding the events of recent calls to fold them whole."""

    KEEP_BATCHES = 3  # a call whose lines stop for this long is read back if it resumes

    def __init__(self, source: str, pseudonymise: Pseudonymiser) -> None:
        self._source = source
        self._pseudonymise = pseudonymise
        self._recent: dict[str, dict[str, Event]] = {}  # call → its events by delivery
        self._age: dict[str, int] = {}
        self._batches = 0

    def parse(
        self,
        name: str,
        numbered: Sequence[tuple[int, bytes]],
        spelling: Spelling,
        received_at: datetime,
    ) -> Parsed:
        """Parse ``numbered`` (line number, raw line) from the file called ``name``."""
        pairs: list[Pair] = []
        seen: set[tuple[str, str]] = set()
        refused: list[Refusal] = []
        lines = repeated = 0
        for no, raw in numbered:
            if not raw.strip():
                continue
            lines += 1
            try:
                pair = spelling(raw, received_at)
            except (Malformed, UnicodeDecodeError, csv.Error) as exc:
                refused.append((f"{name} line {no}: {exc}", no, raw.decode("utf-8", "replace")))
                continue
            key = (pair[0].call_key, pair[0].dedup_key)
            if key in seen:
                repeated += 1
                continue
            seen.add(key)
            pairs.append(pair)
        touched = self._remember(pairs)
        known = {k: list(self._recent[k].values()) for k in touched}
        return prepare(
            self._source,
            pairs,
            known,
            self._pseudonymise,
            lines=lines,
            repeated=repeated,
            refused=refused,
        )

    def _remember(self, pairs: list[Pair]) -> list[str]:
        self._batches += 1
        touched: dict[str, None] = {}
        for event, _ in pairs:
            key = event.call_key
            held = self._recent.pop(key, None) or {}
            held[event.dedup_key] = event
            self._recent[key] = held  # re-inserted: the dict stays in order of last use
            self._age[key] = self._batches
            touched[key] = None
        # Memory stays bounded: older calls are forgotten (their later lines, if any, make
        # the fold read them back).
        for key in list(self._recent):
            if self._age[key] > self._batches - self.KEEP_BATCHES:
                break
            del self._recent[key], self._age[key]
        return list(touched)


# --- in a worker process -----------------------------------------------------------------

_PARSER: BatchParser | None = None


def _start(source: str, pseudonymise: Pseudonymiser) -> None:
    global _PARSER
    _PARSER = BatchParser(source, pseudonymise)


def _parse(
    name: str, numbered: list[tuple[int, bytes]], spelling: Spelling, received_at: datetime
) -> Parsed:
    assert _PARSER is not None
    return _PARSER.parse(name, numbered, spelling, received_at)


class WorkerParser:
    """A :class:`BatchParser` in a process of its own (one: batches are parsed in order)."""

    def __init__(self, source: str, pseudonymise: Pseudonymiser) -> None:
        # Spawned, not forked: the importing process has an event loop and open sockets.
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=get_context("spawn"),
            initializer=_start,
            initargs=(source, pseudonymise),
        )

    def submit(
        self,
        name: str,
        numbered: list[tuple[int, bytes]],
        spelling: Spelling,
        received_at: datetime,
    ) -> Future[Parsed]:
        return self._pool.submit(_parse, name, numbered, spelling, received_at)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

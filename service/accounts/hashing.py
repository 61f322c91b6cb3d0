"""Password hashing off the event loop, a few at a time.

Every Argon2 computation holds 64 MiB and tens of milliseconds of CPU, and anyone may ask
for one by posting the login form. So an instance runs at most :data:`CONCURRENT` of them at
once (in threads), lets at most :data:`WAITING` more wait their turn, and turns the next
away at once (:class:`Busy`: the page answers 503 with ``Retry-After``) instead of queueing
without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

CONCURRENT = 2
WAITING = 8

P = ParamSpec("P")
T = TypeVar("T")


class Busy(Exception):
    """Too many hashings are running or waiting: try again in a moment."""


class HashGate:
    """Runs hashing functions in threads, :data:`CONCURRENT` at a time, with a bounded wait."""

    def __init__(self, concurrent: int = CONCURRENT, waiting: int = WAITING) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._capacity = concurrent + waiting
        self._inside = 0  # running or waiting

    @property
    def full(self) -> bool:
        return self._inside >= self._capacity

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a thread once a slot is free; :class:`Busy` at once when
        too many already wait."""
        if self.full:
            raise Busy
        self._inside += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self._inside -= 1
            raise
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
        # The slot is given back when the thread ends, not when the caller stops waiting (a
        # client that disconnects must not let a third hashing start beside a running one).
        work.add_done_callback(self._finished)
        return await asyncio.shield(work)

    def _finished(self, _: object) -> None:
        self._inside -= 1
        self._slots.release()

"""Derives call rows from their events, off the webhook's critical path.

The webhook path appends events and marks their calls (``fold_queue``). The folder takes the
marked calls in batches, refolds each from all its events and rewrites its row. Under load a
call gets several events between two folds, so it is folded once for all of them.

Every instance runs a folder; marks are taken with SKIP LOCKED, so folders share the work
and one left by a stopped instance is picked up by the others' periodic sweep. Readers call
:meth:`Folder.catch_up` first: the calls they read are then at least as new as every event
acknowledged before the read began.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import asyncpg

from service.calls.queries import any_marked, database_now, fold_pending, marked_before
from service.db.errors import describe, is_unavailable
from service.privacy import Pseudonymiser

log = logging.getLogger(__name__)


class Folder:
    def __init__(
        self,
        pool: asyncpg.Pool,
        pseudonymise: Pseudonymiser,
        *,
        batch: int = 500,
        sweep_s: float = 1.0,
        gather_s: float = 0.1,
        on_fold: Callable[[int, float], None] | None = None,
    ) -> None:
        self._pool = pool
        self._pseudonymise = pseudonymise
        self._batch = batch
        self._sweep_s = sweep_s
        self._gather_s = gather_s
        self._on_fold = on_fold
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="folder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # What is still marked is folded by the next folder to sweep: nothing is lost.

    def notify(self) -> None:
        """Events were appended: fold soon."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sweep_s):
                    await self._wake.wait()
            self._wake.clear()
            # A short pause lets a burst of events of the same calls gather, so each call
            # is folded once for all of them; readers do not wait for it (catch_up drains).
            await asyncio.sleep(self._gather_s)
            try:
                await self.drain()
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("folding paused, retrying: %s", describe(exc))
                else:
                    log.exception("folding failed; retrying")
                await asyncio.sleep(self._sweep_s)

    async def drain(self) -> int:
        """Fold marked calls until none is left that another folder is not already doing."""
        total = 0
        while True:
            t0 = time.perf_counter()
            async with self._pool.acquire() as conn, conn.transaction():
                n = await fold_pending(conn, self._batch, self._pseudonymise)
            if n and self._on_fold is not None:
                self._on_fold(n, time.perf_counter() - t0)
            total += n
            if n < self._batch:
                return total

    async def catch_up(self, timeout_s: float = 5.0) -> None:
        """Return once every call marked before now is folded (by us or another folder).

        Bounded by ``timeout_s``: under an endless burst a reader gets data at most that old
        rather than waiting forever.
        """
        pool = self._pool
        if not await any_marked(pool):
            return
        now = await database_now(pool)
        deadline = time.monotonic() + timeout_s
        while True:
            await self.drain()
            left = await marked_before(pool, now)
            if not left or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.005)  # another folder holds them: it is about to commit

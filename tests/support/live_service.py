"""The whole service on a real socket (127.0.0.1, a free port), its event loop in a thread
of its own, for clients that block (``requests``, as schemathesis uses): the test's thread
sends, the service's thread answers.

It also keeps, per request id, the last frame of every unhandled exception the service logs
(``service.web.errors``: « unhandled error on [id] … »), so a 500 can be reported with the
line that raised it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import traceback
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

from service.accounts import queries as accounts
from service.accounts.model import Role
from service.app import create_app
from service.keys import DB_POOL
from service.settings import Settings

T = TypeVar("T")
_RID = re.compile(r"\[([^\]]+)\]")


class _Tracebacks(logging.Handler):
    """Request id → the raising frame of the exception logged for it."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.frames: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is None or record.exc_info[1] is None:
            return
        found = _RID.search(record.getMessage())
        exc = record.exc_info[1]
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"
        text = f"{type(exc).__name__}: {str(exc)[:200]} at {where}"
        self.frames[found.group(1) if found else "?"] = text


class LiveService:
    """``create_app(settings)`` served on 127.0.0.1 from a thread; ``url`` once started."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="live-service")
        self.tracebacks = _Tracebacks()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coro`` on the service's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> LiveService:
        logging.getLogger("service.web.errors").addHandler(self.tracebacks)
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *_: object) -> None:
        try:
            if self._runner is not None:
                self.run(self._runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            self.loop.close()
            logging.getLogger("service.web.errors").removeHandler(self.tracebacks)

    async def _start(self) -> None:
        self._app = create_app(self.settings)
        self._runner = web.AppRunner(self._app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def user_token(self, email: str, role: Role) -> str:
        """A fresh API token of the account ``email`` (made with ``role`` if new)."""

        async def make() -> str:
            assert self._app is not None
            pool = self._app[DB_POOL]
            uid = await pool.fetchval("SELECT id FROM users WHERE email = $1", email)
            if uid is None:
                uid = await accounts.add_user(pool, email, role)
            await pool.execute(
                "UPDATE users SET role = $2, disabled_at = NULL WHERE id = $1", uid, role.value
            )
            _, token = await accounts.create_token(pool, "api", uid, "fuzz")
            return token

        return self.run(make())

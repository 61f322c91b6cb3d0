"""``decroche serve`` as real processes, and a sender that delivers Twilio callbacks to them
as Twilio does: signed, retried on a 5xx or a lost connection, moving to another instance."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from twilio.request_validator import RequestValidator

from service.demo.traffic import Params, SimCall
from tests.support.processes import ROOT
from tests.support.smtp import free_port


class Instance:
    """One ``decroche serve`` process on a port of its own; its output goes to a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--port", str(self.port), *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def health(self) -> int:
        """The status of ``/healthz`` (0 when nothing answers)."""
        try:
            with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def wait_healthy(self, timeout: float = 60) -> Instance:
        deadline = time.monotonic() + timeout
        while self.health() != 200:
            assert self.proc.poll() is None, f"decroche serve exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"not healthy after {timeout} s:\n{self.output()}"
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine or a container dies."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


class TwilioSender:
    """Delivers callbacks to any of ``bases`` until one answers 2xx, as Twilio retries.

    ``attempts`` counts what every try got: a status (``"200"``, ``"503"``) or the kind of
    connection failure (``"refused"``, ``"disconnected"``). A 4xx is a bug of ours: it is
    never retried and is kept in ``refused``.
    """

    def __init__(
        self, bases: Sequence[str], auth_token: str, *, public_url: str | None = None
    ) -> None:
        self.bases = list(bases)
        self.validator = RequestValidator(auth_token)
        self.public_url = public_url
        self.attempts: Counter[str] = Counter()
        self.delivered = 0
        self.refused: list[tuple[int, str]] = []
        self._turn = 0

    def _target(self) -> str:
        self._turn += 1
        return self.bases[self._turn % len(self.bases)]

    async def post_once(self, session: aiohttp.ClientSession, params: Params) -> tuple[int, str]:
        """One try, to the first instance: its status and body (no retry)."""
        url = f"{self.public_url or self.bases[0]}/webhooks/twilio"
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        async with session.post(
            f"{self.bases[0]}/webhooks/twilio", data=params, headers=headers
        ) as resp:
            return resp.status, await resp.text()

    async def deliver(
        self, session: aiohttp.ClientSession, params: Params, deadline_s: float = 60
    ) -> None:
        deadline = time.monotonic() + deadline_s
        delay = 0.05
        while True:
            base = self._target()
            url = f"{self.public_url or base}/webhooks/twilio"
            headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
            try:
                async with session.post(
                    f"{base}/webhooks/twilio", data=params, headers=headers
                ) as resp:
                    body = await resp.text()
                    self.attempts[str(resp.status)] += 1
                    if resp.status < 300:
                        self.delivered += 1
                        return
                    if resp.status < 500:
                        self.refused.append((resp.status, body))
                        return
            except aiohttp.ClientConnectorError:
                self.attempts["refused"] += 1
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                self.attempts["disconnected"] += 1
            except TimeoutError:
                self.attempts["timeout"] += 1
            assert time.monotonic() < deadline, f"not delivered in {deadline_s} s: {params}"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def deliver_calls(
        self, calls: Sequence[SimCall], *, concurrency: int = 6, per_second: float = 150
    ) -> None:
        """Every callback of ``calls``, each call's in order, ``concurrency`` calls at once,
        at most ``per_second`` new deliveries a second (a steady stream, not one burst)."""
        queue = list(calls)
        gap = 1 / per_second
        pace = asyncio.Lock()

        async def worker(session: aiohttp.ClientSession) -> None:
            while queue:
                call = queue.pop()
                for _, params in call.callbacks:
                    async with pace:
                        await asyncio.sleep(gap)
                    await self.deliver(session, params)

        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))

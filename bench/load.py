"""Load benchmark: several instances under a steady mix for minutes.

    python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/load.py --instances 3 --minutes 5 --rate 200 --walls 20 --reads 20

Starts ``--instances`` ``decroche serve`` processes (one port each, as behind a load
balancer) on a fresh database ``decroche_load_bench`` (or an embedded PostgreSQL they share
when no URL is given), then, for ``--minutes``:

- **webhooks**: live Twilio calls (the demo's traffic model, signed), ``--rate`` callbacks a
  second, open loop, spread over the instances;
- **walls**: ``--walls`` screens on the live stream (``/api/v1/wall/stream``), spread over
  the instances, counting the snapshots pushed to them;
- **API reads**: ``--reads`` a second, in turn ``/api/v1/wall``, ``/api/v1/engagement8`` for
  today and ``/api/v1/calls?limit=50``.

Every ``--every`` seconds it prints the interval's throughput, latency percentiles, errors
and each instance's resident memory; at the end, the totals and the memory growth from the
first minute to the last. It exits 1 on any error or a growth above 20 %.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "load-auth-token"
ADMIN = "load-admin-token-0123456789abcdef"


@dataclass
class Window:
    """What one interval saw."""

    webhook_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    snapshots: int = 0


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(url: str) -> str:
    from bench.databases import fresh_database as make

    return asyncio.run(make(url, "decroche_load_bench", Path(tempfile.mkdtemp())))


class Load:
    def __init__(self, bases: list[str], args: argparse.Namespace) -> None:
        from twilio.request_validator import RequestValidator

        from service.demo.traffic import TrafficGenerator
        from service.municipality.model import load_municipality
        from service.settings import default_config_path

        self.bases = bases
        self.args = args
        self.validator = RequestValidator(TOKEN)
        self.gen = TrafficGenerator(load_municipality(default_config_path()), seed=7)
        self.window = Window()
        self.total = Window()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _error(self, kind: str) -> None:
        self.window.errors[kind] += 1
        self.total.errors[kind] += 1

    async def _post(
        self, session: aiohttp.ClientSession, base: str, params: dict[str, str]
    ) -> None:
        url = f"{base}/webhooks/twilio"
        headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params)}
        t = time.perf_counter()
        try:
            async with session.post(url, data=params, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    self._error(f"webhook {resp.status}")
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._error(f"webhook {type(exc).__name__}")
            return
        ms = 1000 * (time.perf_counter() - t)
        self.window.webhook_ms.append(ms)
        self.total.webhook_ms.append(ms)

    async def webhooks(self, session: aiohttp.ClientSession) -> None:
        """Open loop: a callback every 1/rate s, whatever the answers' delays."""
        pending: list[dict[str, str]] = []
        gap = 1 / self.args.rate
        next_at = time.perf_counter()
        turn = 0
        while not self._stop.is_set():
            if not pending:
                pending = [p for _, p in self.gen.live(datetime.now(UTC)).callbacks]
            params = pending.pop(0)
            turn += 1
            task = asyncio.create_task(
                self._post(session, self.bases[turn % len(self.bases)], params)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += gap
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def wall(self, session: aiohttp.ClientSession, base: str) -> None:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        while not self._stop.is_set():
            try:
                async with session.get(
                    f"{base}/api/v1/wall/stream",
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
                ) as resp:
                    async for line in resp.content:
                        if line.startswith(b"event: snapshot"):
                            self.window.snapshots += 1
                            self.total.snapshots += 1
                        if self._stop.is_set():
                            return
            except (aiohttp.ClientError, TimeoutError) as exc:
                if not self._stop.is_set():
                    self._error(f"wall {type(exc).__name__}")
                    await asyncio.sleep(1)

    async def reads(self, session: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        today = datetime.now(UTC).date().isoformat()
        paths = [
            "/api/v1/wall",
            f"/api/v1/engagement8?from={today}&to={today}",
            "/api/v1/calls?limit=50",
        ]
        gap = 1 / self.args.reads
        n = 0
        while not self._stop.is_set():
            n += 1
            url = self.bases[n % len(self.bases)] + paths[n % len(paths)]
            t = time.perf_counter()
            try:
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        self._error(f"read {resp.status}")
                    else:
                        ms = 1000 * (time.perf_counter() - t)
                        self.window.read_ms.append(ms)
                        self.total.read_ms.append(ms)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._error(f"read {type(exc).__name__}")
            await asyncio.sleep(gap)

    async def run(self, pids: list[int]) -> tuple[list[list[float]], Window]:
        memory: list[list[float]] = []
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        ) as session:
            jobs = [asyncio.create_task(self.webhooks(session))]
            jobs += [asyncio.create_task(self.reads(session))]
            jobs += [
                asyncio.create_task(self.wall(session, self.bases[i % len(self.bases)]))
                for i in range(self.args.walls)
            ]
            start = time.perf_counter()
            end = start + 60 * self.args.minutes
            print(
                "   time | webhooks/s  p50   p95   p99 ms | reads/s  p50   p95   p99 ms | "
                "snapshots | errors | RSS MB per instance"
            )
            while time.perf_counter() < end:
                await asyncio.sleep(self.args.every)
                w, self.window = self.window, Window()
                rss = [rss_mb(p) for p in pids]
                memory.append(rss)
                every = self.args.every
                print(
                    f"{time.perf_counter() - start:6.0f}s | {len(w.webhook_ms) / every:8.0f} "
                    f"{pct(w.webhook_ms, 50):5.1f} {pct(w.webhook_ms, 95):5.1f} "
                    f"{pct(w.webhook_ms, 99):5.1f} | {len(w.read_ms) / every:6.1f} "
                    f"{pct(w.read_ms, 50):5.1f} {pct(w.read_ms, 95):5.1f} "
                    f"{pct(w.read_ms, 99):5.1f} | {w.snapshots:9d} | "
                    f"{sum(w.errors.values()):6d} | " + " ".join(f"{r:.0f}" for r in rss),
                    flush=True,
                )
            self._stop.set()
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return memory, self.total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--rate", type=float, default=200, help="webhook callbacks a second")
    ap.add_argument("--walls", type=int, default=20, help="wall screens on the live stream")
    ap.add_argument("--reads", type=float, default=20, help="API reads a second")
    ap.add_argument("--every", type=float, default=10, help="seconds between report lines")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="decroche-load-")
    env = {
        **os.environ,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "DECROCHE_ADMIN_TOKEN": ADMIN,
        "DECROCHE_SECRET_KEY": "load-secret-key",
        "DECROCHE_DATA_DIR": data_dir,
    }
    env.pop("DECROCHE_PUBLIC_URL", None)
    env.pop("DATABASE_URL", None)
    if args.database_url:
        env["DATABASE_URL"] = fresh_database(args.database_url)
    ports = [free_port() for _ in range(args.instances)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for base in bases:
            for _ in range(600):
                try:
                    with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                        break
                except OSError:
                    time.sleep(0.1)
        where = "PostgreSQL at DATABASE_URL" if args.database_url else "embedded PostgreSQL"
        print(
            f"{args.instances} instances on {where}; {args.rate:g} callbacks/s, "
            f"{args.walls} walls, {args.reads:g} reads/s for {args.minutes:g} min"
        )
        random.seed(7)
        memory, total = asyncio.run(Load(bases, args).run([p.pid for p in procs]))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)

    minutes = args.minutes
    print(
        f"\nwebhooks: {len(total.webhook_ms):,} answered "
        f"({len(total.webhook_ms) / minutes / 60:.0f}/s), "
        f"p50 {pct(total.webhook_ms, 50):.1f} ms, p95 {pct(total.webhook_ms, 95):.1f} ms, "
        f"p99 {pct(total.webhook_ms, 99):.1f} ms"
    )
    print(
        f"API reads: {len(total.read_ms):,} answered, p50 {pct(total.read_ms, 50):.1f} ms, "
        f"p95 {pct(total.read_ms, 95):.1f} ms, p99 {pct(total.read_ms, 99):.1f} ms"
    )
    print(f"wall snapshots pushed: {total.snapshots:,}")
    print(f"errors: {sum(total.errors.values())} {dict(total.errors) or ''}")
    per_minute = max(1, int(60 / args.every))
    first = [statistics.mean(col) for col in zip(*memory[:per_minute], strict=True)]
    last = [statistics.mean(col) for col in zip(*memory[-per_minute:], strict=True)]
    growth = max((b - a) / a for a, b in zip(first, last, strict=True))
    print(
        "memory (RSS, first minute → last minute): "
        + ", ".join(f"{a:.0f} → {b:.0f} MB" for a, b in zip(first, last, strict=True))
        + f"; largest growth {100 * growth:+.1f} %"
    )
    ok = not total.errors and growth <= 0.20
    print("verdict: " + ("no error, no memory growth" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

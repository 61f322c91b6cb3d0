"""Ingest benchmark: replay signed Twilio callbacks against a running service.

    python bench/ingest.py                       # starts its own service on a fresh database
    python bench/ingest.py --calls 20000 --rate 500 --steady-seconds 20

It starts ``decroche serve`` in a subprocess (on ``--database-url`` / ``DATABASE_URL`` in a
fresh database ``decroche_bench``, or on an embedded PostgreSQL when neither is given), then:

1. **full speed** — every callback of ``--calls`` simulated calls, posted by ``--concurrency``
   keep-alive connections as fast as the service answers: throughput and latency percentiles;
2. **steady rate** — new callbacks at a fixed ``--rate`` per second (open loop: a slow answer
   does not slow the sender) for ``--steady-seconds``: latency percentiles;
3. the service's peak memory (VmHWM) and the number of calls stored.

Signatures are computed before the clock starts: the figures are the service's, not the
client's. Several client processes (``--clients``) keep the client from being the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-auth-token"
TRAFFIC_FROM = date(2026, 11, 2)  # the first day of the simulated calls; a prefill ends before

Signed = tuple[bytes, str]


def build(calls: int, url: str, seed: int) -> list[Signed]:
    """Every callback of ``calls`` simulated calls, signed for ``url``, in arrival order."""
    from twilio.request_validator import RequestValidator

    from service.demo.traffic import TrafficGenerator
    from service.municipality.model import load_municipality
    from service.settings import default_config_path

    m = load_municipality(default_config_path())
    validator = RequestValidator(TOKEN)
    out: list[tuple[datetime, Signed]] = []
    day = TRAFFIC_FROM
    n = 0
    while n < calls:
        gen = TrafficGenerator(m, seed=seed * 10_000 + day.toordinal())
        for call in gen.day(day):
            for at, params in call.callbacks:
                out.append(
                    (at, (urlencode(params).encode(), validator.compute_signature(url, params)))
                )
            n += 1
            if n >= calls:
                break
        day += timedelta(days=1)
    out.sort(key=lambda x: x[0])
    return [s for _, s in out]


HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


async def _post(session: Any, url: str, body: bytes, sig: str, latencies: list[float]) -> None:
    t = time.perf_counter()
    async with session.post(url, data=body, headers={**HEADERS, "X-Twilio-Signature": sig}) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {await r.text()}")
    latencies.append(time.perf_counter() - t)


async def _post_all(url: str, items: list[Signed], concurrency: int) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    it = iter(items)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            for body, sig in it:
                await _post(session, url, body, sig, latencies)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _post_steady(url: str, items: list[Signed], rate: float) -> list[float]:
    import aiohttp

    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        start = time.perf_counter()
        tasks = []
        for i, (body, sig) in enumerate(items):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(session, url, body, sig, latencies)))
        await asyncio.gather(*tasks)
    return latencies


def _client(args: tuple[str, list[Signed], int, float | None, mp.Queue]) -> None:  # type: ignore[type-arg]
    url, items, concurrency, rate, results = args
    if rate is None:
        results.put(asyncio.run(_post_all(url, items, concurrency)))
    else:
        results.put(asyncio.run(_post_steady(url, items, rate)))


def run_clients(
    url: str, items: list[Signed], clients: int, concurrency: int, rate: float | None
) -> tuple[float, list[float]]:
    """Split ``items`` over client processes; returns (elapsed seconds, latencies)."""
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    shares = [items[i::clients] for i in range(clients)]
    procs = [
        mp.Process(
            target=_client,
            args=((url, share, concurrency, None if rate is None else rate / clients, results),),
        )
        for share in shares
    ]
    start = time.perf_counter()
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies += results.get()
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit(f"a client process failed (exit {p.exitcode})")
    return elapsed, latencies


WRK_SCRIPT = r"""
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  local nthreads = tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == id then
      local tab = line:find("\t")
      reqs[#reqs + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = line:sub(1, tab - 1)}, line:sub(tab + 1))
    end
    i = i + 1
  end
  pos = 0
end
function request()
  pos = pos + 1
  if pos > #reqs then pos = 1 end
  return reqs[pos]
end
"""


def run_wrk(
    url: str, items: list[Signed], seconds: float, connections: int, threads: int = 2
) -> str:
    """Full-speed phase with wrk (a C load generator: the client costs little CPU)."""
    tmp = Path(tempfile.mkdtemp(prefix="decroche-wrk-"))
    (tmp / "reqs.tsv").write_text("".join(f"{sig}\t{body.decode()}\n" for body, sig in items))
    (tmp / "replay.lua").write_text(WRK_SCRIPT)
    res = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds:g}s",
            "--latency",
            "-s",
            str(tmp / "replay.lua"),
            url,
            "--",
            str(tmp / "reqs.tsv"),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] * 1000


def report(name: str, elapsed: float, lat: list[float]) -> None:
    print(
        f"{name}: {len(lat)} callbacks in {elapsed:.1f} s = {len(lat) / elapsed:,.0f}/s; "
        f"latency ms p50 {pct(lat, 50):.1f} p95 {pct(lat, 95):.1f} p99 {pct(lat, 99):.1f} "
        f"max {max(lat) * 1000:.1f}"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_service(port: int) -> None:
    """Return once the service started on ``port`` answers (and its workers are up)."""
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1)  # every worker up and its pool open


def _fresh_database(url: str, template: str | None = None) -> str:
    """The DSN of a new database ``decroche_bench`` on ``url``'s server: empty, or a copy
    of ``template`` (a file copy: seconds, where filling again takes many minutes)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        await conn.execute("DROP DATABASE IF EXISTS decroche_bench WITH (FORCE)")
        if template is None:
            await conn.execute("CREATE DATABASE decroche_bench")
        else:
            await conn.execute(
                f'CREATE DATABASE decroche_bench TEMPLATE "{template}" STRATEGY FILE_COPY'
            )
        await conn.close()

    asyncio.run(run())
    return _with_database(url, "decroche_bench")


def _with_database(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, f"/{name}", p.query, ""))


def prefilled_template(url: str, calls: int) -> str:
    """The name of a database holding ``calls`` calls of history (bench/report.py's: the two
    years before the simulated traffic), their months registered, an event each and the
    daily rollup built, as a service that has run for years has it: made once on ``url``'s
    server and kept, so that each run starts from a copy of the same database."""
    import asyncpg

    from bench.report import fill, fill_events
    from service.db.migrate import apply_migrations
    from service.db.pool import create_pool
    from service.metrics.rollup import refresh
    from service.municipality.model import load_municipality
    from service.settings import default_config_path

    name = f"decroche_bench_prefill_{calls}"
    first_day = TRAFFIC_FROM - timedelta(days=731)
    done = f"{calls} calls from {first_day}, rollup built"

    async def exists() -> bool:
        conn = await asyncpg.connect(url)
        try:
            comment = await conn.fetchval(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
                name,
            )
            if comment == done:
                return True
            # Absent, made otherwise, or a fill that did not finish: start again.
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
            return False
        finally:
            await conn.close()

    async def run() -> None:
        pool = await create_pool(_with_database(url, name), max_size=2, command_timeout=None)
        try:
            async with pool.acquire() as conn:
                await apply_migrations(conn)
            await fill(pool, calls, first_day=first_day)
            await fill_events(pool, calls)
            # The service's own configuration: its rollup is the one the service reads.
            days = await refresh(pool, load_municipality(default_config_path()), wait=True)
            print(f"rollup of {days} days built", flush=True)
            await pool.execute(f"COMMENT ON DATABASE \"{name}\" IS '{done}'")
        finally:
            await pool.close()

    if asyncio.run(exists()):
        print(f"reusing {name} ({done})", flush=True)
        return name
    t0 = time.perf_counter()
    asyncio.run(run())
    print(f"prefilled {calls:,} calls in {time.perf_counter() - t0:.0f} s", flush=True)
    return name


def process_tree(pid: int) -> list[int]:
    """``pid`` and its child processes (the workers of ``serve --workers``)."""
    out = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def peak_memory_mb(pid: int) -> float:
    """The largest peak resident size (VmHWM) among the service's processes."""
    peaks = [0.0]
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return max(peaks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=6000, help="simulated calls (≈8 callbacks each)")
    ap.add_argument("--concurrency", type=int, default=64, help="connections per client")
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--rate", type=float, default=500, help="steady phase: callbacks/s")
    ap.add_argument("--steady-seconds", type=float, default=15)
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="full-speed load generator (auto: wrk when installed)",
    )
    ap.add_argument("--seconds", type=float, default=20, help="full-speed phase with wrk")
    ap.add_argument("--workers", type=int, default=2, help="service processes (serve --workers)")
    ap.add_argument(
        "--prefill",
        type=int,
        default=0,
        metavar="CALLS",
        help="start from a database holding this many calls over two years (needs "
        "--database-url; filled once and kept as decroche_bench_prefill_CALLS): figures "
        "on a database that is no longer new",
    )
    ap.add_argument(
        "--server",
        choices=("decroche", "minimal"),
        default="decroche",
        help="minimal: the yardstick handler of bench/minimal_server.py "
        "(signature + one commit per callback; needs --database-url)",
    )
    args = ap.parse_args()

    port = _free_port()
    url = f"http://127.0.0.1:{port}/webhooks/twilio"
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN}
    tmp = tempfile.mkdtemp(prefix="decroche-bench-")
    env["DECROCHE_DATA_DIR"] = tmp
    env.pop("DATABASE_URL", None)
    where = "PostgreSQL at DATABASE_URL" if args.database_url else "embedded PostgreSQL"
    template = None
    if args.prefill:
        if not args.database_url:
            raise SystemExit("--prefill needs --database-url")
        template = prefilled_template(args.database_url, args.prefill)
        where += f", prefilled with {args.prefill:,} calls"
    if args.database_url:
        env["DATABASE_URL"] = _fresh_database(args.database_url, template)

    print(f"preparing {args.calls} calls …", flush=True)
    items = build(args.calls, url, seed=1)
    steady_n = int(args.rate * args.steady_seconds)
    steady = build(steady_n // 8 + 50, url, seed=2)[:steady_n]

    if args.server == "minimal":
        if not args.database_url:
            raise SystemExit("--server minimal needs --database-url")
        servers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "bench" / "minimal_server.py"),
                    str(port),
                    env["DATABASE_URL"],
                    TOKEN,
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            for _ in range(args.workers)
        ]
    else:
        servers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "service",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        ]
    server = servers[0]
    try:
        wait_for_service(port)
        print(
            f"service pid {server.pid} on {where}; {len(items)} callbacks, "
            f"{args.clients} clients × {args.concurrency} connections"
        )
        use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
        cpu0, t0 = sum(cpu_seconds(p.pid) for p in servers), time.perf_counter()
        if use_wrk:
            out = run_wrk(url, items, args.seconds, args.concurrency * args.clients)
            elapsed = time.perf_counter() - t0
            print("full speed (wrk):")
            for line in out.splitlines():
                if any(
                    k in line
                    for k in (
                        "Requests/sec",
                        "requests in",
                        "Non-2xx",
                        "50%",
                        "75%",
                        "90%",
                        "99%",
                        "Socket errors",
                    )
                ):
                    print("  " + line.strip())
        else:
            elapsed, lat = run_clients(url, items, args.clients, args.concurrency, None)
            report("full speed (python clients)", elapsed, lat)
        cpu = sum(cpu_seconds(p.pid) for p in servers) - cpu0
        print(f"  service CPU: {100 * cpu / elapsed:.0f} % of one core (all its processes)")
        elapsed, lat = run_clients(url, steady, args.clients, args.concurrency, args.rate)
        report(f"steady {args.rate:g}/s", elapsed, lat)
        peak = max(peak_memory_mb(p.pid) for p in servers)
        print(f"service peak memory (VmHWM, largest process): {peak:.0f} MB")
        if args.server == "decroche":
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            for line in text.splitlines():
                name = line.split(" ")[0]
                if name.startswith(
                    ("decroche_ingest_batch_size_", "decroche_fold_batch_size_")
                ) and (name.endswith(("_sum", "_count"))):
                    print(f"  (one worker) {line}")
    finally:
        for p in servers:
            p.send_signal(signal.SIGTERM)
        for p in servers:
            p.wait(timeout=60)
    print(f"finished at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()

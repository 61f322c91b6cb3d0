"""Wall benchmark: how long an event takes from the webhook's answer to the walls' screens.

    python bench/wall.py                              # 50 walls, 200 callbacks/s, 30 s
    python bench/wall.py --walls 50 --rate 200 --seconds 60 --database-url postgresql://…

It starts ``decroche serve --workers N`` (on a fresh database ``decroche_bench`` at
``--database-url`` / ``DATABASE_URL``, or on an embedded PostgreSQL when neither is given),
connects ``--walls`` clients to ``/api/v1/wall/stream`` and sends signed Twilio callbacks
at ``--rate`` per second (open loop) for ``--seconds``.

What is measured: every simulated call starts with a callback that makes it appear on the
wall (waiting). ``received today + waiting now`` therefore grows by exactly one per new
call and never falls, so when the k-th new call's first callback has been acknowledged, a
wall is up to date with it once it shows ``baseline + k``. The delay of call k on one wall
is the instant the wall first shows ``baseline + k`` minus the instant the k-th such
callback was acknowledged. Every wall and every call gives one delay: p50, p95, p99 and
the maximum are printed, with the webhook's own latency, the snapshots each wall received
and the service's peak memory. Calls are compressed in time (``--speed``) so that a
whole call, from ringing to hang-up, fits in a few seconds; their ``Timestamp`` parameters
say the instants they are sent at.

The sender and the walls run in separate processes; times are taken on the machine's
monotonic clock, which every process shares.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    HEADERS,
    TOKEN,
    _free_port,
    _fresh_database,
    cpu_seconds,
    pct,
    peak_memory_mb,
    wait_for_service,
)

if TYPE_CHECKING:
    from service.demo.traffic import SimCall
    from service.wall.model import WallSnapshot

ADMIN = "bench-admin-token-0123456789"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@dataclass
class Event:
    """One signed callback, when to send it (seconds after the start), and whether it is
    the first of its call (the one that makes the call appear on the wall)."""

    offset: float
    body: bytes
    signature: str
    first: bool


def always_open(shipped: Path, out: Path) -> Path:
    """The shipped configuration with every service open all day, every day: the call mix
    (answered, lost, out of hours, call-backs) is then the same whatever hour the benchmark
    runs at (on a public holiday every call is still out of hours: the mix printed says so)."""
    text = re.sub(r"(?m)^(mon|tue|wed|thu|fri|sat|sun) = .*\n", "", shipped.read_text())
    days = "".join(f'{d} = ["00:00-24:00"]\n' for d in WEEKDAYS)
    text = re.sub(r"(?m)^\[services\.hours\].*\n", lambda m: m.group(0) + days, text)
    text = re.sub(r"(?m)^closures = .*$", "closures = []", text)
    out.write_text(text)
    return out


def build(
    config: Path, url: str, rate: float, seconds: float, speed: float, start: datetime
) -> list[Event]:
    """Callbacks of calls starting at random (Poisson) so that about ``rate`` arrive per
    second; each call's own timeline divided by ``speed``."""
    import random

    from twilio.request_validator import RequestValidator

    from service.demo.traffic import TrafficGenerator, rfc2822
    from service.municipality.model import load_municipality

    m = load_municipality(config)

    def calls(call_rate: float) -> list[tuple[float, SimCall]]:
        gen, rng = TrafficGenerator(m, seed=7), random.Random(7)
        out, t = [], rng.expovariate(call_rate)
        while t < seconds:
            out.append((t, gen.live(start + timedelta(seconds=t))))
            t += rng.expovariate(call_rate)
        return out

    def within(t: float, call: SimCall) -> list[tuple[float, dict[str, str]]]:
        """The call's callbacks sent before the end, at their compressed offsets."""
        timeline = [
            (t + (at - call.started_at).total_seconds() / speed, p) for at, p in call.callbacks
        ]
        return [(offset, p) for offset, p in timeline if offset < seconds]

    # Calls still going at the end send only their first callbacks: find the call rate that
    # gives ``rate`` callbacks per second (a few rounds of proportional correction).
    call_rate = rate / 8
    for _ in range(4):
        planned = calls(call_rate)
        sent = sum(len(within(t, c)) for t, c in planned)
        call_rate *= rate * seconds / max(sent, 1)
    validator = RequestValidator(TOKEN)
    events: list[Event] = []
    for t, call in planned:
        for i, (offset, params) in enumerate(within(t, call)):
            if "Timestamp" in params:
                params = {**params, "Timestamp": rfc2822(start + timedelta(seconds=offset))}
            sig = validator.compute_signature(url, params)
            events.append(Event(offset, urlencode(params).encode(), sig, i == 0))
    events.sort(key=lambda e: e.offset)
    return events


# --- the sender ---------------------------------------------------------------------------


class Sent(TypedDict):
    """What the sender saw: when each call's first callback was acknowledged (sorted), every
    callback's latency, and the failures."""

    firsts: list[float]
    latencies: list[float]
    errors: list[str]


async def _send(url: str, events: list[Event], t0: float) -> Sent:
    import aiohttp

    firsts: list[float] = []
    latencies: list[float] = []
    errors: list[str] = []

    async def post(session: aiohttp.ClientSession, e: Event) -> None:
        sent = time.monotonic()
        headers = {**HEADERS, "X-Twilio-Signature": e.signature}
        try:
            async with session.post(url, data=e.body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors.append(f"HTTP {r.status}")
                    return
        except aiohttp.ClientError as exc:
            errors.append(repr(exc))
            return
        acked = time.monotonic()
        latencies.append(acked - sent)
        if e.first:
            firsts.append(acked)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        tasks = []
        for e in events:
            delay = t0 + e.offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, e)))
        await asyncio.gather(*tasks)
    return {"firsts": sorted(firsts), "latencies": latencies, "errors": errors}


def _sender(args: tuple[str, list[Event], float, mp.Queue]) -> None:  # type: ignore[type-arg]
    url, events, t0, results = args
    results.put(("sender", asyncio.run(_send(url, events, t0))))


# --- the walls ----------------------------------------------------------------------------


def seen(snapshot: WallSnapshot) -> int:
    """Calls that reached the wall today: finished or answered, plus those waiting now."""
    total = snapshot["total"]
    return int(total["today"]["received"]) + int(total["waiting"])


async def _wall(url: str, until: float, reached: dict[int, float], counts: list[int]) -> None:
    """One wall: notes the first instant it shows each value of ``seen``."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers=AUTH) as resp,
    ):
        if resp.status != 200:
            raise RuntimeError(f"stream: HTTP {resp.status}")
        best, event, data = -1, "", []
        while time.monotonic() < until:
            try:
                raw = await asyncio.wait_for(resp.content.readline(), until - time.monotonic())
            except TimeoutError:
                break
            if not raw:
                raise RuntimeError("stream ended")
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                if event == "snapshot":
                    now = time.monotonic()
                    value = seen(json.loads("\n".join(data)))
                    counts[0] += 1
                    for v in range(best + 1, value + 1):
                        reached[v] = now
                    best = max(best, value)
                event, data = "", []


async def _walls(url: str, n: int, until: float) -> list[tuple[dict[int, float], int]]:
    out: list[tuple[dict[int, float], list[int]]] = [({}, [0]) for _ in range(n)]
    await asyncio.gather(*(_wall(url, until, r, c) for r, c in out))
    return [(r, c[0]) for r, c in out]


def _wall_process(args: tuple[str, int, float, mp.Queue]) -> None:  # type: ignore[type-arg]
    url, n, until, results = args
    results.put(("walls", asyncio.run(_walls(url, n, until))))


# --- the run ------------------------------------------------------------------------------


def _get_wall(url: str) -> WallSnapshot:
    req = urllib.request.Request(url, headers=AUTH)
    with urllib.request.urlopen(req, timeout=10) as r:
        value: WallSnapshot = json.loads(r.read())
        return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walls", type=int, default=50, help="SSE clients")
    ap.add_argument("--wall-processes", type=int, default=2, help="processes holding them")
    ap.add_argument("--rate", type=float, default=200, help="callbacks per second")
    ap.add_argument("--seconds", type=float, default=30, help="how long events arrive")
    ap.add_argument("--speed", type=float, default=20, help="calls' timelines divided by")
    ap.add_argument("--workers", type=int, default=2, help="service processes (serve --workers)")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument(
        "--shipped-hours",
        action="store_true",
        help="keep the shipped opening hours (the mix then depends on the hour of the run)",
    )
    args = ap.parse_args()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/webhooks/twilio"
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "DECROCHE_ADMIN_TOKEN": ADMIN}
    tmp = Path(tempfile.mkdtemp(prefix="decroche-bench-"))
    env["DECROCHE_DATA_DIR"] = str(tmp)
    from service.settings import default_config_path

    config = default_config_path()
    if not args.shipped_hours:
        config = always_open(config, tmp / "decroche.toml")
    env["DECROCHE_CONFIG"] = str(config)
    env.pop("DATABASE_URL", None)
    if args.database_url:
        env["DATABASE_URL"] = _fresh_database(args.database_url)
    where = "PostgreSQL at DATABASE_URL" if args.database_url else "embedded PostgreSQL"
    cmd = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*cmd, "--workers", str(args.workers)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        wait_for_service(port)
        baseline = seen(_get_wall(f"{base}/api/v1/wall"))

        lead = 4.0  # seconds to sign the events and connect the walls before the first one
        start = datetime.now(UTC) + timedelta(seconds=lead)
        t0 = time.monotonic() + lead
        events = build(config, url, args.rate, args.seconds, args.speed, start)
        calls = sum(e.first for e in events)
        if time.monotonic() > t0 - 1:
            raise SystemExit("signing took longer than the lead time: lower --rate or --seconds")
        print(
            f"service pid {server.pid} ({args.workers} workers) on {where}; "
            f"{len(events)} callbacks of {calls} calls over {args.seconds:g} s "
            f"({len(events) / args.seconds:.0f}/s), {args.walls} walls"
        )

        results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        until = t0 + args.seconds + 5  # the walls keep listening while the last calls settle
        shares = [args.walls // args.wall_processes] * args.wall_processes
        shares[0] += args.walls - sum(shares)
        procs = [
            mp.Process(
                target=_wall_process, args=((f"{base}/api/v1/wall/stream", n, until, results),)
            )
            for n in shares
            if n
        ]
        procs.append(mp.Process(target=_sender, args=((url, events, t0, results),)))
        cpu0 = cpu_seconds(server.pid)
        for p in procs:
            p.start()
        sender: Sent = {"firsts": [], "latencies": [], "errors": []}
        walls: list[tuple[dict[int, float], int]] = []
        for _ in procs:
            kind, value = results.get()
            if kind == "sender":
                sender = value
            else:
                walls += value
        for p in procs:
            p.join()
            if p.exitcode:
                raise SystemExit(f"a client process failed (exit {p.exitcode})")
        cpu = cpu_seconds(server.pid) - cpu0
        end = _get_wall(f"{base}/api/v1/wall")
        final = seen(end)

        firsts = sender["firsts"]
        delays: list[float] = []
        missing = 0
        for reached, _ in walls:
            for k, acked in enumerate(firsts, start=1):
                at = reached.get(baseline + k)
                if at is None:
                    missing += 1
                else:
                    delays.append(max(0.0, at - acked))
        lat = sender["latencies"]
        print(
            f"webhook: {len(lat)} acknowledged, {len(sender['errors'])} errors; "
            f"latency ms p50 {pct(lat, 50):.1f} p95 {pct(lat, 95):.1f} p99 {pct(lat, 99):.1f}"
        )
        snaps = [n for _, n in walls]
        print(
            f"walls: {len(walls)} connected, snapshots received per wall "
            f"{min(snaps)}–{max(snaps)} ({max(snaps) / (args.seconds + 5):.1f}/s at most)"
        )
        if delays:
            print(
                f"delay from webhook acknowledgement to the wall, over {len(delays):,} "
                f"(wall, call) pairs: ms p50 {pct(delays, 50):.0f} p95 {pct(delays, 95):.0f} "
                f"p99 {pct(delays, 99):.0f} max {max(delays) * 1000:.0f}"
            )
        print(
            f"calls on the wall at the end: {final - baseline} of {calls} sent"
            + (f"; {missing} (wall, call) pairs never shown" if missing else "")
        )
        today = end["total"]["today"]
        print(
            "the day on the wall: received {received}, answered {answered}, lost {lost}, "
            "out of hours {out_of_hours}; call-backs open {cb}".format(
                **today, cb=end["total"]["callbacks"]
            )
        )
        elapsed = args.seconds + 5
        print(f"service CPU: {100 * cpu / elapsed:.0f} % of one core (all its processes)")
        print(f"service peak memory (VmHWM, largest process): {peak_memory_mb(server.pid):.0f} MB")
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
            text = r.read().decode()
        for line in text.splitlines():
            name = line.split(" ")[0]
            if name.startswith(("decroche_wall_rebuild_seconds_", "decroche_fold_seconds_")) and (
                name.endswith(("_sum", "_count"))
            ):
                print(f"  (one worker) {line}")
        if sender["errors"]:
            print("first errors:", sender["errors"][:5])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    print(f"finished at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()

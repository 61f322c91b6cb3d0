"""``decroche serve``, ``migrate`` and ``simulate``: running the service and feeding it."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime
from typing import Any

from service.cli.support import UserError, with_config
from service.cli.support import settings_of as _settings
from service.cli.support import with_database as _with_database
from service.municipality.model import load_municipality
from service.settings import default_config_path


def cmd_serve(args: argparse.Namespace) -> int:
    from service.serve import ServeOptions, serve

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    opts = ServeOptions(
        host=args.host,
        port=args.port,
        demo=args.demo,
        demo_rate=args.demo_rate,
        demo_days=args.demo_days,
        workers=args.workers,
        reuse_port=args.reuse_port,
    )
    return serve(_settings(args), opts)


def cmd_migrate(args: argparse.Namespace) -> int:
    async def work(_pool: Any, applied: list[Any]) -> list[str]:
        return [f"{m.version:04d}_{m.name}" for m in applied]

    applied = _with_database(_settings(args), work)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import aiohttp

    from service.demo.simulate import Sender, backfill, past_days, run_live

    token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN")
    if not token:
        raise UserError(
            "set TWILIO_AUTH_TOKEN (or --auth-token) to the token the service "
            "checks signatures with"
        )
    if args.rate <= 0:
        raise UserError("--rate must be positive (calls started per second)")
    m = load_municipality(args.config or os.environ.get("DECROCHE_CONFIG") or default_config_path())

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            sender = Sender(session, args.url, token)
            if args.backfill_days:
                now = datetime.now(UTC)
                await backfill(
                    sender,
                    m,
                    past_days(now.astimezone(m.tz).date(), args.backfill_days),
                    seed=args.seed or 1,
                    until=now,
                )
            if args.duration != 0:
                await run_live(
                    sender,
                    m,
                    rate=args.rate,
                    duration=args.duration,
                    seed=args.seed,
                    speed=args.speed,
                )
            st = sender.stats
            print(
                f"{st.calls} calls, {st.sent} callbacks accepted, {st.failed} failed; "
                f"HTTP statuses: {dict(sorted(st.status.items()))}"
            )
            if st.failed:
                raise UserError(f"{st.failed} callbacks were not accepted (see statuses)")

    asyncio.run(run())
    return 0


def add_parser(sub: Any) -> None:
    """Add the serve, migrate, simulate sub-commands."""
    s = with_config(sub.add_parser("serve", help="run the service (migrates first)"))
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument(
        "--demo", action="store_true", help="also run a simulated switchboard feeding the service"
    )
    s.add_argument("--demo-rate", type=float, default=0.2, help="demo calls per second")
    s.add_argument("--demo-days", type=int, default=7, help="past days the demo replays")
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="service processes sharing the port (e.g. one per core)",
    )
    s.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)
    s = with_config(sub.add_parser("migrate", help="apply pending database migrations"))
    s.set_defaults(func=cmd_migrate)
    s = with_config(
        sub.add_parser(
            "simulate", help="send a realistic, signed Twilio call stream to a running service"
        )
    )
    s.add_argument(
        "--url",
        required=True,
        help="the service's Twilio webhook URL, e.g. http://127.0.0.1:8080/webhooks/twilio",
    )
    s.add_argument("--rate", type=float, default=0.5, help="calls started per second")
    s.add_argument(
        "--duration",
        type=float,
        default=60,
        help="seconds of live traffic (0: none, only the backfill)",
    )
    s.add_argument(
        "--backfill-days",
        type=int,
        default=0,
        help="first replay this many past days, as fast as the service takes them",
    )
    s.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="time compression of each call (2 = waits twice as short)",
    )
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--auth-token", help="default: $TWILIO_AUTH_TOKEN")
    s.set_defaults(func=cmd_simulate)

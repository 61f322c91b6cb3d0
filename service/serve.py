"""``decroche serve``: one process, or a supervisor of several worker processes.

With ``--workers N`` the supervisor starts (or joins) the database once, applies the
migrations, then runs N identical service processes sharing the port (``SO_REUSEPORT``): the
same stateless instances a load balancer would spread traffic over, on one machine. The
supervisor holds the embedded database for as long as it lives and stops the workers on
SIGTERM / SIGINT; if a worker dies, the others are stopped and the exit status is 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from types import FrameType

from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    demo: bool = False
    demo_rate: float = 0.2
    demo_days: int = 7
    workers: int = 1
    reuse_port: bool = False


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS), a faster event loop; the standard loop
    elsewhere."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _demo_settings(settings: Settings) -> Settings:
    if settings.twilio_auth_token is None:
        # The demo signs its own callbacks; a throwaway token keeps the real check on.
        log.info("demo: using a throwaway Twilio auth token for the simulated switchboard")
        return settings.with_overrides(twilio_auth_token=secrets.token_hex(16))
    return settings


def base_url(opts: ServeOptions) -> str:
    local = "127.0.0.1" if opts.host in ("0.0.0.0", "::", "") else opts.host  # noqa: S104
    return f"http://{local}:{opts.port}"


def serve(settings: Settings, opts: ServeOptions) -> int:
    """Run until SIGTERM / SIGINT; returns the exit status."""
    if opts.demo:
        settings = _demo_settings(settings)
    base = base_url(opts)
    if not opts.reuse_port:
        workers = f" with {opts.workers} worker processes" if opts.workers > 1 else ""
        print(
            f"Décroché serving {settings.municipality.name} on {base}{workers} "
            f"(configuration: {settings.config_path})",
            flush=True,
        )
        print(f"  calls: {base}/api/v1/calls   health: {base}/healthz", flush=True)
    if opts.workers > 1:
        return _supervise(settings, opts)
    _run_one(settings, opts)
    return 0


def _run_one(settings: Settings, opts: ServeOptions) -> None:
    from aiohttp import web

    from service.app import create_app

    app = create_app(settings)
    if opts.demo:
        from service.demo.runner import demo_ctx

        app.cleanup_ctx.append(
            demo_ctx(
                f"{base_url(opts)}/webhooks/twilio",
                rate=opts.demo_rate,
                backfill_days=opts.demo_days,
            )
        )
    web.run_app(
        app,
        host=opts.host,
        port=opts.port,
        print=None,
        access_log=None,
        reuse_port=opts.reuse_port or None,
        loop=event_loop(),
    )


def _supervise(settings: Settings, opts: ServeOptions) -> int:
    """Run ``opts.workers`` service processes until a signal or a worker's death."""
    env = _worker_env(settings, asyncio.run(_prepare_database(settings)))
    children = [
        subprocess.Popen(_worker_command(opts, i), env=env)  # noqa: S603
        for i in range(opts.workers)
    ]
    return _wait_for(children)


async def _prepare_database(settings: Settings) -> str:
    """Start (or join) the database and apply the migrations; returns its DSN."""
    import asyncpg

    from service.db.migrate import apply_migrations
    from service.db.pool import resolve_dsn

    dsn = await resolve_dsn(settings.database_url, settings.data_dir)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return dsn


def _worker_env(settings: Settings, dsn: str) -> dict[str, str]:
    """The workers' environment: this one, plus what makes them use the same settings."""
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "DECROCHE_CONFIG": str(settings.config_path),
        "DECROCHE_SECRET_KEY": settings.secret_key,
        "DECROCHE_DATA_DIR": str(settings.data_dir),
    }
    if settings.twilio_auth_token:
        env["TWILIO_AUTH_TOKEN"] = settings.twilio_auth_token
    return env


def _worker_command(opts: ServeOptions, i: int) -> list[str]:
    """The command line of worker ``i``."""
    cmd = [
        sys.executable,
        "-m",
        "service",
        "serve",
        "--host",
        opts.host,
        "--port",
        str(opts.port),
        "--reuse-port",
    ]
    if opts.demo and i == 0:  # one simulated switchboard, not one per worker
        cmd += [
            "--demo",
            "--demo-rate",
            str(opts.demo_rate),
            "--demo-days",
            str(opts.demo_days),
        ]
    return cmd


def _wait_for(children: list[subprocess.Popen[bytes]]) -> int:
    """Wait for the workers, stopping them all on SIGTERM / SIGINT or when one dies; returns
    the exit status (1 when a worker died)."""
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while any(c.poll() is None for c in children):
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        if not stopping:
            log.error("worker %d exited (status %d): stopping the others", pid, code)
            status = 1
            stop(signal.SIGTERM, None)
    for child in children:
        child.wait()
    return status

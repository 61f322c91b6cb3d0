"""``create_app(settings)``: the composition root, the only module that knows every package.

Nothing connects at import time; every resource is a ``cleanup_ctx`` opened when the
application starts and closed when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from campaigns.digest_week import mystery_source
from campaigns.run.recordings import recordings_job
from campaigns.run.runner import CampaignRunner
from campaigns.web import routes as campaign_routes
from service.accounts import login
from service.accounts import views as account_views
from service.callbacks import views as callback_views
from service.calls import views as call_views
from service.calls.folder import Folder
from service.calls.ingest import Ingestor
from service.calls.partitions import make_ahead
from service.calls.rebuild import Parser
from service.db.pool import database_ctx
from service.digest import views as digest_views
from service.digest.delivery import DigestSender
from service.keys import (
    CALENDAR,
    DB_POOL,
    DIGEST,
    FOLDER,
    INGESTOR,
    MAILER,
    METRICS,
    SCHEDULER,
    SETTINGS,
    TWILIO,
    WALL,
)
from service.metrics import views as metric_views
from service.metrics.rollup import Refresher
from service.municipality.calendar import Calendar
from service.observability import Metrics
from service.outside.mail import Mailer, mailer_ctx
from service.outside.twilio.client import twilio_ctx
from service.privacy import Pseudonymiser
from service.privacy import views as privacy_views
from service.privacy.retention import retention_job
from service.scheduler import Scheduler, daily, every, weekly
from service.settings import Settings
from service.wall import views as wall_views
from service.wall.hub import WallHub
from service.web import health, pages
from service.web.auth import auth_middleware
from service.web.errors import error_middleware
from service.web.security import MAX_BODY, security_middleware
from webhooks import asterisk, cdr, twilio
from webhooks import routes as webhook_routes

log = logging.getLogger(__name__)

DIGEST_RETRY_S = 60.0  # how often due digests and retries are looked for

# Every package that answers HTTP, each adding its own routes; the order matters only for
# the pages' catch-alls, which come last.
ROUTES = (
    health,
    call_views,
    metric_views,
    account_views,
    privacy_views,
    callback_views,
    wall_views,
    campaign_routes,
    digest_views,
    webhook_routes,
    login,
    pages,
)


async def ingestion_ctx(app: web.Application) -> AsyncIterator[None]:
    """The ingestor (appends events) and the folder (derives call rows from them)."""
    settings = app[SETTINGS]
    metrics = app[METRICS]
    folder = Folder(app[DB_POOL], Pseudonymiser(settings.secret_key), on_fold=metrics.fold)
    ingestor = Ingestor(app[DB_POOL], on_batch=metrics.batch, on_commit=folder.notify)
    await folder.start()
    await ingestor.start()
    app[FOLDER] = folder
    app[INGESTOR] = ingestor
    yield
    await ingestor.stop()
    await folder.stop()


async def rollup_ctx(app: web.Application) -> AsyncIterator[None]:
    """The refresher of the daily rollup that long reports read (metrics/rollup.py)."""
    refresher = Refresher(app[DB_POOL], app[SETTINGS].municipality)
    await refresher.start()
    yield
    await refresher.stop()


async def wall_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live wall's hub: the latest snapshot, rebuilt when any instance writes calls."""
    metrics = app[METRICS]
    hub = WallHub(
        app[DB_POOL],
        app[CALENDAR],
        on_clients=metrics.wall_clients.set,
        on_rebuild=metrics.wall_rebuild_seconds.observe,
    )
    await hub.start()
    app[WALL] = hub
    yield
    await hub.stop()


async def _end_streams(app: web.Application) -> None:
    # Before aiohttp waits for handlers to finish: open wall streams would never finish.
    if WALL in app:
        app[WALL].close_streams()


async def digest_ctx(app: web.Application) -> AsyncIterator[None]:
    """``app[DIGEST]``: the weekly digest's sender, mailing through the service's mailer."""
    app[DIGEST] = digest_sender(app[SETTINGS], app[DB_POOL], app[METRICS], mailer=app[MAILER])
    yield


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """The scheduled jobs, run by whichever instance is elected leader (scheduler.py)."""
    pool, settings, twilio_api = app[DB_POOL], app[SETTINGS], app[TWILIO]
    m = settings.municipality
    tz = m.tz
    scheduler = Scheduler(pool, tz)
    scheduler.add(
        "privacy.retention", lambda: retention_job(pool, settings, twilio_api), daily(3, 30, tz)
    )
    scheduler.add("partitions.ahead", lambda: make_ahead(pool), daily(0, 20, tz))
    digest = app[DIGEST]
    scheduler.add(
        "digest.weekly",
        digest.weekly,
        weekly(m.digest.send_weekday, m.digest.send_time.hour, m.digest.send_time.minute, tz),
    )
    # Every minute too: retries, and a due week missed at its time (down, or a skipped hour).
    scheduler.add("digest.retry", digest.weekly, every(DIGEST_RETRY_S, tz))
    runner = CampaignRunner(pool, settings, app[MAILER], twilio=twilio_api)
    scheduler.add("campaigns.run", runner.tick, every(settings.campaign_tick_s, tz))
    scheduler.add(
        "campaigns.recordings",
        lambda: recordings_job(pool, settings, twilio_api),
        daily(3, 45, tz),
    )
    await scheduler.start()
    app[SCHEDULER] = scheduler
    app[METRICS].leader.set_function(lambda: float(scheduler.is_leader))
    yield
    await scheduler.stop()


def digest_sender(
    settings: Settings,
    pool: asyncpg.Pool,
    metrics: Metrics | None = None,
    *,
    mailer: Mailer,
) -> DigestSender:
    """The weekly digest's builder and sender, with the mystery calls' section, mailing
    through ``mailer`` (the service's ``app[MAILER]``, or the CLI's from ``mailer_for``)."""
    return DigestSender(
        pool,
        settings.municipality,
        mailer,
        mystery=mystery_source(settings),
        link=f"{settings.public_url}/" if settings.public_url else None,
        on_result=metrics.digest if metrics else None,
    )


def source_parsers(tz: ZoneInfo) -> dict[str, Parser]:
    """Each source's parser of its raw payloads (used to rebuild calls after a rule change);
    ``tz`` is the municipality's zone, for PBX times written without an offset."""
    return {
        twilio.SOURCE: twilio.parse,
        asterisk.SOURCE: asterisk.parser(tz),
        cdr.SOURCE: cdr.parser(tz),
    }


def create_app(settings: Settings) -> web.Application:
    """Build the whole service for ``settings``."""
    app = web.Application(
        middlewares=[security_middleware, error_middleware, auth_middleware],
        client_max_size=MAX_BODY,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[CALENDAR] = Calendar(settings.municipality)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(twilio_ctx)
    app.cleanup_ctx.append(mailer_ctx)
    app.cleanup_ctx.append(ingestion_ctx)
    app.cleanup_ctx.append(rollup_ctx)
    app.cleanup_ctx.append(digest_ctx)
    app.cleanup_ctx.append(scheduler_ctx)
    app.cleanup_ctx.append(wall_ctx)
    app.on_shutdown.append(_end_streams)
    for package in ROUTES:
        package.setup_routes(app)
    return app

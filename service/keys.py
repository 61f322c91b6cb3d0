"""Typed keys of the objects the application holds (``app[KEY]``), shared by all packages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    from service.calls.folder import Folder
    from service.calls.ingest import Ingestor
    from service.digest.delivery import DigestSender
    from service.municipality.calendar import Calendar
    from service.observability import Metrics
    from service.outside.mail import Mailer
    from service.outside.twilio.rest import TwilioRest
    from service.scheduler import Scheduler
    from service.settings import Settings
    from service.wall.hub import WallHub

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CALENDAR: web.AppKey[Calendar] = web.AppKey("calendar")
DB_POOL: web.AppKey[asyncpg.Pool] = web.AppKey("db_pool")
INGESTOR: web.AppKey[Ingestor] = web.AppKey("ingestor")
FOLDER: web.AppKey[Folder] = web.AppKey("folder")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler")
WALL: web.AppKey[WallHub] = web.AppKey("wall")
DIGEST: web.AppKey[DigestSender] = web.AppKey("digest")
TWILIO: web.AppKey[TwilioRest] = web.AppKey("twilio")
MAILER: web.AppKey[Mailer] = web.AppKey("mailer")

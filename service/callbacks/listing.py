"""The open call-backs now: the query, then the rules."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from service.callbacks import queries
from service.callbacks.rules import Callback, open_callbacks_from
from service.municipality.calendar import Calendar


async def open_callbacks(
    conn: asyncpg.Connection | asyncpg.Pool, calendar: Calendar, now: datetime
) -> list[Callback]:
    """Callers to call back, oldest first. Only calls whose number is still kept are
    looked at: past ``privacy.keep_numbers_days`` nobody could dial it."""
    since = now - timedelta(days=calendar.m.privacy.keep_numbers_days)
    return open_callbacks_from(calendar, await queries.open_unanswered(conn, since, now))

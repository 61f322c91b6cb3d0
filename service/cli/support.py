"""What every ``decroche`` sub-command shares: the user's errors, settings, the database."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeVar

from service.settings import Settings, load_settings

T = TypeVar("T")


class UserError(Exception):
    """A failure the user can fix: printed as one line, exit status 1."""


def settings_of(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def with_database(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    """Run ``work(pool, applied_migrations)`` on the migrated database; a database that
    cannot be reached is a user error (exit 1), not a traceback."""
    from service.db.pool import open_database

    async def run() -> T:
        async with open_database(
            settings.database_url, settings.data_dir, command_timeout=None
        ) as (pool, applied):
            return await work(pool, applied)

    try:
        return asyncio.run(run())
    except OSError as exc:
        raise UserError(f"cannot reach the database ({exc}); check DATABASE_URL") from None


def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give a sub-command the ``--config`` option every command that reads it takes."""
    sp.add_argument(
        "--config",
        help="configuration file (default: $DECROCHE_CONFIG, else the shipped example)",
    )
    return sp


def day(value: str) -> date:
    """An argument that is a date (``2026-11-16``)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-11-16") from None

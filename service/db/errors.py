"""Telling « the database is not there » apart from a bug."""

from __future__ import annotations

import asyncpg


class StorageUnavailable(RuntimeError):
    """The database cannot be reached: nothing was stored, the sender should retry."""


def is_unavailable(exc: BaseException) -> bool:
    """Whether an exception means the database cannot be reached (answer 503, retry later)."""
    return isinstance(
        exc,
        (
            OSError,
            TimeoutError,
            StorageUnavailable,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError,
            asyncpg.exceptions.OperatorInterventionError,
        ),
    )

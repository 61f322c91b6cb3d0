"""Telling « the database is not there » apart from a bug."""

from __future__ import annotations

import logging

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
            # Disk full, out of memory, no connection slot: nothing was stored, and a retry
            # once an administrator has acted succeeds.
            asyncpg.exceptions.InsufficientResourcesError,
            # A pooled connection PostgreSQL closed while it sat idle, met half-way through
            # its closing (seen when PostgreSQL restarts). Misuse of a connection is
            # reported by asyncpg's public API as InterfaceError, not this.
            asyncpg.InternalClientError,
        ),
    )


def describe(exc: BaseException) -> str:
    """Why the database is unavailable, in words an administrator can act on."""
    if isinstance(exc, StorageUnavailable):
        return str(exc)
    if isinstance(exc, asyncpg.exceptions.DiskFullError):
        return f"PostgreSQL's disk is full: free some space ({exc})"
    if isinstance(exc, asyncpg.exceptions.TooManyConnectionsError):
        return f"PostgreSQL has no connection slot left: raise max_connections ({exc})"
    if isinstance(exc, asyncpg.exceptions.InsufficientResourcesError):
        return f"PostgreSQL is short of resources ({exc})"
    if isinstance(
        exc, asyncpg.CannotConnectNowError | asyncpg.exceptions.OperatorInterventionError
    ):
        return f"PostgreSQL is restarting ({exc})"
    return f"PostgreSQL cannot be reached ({type(exc).__name__}: {exc})"


class OneLineOutages(logging.Filter):
    """Shortens a logged outage to one line: asyncpg's pool logs a whole traceback each time
    it fails to reconnect while PostgreSQL is down or restarting, which says no more than
    the error's own message and buries the log. Bugs keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and is_unavailable(exc):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True

"""The shapes of the call-backs (pure, plain data): the rows the rules read, and the JSON of
``GET /api/v1/callbacks``.

They are ``TypedDict``\\ s: dicts at run time, so the JSON is what it always was, while mypy
checks every key each layer reads. ``None`` is JSON ``null``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict


class LostCallRow(TypedDict):
    """A row of ``queries.open_unanswered`` (an asyncpg record, read by its columns' names):
    an unanswered, ended inbound call of a known caller that nothing closed since."""

    id: int
    caller_hash: str
    caller_last2: str | None
    caller_number: str | None  # None once erased (``privacy.keep_numbers_days``)
    started_at: datetime
    wait_s: float | None
    line: str | None
    queue: str | None


class CallbackJson(TypedDict):
    """One caller to call back, as the API and the ``/rappels`` page show it."""

    id: int  # the first open lost call's: what ``POST /api/v1/callbacks/{id}/done`` names
    service: str  # the slug
    service_name: str
    caller: str | None  # « …42 »: the last two digits
    number: str | None  # the whole number, to ``quality`` and ``admin`` only
    first_call_at: str  # local ISO instants
    last_call_at: str
    attempts: int
    wait_s: float  # how long they waited on the first lost call
    due_by: str | None  # None: no opening day in the year ahead
    overdue: bool


class CallbackListing(TypedDict):
    """``GET /api/v1/callbacks``."""

    callbacks: list[CallbackJson]  # oldest first call first
    count: int
    numbers_shown: bool

"""Generic call-detail records → normalised events (``shared/spec/sources.md``, « Generic CDR »).

One record describes one whole call: ``id``, ``line``, ``caller``, ``started_at``,
``offered_at``, ``answered_at``, ``ended_at``, ``agent``, ``queue``, ``direction``. The same
columns come as JSON (``POST /webhooks/cdr``) or CSV (``decroche import csv``). A record sent
again with the same ``id`` and other values updates the call (the record received last wins);
sent again unchanged, it is a duplicate. Times are ISO 8601; without an offset they are the
PBX's local time, taken in the municipality's zone. Pure functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from service.calls.model import Event, Kind
from webhooks.errors import Malformed, refuse_nul

SOURCE = "cdr"
FIELDS = (
    "id",
    "line",
    "caller",
    "started_at",
    "offered_at",
    "answered_at",
    "ended_at",
    "agent",
    "queue",
    "direction",
)
_TIMES = ("started_at", "offered_at", "answered_at", "ended_at")
_TEXTS = {"line": 64, "caller": 64, "agent": 128, "queue": 128}
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def rows_of(body: bytes) -> tuple[list[Any], bool]:
    """The records of a JSON body: one record, or ``{"calls": [...]}``. Returns the records
    and whether the body was a batch; raises :class:`Malformed` on a body of neither shape."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not JSON: {exc}") from None
    if isinstance(data, dict) and "calls" in data:
        calls = data["calls"]
        if not isinstance(calls, list):
            raise Malformed("calls must be a list of call records")
        if not calls:
            raise Malformed("calls is empty")
        return calls, True
    if isinstance(data, dict):
        return [data], False
    raise Malformed('body must be one call record (an object) or {"calls": [...]}')


def _time(row: Mapping[str, Any], name: str, tz: ZoneInfo) -> datetime | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(f"{name} must be an ISO 8601 date and time, e.g. 2026-11-16T08:31:02+01:00")
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Malformed(
            f"{name} is not an ISO 8601 date and time (e.g. 2026-11-16T08:31:02+01:00): "
            f"{value[:40]!r}"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    at = at.astimezone(UTC)
    if not _EARLIEST <= at < _LATEST:
        raise Malformed(f"{name} is out of range (years 2000 to 2099): {value[:40]!r}")
    return at


def _text(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(f"{name} must be a string or null")
    value = value.strip()
    if len(value) > _TEXTS[name]:
        raise Malformed(f"{name} is longer than {_TEXTS[name]} characters")
    return value or None


def _id(row: Mapping[str, Any]) -> str:
    value = row.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Malformed("id is required: the PBX's own identifier of the call (string)")
    text = str(value).strip()
    if not text or len(text) > 128 or not text.isprintable():
        raise Malformed("id must be 1 to 128 printable characters")
    return text


def normalise(row: Any, tz: ZoneInfo) -> dict[str, Any]:
    """The record checked and in one spelling (times in UTC, ISO 8601); raises
    :class:`Malformed` saying which field is wrong."""
    if not isinstance(row, dict):
        raise Malformed("a call record must be an object")
    refuse_nul(row, "the record")
    out: dict[str, Any] = {"id": _id(row)}
    for name in _TEXTS:
        out[name] = _text(row, name)
    direction = row.get("direction") or "inbound"
    if direction not in ("inbound", "outbound"):
        raise Malformed(f"direction must be 'inbound' or 'outbound', not {str(direction)[:20]!r}")
    out["direction"] = direction
    times = {name: _time(row, name, tz) for name in _TIMES}
    started = times["started_at"]
    if started is None:
        raise Malformed("started_at is required")
    offered, answered, ended = times["offered_at"], times["answered_at"], times["ended_at"]
    if offered is not None and offered < started:
        raise Malformed("offered_at is before started_at")
    if answered is not None and answered < (offered or started):
        raise Malformed("answered_at is before " + ("offered_at" if offered else "started_at"))
    if ended is not None and ended < (answered or offered or started):
        raise Malformed("ended_at is before the call was answered or started")
    for name, at in times.items():
        out[name] = at.isoformat() if at else None
    return out


def to_event(record: Mapping[str, Any], received_at: datetime) -> Event:
    """The SUMMARY event of a normalised record."""
    key = hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=16)

    def at(name: str) -> datetime | None:
        value = record.get(name)
        return datetime.fromisoformat(value) if value else None

    return Event(
        source=SOURCE,
        call_key=record["id"],
        dedup_key=f"{record['id']}:{key.hexdigest()}",
        kind=Kind.SUMMARY,
        received_at=received_at,
        at=at("started_at"),
        direction=record["direction"],
        line=record["line"],
        caller=record["caller"],
        queue=record["queue"],
        agent=record["agent"],
        offered_at=at("offered_at"),
        answered_at=at("answered_at"),
        ended_at=at("ended_at"),
    )


def parse(row: Mapping[str, Any], received_at: datetime, tz: ZoneInfo) -> Event:
    """The event of one record as received; raises :class:`Malformed`."""
    return to_event(normalise(row, tz), received_at)


def parser(tz: ZoneInfo) -> Callable[[Mapping[str, Any], datetime], Event]:
    """``parse`` bound to the municipality's zone, as ``decroche refold --reparse`` wants."""

    def bound(row: Mapping[str, Any], received_at: datetime) -> Event:
        return parse(row, received_at, tz)

    return bound

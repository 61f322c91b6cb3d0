"""Asterisk ``queue_log`` → normalised events (``shared/spec/sources.md``, « Asterisk »).

Two spellings of the same log are read:

* the file Asterisk writes (``/var/log/asterisk/queue_log``):
  ``epoch|callid|queue|agent|EVENT|arg1|arg2|…``;
* the rows of its database variant (FreePBX/Wazo ``queue_log`` table, exported as CSV):
  columns ``time``, ``callid``, ``queuename``, ``agent``, ``event`` and ``data1``..``data5``
  (or one ``data`` column with the arguments separated by ``|``). ``time`` carries
  microseconds; without an offset it is the PBX's local time, taken in the municipality's
  time zone.

One line gives one event. Lines that are about no call (an agent logging in, a queue
reloading: ``callid`` ``NONE``) and events this adapter does not use are kept as
``Kind.OTHER`` and change nothing. Pure functions; the HTTP handler and the file importer
live in ``webhooks/routes.py`` and ``webhooks/files.py``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from service.calls.model import Disposition, Event, Kind
from webhooks.errors import Malformed, refuse_nul

SOURCE = "asterisk"

_EVENT = re.compile(r"^[A-Z][A-Z0-9_]{1,40}$")
_NO_CALL = {"", "NONE", "REALTIME", "NULL"}
_NO_NUMBER = {"", "anonymous", "unknown", "restricted", "private", "none", "withheld"}
# The earliest and latest instants a PBX log plausibly holds (a typo in a date is caught).
_EPOCH_MIN, _EPOCH_MAX = 946_684_800, 4_102_444_800  # 2000-01-01 .. 2100-01-01
DATA_COLUMNS = ("data1", "data2", "data3", "data4", "data5")


@dataclass(slots=True)  # not frozen: see Event
class QueueLogLine:
    """One ``queue_log`` line, whichever spelling it came in."""

    at: datetime  # UTC
    callid: str
    queue: str
    agent: str
    event: str
    args: tuple[str, ...]
    # Identifies the line: the same line read twice (a second import, a resent POST) is a
    # duplicate. A hash of its fields, the time written to the microsecond.
    key: str


def _key(
    seconds: str, callid: str, queue: str, agent: str, event: str, args: tuple[str, ...]
) -> str:
    text = "|".join((seconds, callid, queue, agent, event, *args))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# --- reading ------------------------------------------------------------------------------

# Lines of one call share their second: the instant is worked out once per second written.
_INSTANTS: dict[str, tuple[datetime, str]] = {}


def _epoch(value: str, where: str) -> tuple[datetime, str]:
    """The instant of a Unix time, and its canonical spelling (for the line's key)."""
    known = _INSTANTS.get(value)
    if known is not None:
        return known
    try:
        seconds = float(value)
    except ValueError:
        raise Malformed(f"{where} is not a Unix time: {value[:40]!r}") from None
    if not _EPOCH_MIN <= seconds < _EPOCH_MAX:
        raise Malformed(f"{where} is out of range (years 2000 to 2099): {value[:40]!r}")
    if len(_INSTANTS) > 10_000:
        _INSTANTS.clear()
    known = _INSTANTS[value] = (datetime.fromtimestamp(seconds, UTC), f"{seconds:.6f}")
    return known


# Event names seen valid (bounded): most lines repeat a few names, checked once each.
_VALID_EVENTS: set[str] = set()


def _fields(callid: str, queue: str, agent: str, event: str) -> tuple[str, str, str, str]:
    callid, queue, agent, event = callid.strip(), queue.strip(), agent.strip(), event.strip()
    if event not in _VALID_EVENTS:
        if event not in _KNOWN and not _EVENT.match(event):
            raise Malformed(f"event is not a queue_log event name: {event[:40]!r}")
        if len(_VALID_EVENTS) < 1000:
            _VALID_EVENTS.add(event)
    if len(callid) > 128 or len(queue) > 128 or len(agent) > 256:
        raise Malformed("callid, queue or agent is too long")
    return callid, queue, agent, event


def parse_line(text: str) -> QueueLogLine:
    """A line of the ``queue_log`` file; raises :class:`Malformed`."""
    refuse_nul(text, "the line")
    parts = text.rstrip("\r\n").split("|")
    if len(parts) < 5:
        raise Malformed(
            f"expected at least 5 fields separated by '|' (epoch|callid|queue|agent|EVENT), "
            f"found {len(parts)}"
        )
    # Written out rather than through helpers: a bulk import reads millions of lines.
    at, seconds = _INSTANTS.get(parts[0]) or _epoch(parts[0].strip(), "the first field (time)")
    callid, queue, agent, event = _fields(parts[1], parts[2], parts[3], parts[4])
    args = tuple(parts[5:])
    if args and not args[-1]:
        args = _trim(parts[5:])
    text = "|".join((seconds, callid, queue, agent, event, *args))
    key = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    return QueueLogLine(at, callid, queue, agent, event, args, key)


def _trim(args: list[str]) -> tuple[str, ...]:
    """Arguments without the empty ones at the end (the database pads to five)."""
    end = len(args)
    while end and not args[end - 1]:
        end -= 1
    return tuple(args[:end])


def _row_time(value: str, tz: ZoneInfo) -> datetime:
    value = value.strip()
    if value.replace(".", "", 1).isdigit():
        return _epoch(value, "column time")[0]
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise Malformed(
            f"column time is not a date and time like '2026-11-16 08:31:02.123456': {value[:40]!r}"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)  # the PBX's local time
    at = at.astimezone(UTC)
    if not _EPOCH_MIN <= at.timestamp() < _EPOCH_MAX:
        raise Malformed(f"column time is out of range (years 2000 to 2099): {value[:40]!r}")
    return at


def parse_row(row: Mapping[str, Any], tz: ZoneInfo) -> QueueLogLine:
    """A row of the database variant (column names as Asterisk's ``queue_log`` table)."""
    refuse_nul(dict(row), "the row")

    def col(name: str, required: bool = True) -> str:
        value = row.get(name)
        if value is None:
            if required:
                raise Malformed(f"column {name} is missing")
            return ""
        return str(value)

    at = _row_time(col("time"), tz)
    callid, queue, agent, event = _fields(
        col("callid"), col("queuename", False) or col("queue", False), col("agent"), col("event")
    )
    if any(c in row for c in DATA_COLUMNS):
        data = [col(c, False) for c in DATA_COLUMNS]
    else:
        data = col("data", False).split("|")
    args = _trim([a.strip() for a in data])
    key = _key(f"{at.timestamp():.6f}", callid, queue, agent, event, args)
    return QueueLogLine(at, callid, queue, agent, event, args, key)


# --- meaning ------------------------------------------------------------------------------


def _arg_seconds(line: QueueLogLine, index: int, what: str) -> float | None:
    """Argument ``index`` (0-based) as seconds; None when absent."""
    if index >= len(line.args) or line.args[index] == "":
        return None
    value = line.args[index]
    try:
        n = float(value)
    except ValueError:
        raise Malformed(
            f"{line.event}: {what} (argument {index + 1}) is not a number: {value[:40]!r}"
        ) from None
    if not 0 <= n < 10**7:
        raise Malformed(f"{line.event}: {what} (argument {index + 1}) is out of range: {value!r}")
    return n


def _number(value: str) -> str | None:
    value = value.strip()
    return None if value.lower() in _NO_NUMBER else value[:64]


# Unanswered ends: the event, the position of its wait argument, how the call ended.
_LEFT = {
    "ABANDON": (2, Disposition.ABANDONED),
    "EXITWITHTIMEOUT": (2, Disposition.NO_ANSWER),
    "EXITEMPTY": (2, Disposition.NO_ANSWER),
    "LEAVEEMPTY": (2, Disposition.NO_ANSWER),
    "LEAVEUNAVAIL": (2, Disposition.NO_ANSWER),
    "EXITWITHKEY": (3, Disposition.ABANDONED),  # the caller chose to leave (a key pressed)
}
# Refused at the door (Wazo and others): no wait argument.
_REFUSED = {
    "JOINEMPTY": Disposition.NO_ANSWER,
    "JOINUNAVAIL": Disposition.NO_ANSWER,
    "CLOSED": Disposition.NO_ANSWER,
    "DIVERT_CA_RATIO": Disposition.NO_ANSWER,
    "DIVERT_HOLDTIME": Disposition.NO_ANSWER,
    "FULL": Disposition.BUSY,
}
# Answered ends: hold and talk time at these positions.
_COMPLETED = {
    "COMPLETECALLER": (0, 1),
    "COMPLETEAGENT": (0, 1),
    "BLINDTRANSFER": (2, 3),
    "ATTENDEDTRANSFER": (2, 3),
    "TRANSFER": (2, 3),
}
_KNOWN = frozenset(
    {"ENTERQUEUE", "DID", "CONNECT", "RINGNOANSWER", "RINGCANCELED", *_LEFT, *_REFUSED, *_COMPLETED}
)


def to_event(line: QueueLogLine, received_at: datetime) -> Event:
    """The normalised event of one line; raises :class:`Malformed` on bad arguments."""
    key = line.key
    if line.callid in _NO_CALL:
        # About no call (members, pauses, reloads): kept, alone, changing nothing.
        return Event(SOURCE, f"noncall:{key}", key, Kind.OTHER, received_at, at=line.at)
    queue = None if line.queue in _NO_CALL else line.queue
    agent = None if line.agent in _NO_CALL else line.agent
    # The common fields first, then what the event says: built in place, as keyword
    # arguments through a dict cost a tenth of a bulk import's time.
    event = Event(SOURCE, line.callid, key, Kind.OTHER, received_at, at=line.at, queue=queue)
    ev = line.event
    if ev == "ENTERQUEUE":
        event.kind, event.direction = Kind.STARTED, "inbound"
        event.caller = _number(line.args[1]) if len(line.args) > 1 else None
    elif ev == "DID":
        # FreePBX logs the dialled number when the call comes in.
        event.kind, event.direction = Kind.STARTED, "inbound"
        event.line = _number(line.args[0]) if line.args else None
    elif ev == "CONNECT":
        event.kind, event.agent = Kind.AGENT_ANSWERED, agent
        event.wait_s = _arg_seconds(line, 0, "hold time")
    elif ev in _LEFT:
        index, status = _LEFT[ev]
        event.kind, event.status = Kind.ENDED, status.value
        event.wait_s = _arg_seconds(line, index, "wait time")
    elif ev in _REFUSED:
        event.kind, event.status = Kind.ENDED, _REFUSED[ev].value
    elif ev in _COMPLETED:
        hold_i, talk_i = _COMPLETED[ev]
        event.kind, event.status, event.answered = Kind.ENDED, Disposition.ANSWERED.value, True
        event.agent = agent
        event.wait_s = _arg_seconds(line, hold_i, "hold time")
        event.duration_s = _arg_seconds(line, talk_i, "talk time")
    elif ev in ("RINGNOANSWER", "RINGCANCELED"):
        event.kind, event.agent, event.leg = Kind.LEG, agent, agent
    return event


def parse(payload: Mapping[str, Any], received_at: datetime, tz: ZoneInfo) -> Event:
    """The event of a stored payload: ``{"line": …}`` (file, POST) or a database row."""
    text = payload.get("line")
    line = parse_line(str(text)) if text is not None else parse_row(payload, tz)
    return to_event(line, received_at)


def parser(tz: ZoneInfo) -> Callable[[Mapping[str, Any], datetime], Event]:
    """``parse`` bound to the municipality's zone, as ``decroche refold --reparse`` wants."""

    def bound(payload: Mapping[str, Any], received_at: datetime) -> Event:
        return parse(payload, received_at, tz)

    return bound

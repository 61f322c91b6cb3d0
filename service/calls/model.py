"""The normalised event every source adapter produces, and the call folded from them.

Adapters (``webhooks/``) turn what a phone system sends into :class:`Event` values; the core
stores them append-only and folds all the events of one call into one :class:`Call`. Nothing
below the adapters knows which source an event came from, except as a label.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What an event says about its call."""

    STARTED = "started"  # the inbound leg exists (initiated, ringing, queued, queue entry)
    SYSTEM_ANSWERED = (
        "system_answered"  # the inbound leg was picked up by the PBX/IVR, not a person
    )
    ENDED = "ended"  # the inbound leg ended; ``status`` says how
    LEG = "leg"  # an agent leg rings or ends (no answer on its own)
    AGENT_ANSWERED = "agent_answered"  # a human agent picked up
    DIAL_RESULT = "dial_result"  # the outcome of a dial towards agents
    QUEUE_RESULT = "queue_result"  # the outcome of a wait in a queue
    AGENT_TAKEN = "agent_taken"  # an agent takes the caller out of a queue
    RECORDING = "recording"  # a recording of the call is available
    # The whole call as a call-detail record describes it (start, offer, answer, end). A
    # source that sends records sends the call again when it changes: the record received
    # last describes the call.
    SUMMARY = "summary"
    OTHER = "other"  # kept for the record, changes nothing


class Disposition(StrEnum):
    """How a call ended, before the calendar is asked (``closed`` is decided at read time)."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"


# Not frozen, though never changed once built: a frozen dataclass sets each of its fields
# through object.__setattr__, which made building an event cost as much as parsing the
# line it comes from (bulk imports build millions).
@dataclass(slots=True)
class Event:
    """One normalised event. ``call_key`` groups the events of one call within a source.

    ``dedup_key`` identifies a delivery: the same key twice is a duplicate that changes nothing.
    ``at`` is the instant the source gives for the event (None when it gives none);
    ``received_at`` is only a last resort for a call whose events carry no instant at all.
    Instants are in UTC: differences of wall-clock times across a DST change would be wrong.
    """

    source: str
    call_key: str
    dedup_key: str
    kind: Kind
    received_at: datetime
    at: datetime | None = None
    seq: int | None = None
    direction: str | None = None  # "inbound" or "outbound", on root-leg events
    line: str | None = None  # the dialled municipal number (E.164)
    caller: str | None = None  # the caller's number, personal data
    queue: str | None = None
    agent: str | None = None
    leg: str | None = None  # the agent leg's own id, for agent-leg events
    status: str | None = None  # a Disposition value on ENDED / DIAL_RESULT / QUEUE_RESULT
    # On DIAL_RESULT / QUEUE_RESULT, and on ENDED when the end says an agent had answered
    # (a PBX that logs « call completed after hold h, talk t »).
    answered: bool | None = None
    wait_s: float | None = None  # the wait as the source measured it (authoritative)
    duration_s: float | None = None  # leg duration (ENDED) or talk time (DIAL_RESULT)
    recording_url: str | None = None
    # SUMMARY only: the instants the record gives besides the start (``at``).
    offered_at: datetime | None = None  # entry in the queue or first offer to agents
    answered_at: datetime | None = None
    ended_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set (datetimes and the kind as they are: orjson writes them
        as ``isoformat()`` and as the kind's value)."""
        return {name: value for name in _EVENT_FIELDS if (value := getattr(self, name)) is not None}

    def details(self) -> dict[str, Any]:
        """:meth:`as_dict` without the fields stored in the event's own columns
        (:data:`STORED_APART`): what the ``norm`` column holds."""
        return {name: value for name in _DETAILS if (value := getattr(self, name)) is not None}

    @classmethod
    def from_stored(
        cls,
        source: str,
        call_key: str,
        dedup_key: str,
        kind: str,
        at: datetime | None,
        received_at: datetime,
        details: dict[str, Any],
    ) -> Event:
        """The event of a stored row: its columns and its ``norm`` (which, in rows written
        before migration 0007, repeats the columns)."""
        values = {k: v for k, v in details.items() if k not in STORED_APART}
        for k in _INSTANTS:
            if k in values:
                values[k] = datetime.fromisoformat(values[k])
        return cls(source, call_key, dedup_key, Kind(kind), received_at, at=at, **values)


# Stored in columns of ``events`` (``at`` as ``occurred_at``), not repeated in ``norm``: a
# stored event is half as large.
STORED_APART = frozenset({"source", "call_key", "dedup_key", "kind", "at", "received_at"})
_EVENT_FIELDS = tuple(f.name for f in fields(Event))
_DETAILS = tuple(name for name in _EVENT_FIELDS if name not in STORED_APART)
_INSTANTS = ("at", "received_at", "offered_at", "answered_at", "ended_at")


@dataclass(slots=True)  # not frozen: see Event
class Call:
    """A call as folded from its events; the row stored in ``calls``."""

    source: str
    external_id: str
    direction: str
    line: str | None
    queue: str | None
    caller: str | None
    agent: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    wait_s: float | None
    answered: bool
    disposition: Disposition | None  # None while the call is still in progress
    time_from_events: bool  # False when no event gave an instant (received time used)
    recording_url: str | None = None

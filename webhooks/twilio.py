"""Twilio voice callbacks → normalised events (``shared/spec/sources.md``, « Twilio »).

Every callback kind may be pointed at the one URL; the kind is told apart by its parameters.
Pure functions: the HTTP handler lives in ``webhooks/routes.py``, and the signature check
every Twilio route runs in ``service/outside/twilio/signing.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import TypedDict
from xml.sax.saxutils import escape

from service.calls.model import Disposition, Event, Kind
from webhooks.errors import Malformed, refuse_nul

__all__ = ["SOURCE", "Malformed", "parse", "twiml_answer"]

SOURCE = "twilio"
_SID = re.compile(r"^[A-Za-z0-9_-]{2,64}$")

# Final statuses of a leg (https://www.twilio.com/docs/voice/api/call-resource#call-status-values)
_LEG_END = {
    "completed": Disposition.ABANDONED,
    "busy": Disposition.BUSY,
    "no-answer": Disposition.NO_ANSWER,
    "failed": Disposition.FAILED,
    "canceled": Disposition.ABANDONED,
}
_LEG_START = {"queued", "initiated", "ringing"}
_LEG_UP = {"in-progress", "answered"}
_DIAL = {
    "completed": Disposition.ANSWERED,
    "answered": Disposition.ANSWERED,
    "busy": Disposition.BUSY,
    "no-answer": Disposition.NO_ANSWER,
    "failed": Disposition.FAILED,
    "canceled": Disposition.ABANDONED,
}
_QUEUE = {
    "bridged": Disposition.ANSWERED,
    "redirected-from-bridged": Disposition.ANSWERED,
    "hangup": Disposition.ABANDONED,
    "queue-full": Disposition.BUSY,
    "error": Disposition.FAILED,
    "system-error": Disposition.FAILED,
    "redirected": Disposition.NO_ANSWER,
    "leave": Disposition.NO_ANSWER,
}


class RootSide(TypedDict, total=False):
    """What a request about the parent (inbound or outbound) leg says of the call."""

    direction: str | None
    line: str | None
    caller: str | None


def _sid(params: Mapping[str, str], name: str, required: bool = True) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise Malformed(f"missing parameter {name}")
        return None
    if not _SID.match(value):
        raise Malformed(f"parameter {name} is not a Twilio SID: {value[:40]!r}")
    return value


def _number(params: Mapping[str, str], name: str) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        n = float(value)
    except ValueError:
        raise Malformed(f"parameter {name} is not a number: {value[:40]!r}") from None
    if not 0 <= n < 10**7:
        raise Malformed(f"parameter {name} is out of range: {value[:40]!r}")
    return n


def _timestamp(params: Mapping[str, str]) -> datetime | None:
    value = params.get("Timestamp")
    if not value:
        return None
    return _parse_timestamp(value)


@lru_cache(maxsize=4096)
def _parse_timestamp(value: str) -> datetime:
    # Cached: one-second resolution means many callbacks share the same Timestamp.
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise Malformed(f"parameter Timestamp is not an RFC 2822 date: {value[:60]!r}") from None
    if at.tzinfo is None:
        raise Malformed(f"parameter Timestamp has no time zone: {value[:60]!r}")
    return at.astimezone(UTC)


def _seq(params: Mapping[str, str]) -> int | None:
    value = params.get("SequenceNumber")
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 9:
        raise Malformed(f"parameter SequenceNumber is not a whole number: {value[:40]!r}")
    return int(value)


def parse(params: Mapping[str, str], received_at: datetime) -> Event:
    """The normalised event of one Twilio callback; raises :class:`Malformed`."""
    refuse_nul(dict(params), "the callback")
    call_sid = _sid(params, "CallSid")
    assert call_sid is not None
    root = _root_side(params)
    if params.get("RecordingSid"):
        return _recording(params, call_sid, received_at)
    if "QueueResult" in params:
        return _queue_result(params, call_sid, received_at, root)
    if "DequeingCallSid" in params:
        return _agent_taken(params, call_sid, received_at, root)
    if "DialCallStatus" in params:
        return _dial_result(params, call_sid, received_at, root)
    if "CallStatus" in params:
        return _status(params, call_sid, received_at, root)
    raise Malformed(
        "not a Twilio voice callback: expected CallStatus, DialCallStatus, "
        "QueueResult, DequeingCallSid or RecordingSid"
    )


def _recording(params: Mapping[str, str], call_sid: str, received_at: datetime) -> Event:
    """A recording's status callback: its address once it is complete."""
    rec = _sid(params, "RecordingSid")
    status = params.get("RecordingStatus", "")
    url = params.get("RecordingUrl") if status in ("", "completed") else None
    return Event(
        SOURCE,
        call_sid,
        f"{call_sid}:recording:{rec}:{status}",
        Kind.RECORDING,
        received_at,
        at=_timestamp(params),
        recording_url=url or None,
    )


def _queue_result(
    params: Mapping[str, str], call_sid: str, received_at: datetime, root: RootSide
) -> Event:
    """The ``<Enqueue>`` action: how the caller left the queue, and after how long."""
    result = params["QueueResult"]
    if result not in _QUEUE:
        raise Malformed(f"parameter QueueResult has an unknown value: {result[:40]!r}")
    verdict = _QUEUE[result]
    return Event(
        SOURCE,
        call_sid,
        f"{call_sid}:enqueue_action",
        Kind.QUEUE_RESULT,
        received_at,
        status=verdict.value,
        answered=verdict is Disposition.ANSWERED,
        wait_s=_number(params, "QueueTime"),
        **root,
    )


def _agent_taken(
    params: Mapping[str, str], call_sid: str, received_at: datetime, root: RootSide
) -> Event:
    """The queue's ``url`` fetched for an agent: the agent's leg took the caller."""
    agent_call = _sid(params, "DequeingCallSid")
    return Event(
        SOURCE,
        call_sid,
        f"{call_sid}:queue_url:{agent_call}",
        Kind.AGENT_TAKEN,
        received_at,
        wait_s=_number(params, "QueueTime"),
        leg=agent_call,
        **root,
    )


def _dial_result(
    params: Mapping[str, str], call_sid: str, received_at: datetime, root: RootSide
) -> Event:
    """The ``<Dial>`` action: its verdict, the leg it bridged and for how long."""
    status = params["DialCallStatus"]
    if status not in _DIAL:
        raise Malformed(f"parameter DialCallStatus has an unknown value: {status[:40]!r}")
    leg = _sid(params, "DialCallSid", required=False)
    verdict = _DIAL[status]
    return Event(
        SOURCE,
        call_sid,
        f"{call_sid}:dial_action:{leg or ''}",
        Kind.DIAL_RESULT,
        received_at,
        status=verdict.value,
        answered=verdict is Disposition.ANSWERED,
        leg=leg,
        duration_s=_number(params, "DialCallDuration"),
        **root,
    )


def _root_side(params: Mapping[str, str]) -> RootSide:
    """Line and caller of the inbound leg, as the parameters of a parent-call request give them."""
    direction = params.get("Direction", "")
    if params.get("ParentCallSid"):
        return {}
    if direction.startswith("outbound"):
        # Our own call out (mystery call, call-back): our line is From, the other party To.
        return {
            "direction": "outbound",
            "line": params.get("From") or None,
            "caller": params.get("To") or None,
        }
    return {
        "direction": "inbound" if direction == "inbound" else None,
        "line": params.get("To") or None,
        "caller": params.get("From") or None,
    }


def _status(
    params: Mapping[str, str], call_sid: str, received_at: datetime, root: RootSide
) -> Event:
    status = params["CallStatus"]
    if status not in _LEG_END and status not in _LEG_START and status not in _LEG_UP:
        raise Malformed(f"parameter CallStatus has an unknown value: {status[:40]!r}")
    at = _timestamp(params)
    seq = _seq(params)
    dedup = f"{call_sid}:status:{seq if seq is not None else status}"
    duration = _number(params, "CallDuration")
    machine = params.get("AnsweredBy", "").startswith(("machine", "fax"))
    parent = _sid(params, "ParentCallSid", required=False)
    if parent is not None:
        # A child leg of <Dial>: an agent's phone. Its pick-up is the agent answer, unless
        # answering-machine detection says a machine took it.
        kind = Kind.AGENT_ANSWERED if status in _LEG_UP and not machine else Kind.LEG
        return Event(
            SOURCE,
            parent,
            dedup,
            kind,
            received_at,
            at=at,
            seq=seq,
            leg=call_sid,
            agent=params.get("To") or None,
        )
    if status in _LEG_START:
        kind = Kind.STARTED
    elif status in _LEG_UP:
        # The inbound leg's own pick-up is the PBX answering (IVR, queue music), never an
        # agent. On an outbound leg it is the called party picking up.
        outbound = root.get("direction") == "outbound"
        kind = Kind.AGENT_ANSWERED if outbound and not machine else Kind.SYSTEM_ANSWERED
    else:
        return Event(
            SOURCE,
            call_sid,
            dedup,
            Kind.ENDED,
            received_at,
            at=at,
            seq=seq,
            status=_LEG_END[status].value,
            duration_s=duration,
            **root,
        )
    return Event(SOURCE, call_sid, dedup, kind, received_at, at=at, seq=seq, **root)


def twiml_answer(next_url: str | None) -> str:
    """The TwiML an action callback gets back: empty, or a redirect to ``?next=``."""
    if next_url:
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            f'<Redirect method="POST">{escape(next_url)}</Redirect></Response>'
        )
    return '<?xml version="1.0" encoding="UTF-8"?><Response/>'

"""Telling Twilio's callback kinds apart, and refusing what cannot be understood."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.calls.model import Kind
from webhooks import twilio

NOW = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)
CALL = "CA" + "a" * 32
CHILD = "CA" + "b" * 32


def status(**kw: str) -> dict[str, str]:
    base = {
        "CallSid": CALL,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "+33612345678",
        "To": "+33100000001",
        "SequenceNumber": "0",
        "Timestamp": "Mon, 16 Nov 2026 08:31:02 +0000",
        "CallbackSource": "call-progress-events",
    }
    base.update(kw)
    return base


def test_status_callbacks_of_the_inbound_leg() -> None:
    e = twilio.parse(status(), NOW)
    assert (e.kind, e.call_key, e.line, e.caller, e.direction) == (
        Kind.STARTED,
        CALL,
        "+33100000001",
        "+33612345678",
        "inbound",
    )
    assert e.at == datetime(2026, 11, 16, 8, 31, 2, tzinfo=UTC)
    assert e.dedup_key == f"{CALL}:status:0"
    assert twilio.parse(status(CallStatus="in-progress"), NOW).kind is Kind.SYSTEM_ANSWERED
    end = twilio.parse(status(CallStatus="busy", CallDuration="0", SequenceNumber="2"), NOW)
    assert (end.kind, end.status, end.duration_s) == (Kind.ENDED, "busy", 0)


def test_child_leg_pickup_is_the_agent_answer() -> None:
    e = twilio.parse(
        status(
            CallSid=CHILD,
            ParentCallSid=CALL,
            CallStatus="in-progress",
            Direction="outbound-dial",
            To="client:agent-12",
        ),
        NOW,
    )
    assert (e.kind, e.call_key, e.leg, e.agent) == (
        Kind.AGENT_ANSWERED,
        CALL,
        CHILD,
        "client:agent-12",
    )
    machine = twilio.parse(
        status(
            CallSid=CHILD, ParentCallSid=CALL, CallStatus="in-progress", AnsweredBy="machine_start"
        ),
        NOW,
    )
    assert machine.kind is Kind.LEG


def test_outbound_call_pickup_is_the_called_party() -> None:
    e = twilio.parse(
        status(
            CallStatus="in-progress",
            Direction="outbound-api",
            From="+33100000001",
            To="+33699999999",
        ),
        NOW,
    )
    assert (e.kind, e.direction, e.line, e.caller) == (
        Kind.AGENT_ANSWERED,
        "outbound",
        "+33100000001",
        "+33699999999",
    )


def test_action_callbacks() -> None:
    dial = twilio.parse(
        {
            "CallSid": CALL,
            "DialCallStatus": "completed",
            "DialCallSid": CHILD,
            "DialCallDuration": "95",
            "CallStatus": "in-progress",
        },
        NOW,
    )
    assert (dial.kind, dial.answered, dial.duration_s) == (Kind.DIAL_RESULT, True, 95)
    queue = twilio.parse(
        {
            "CallSid": CALL,
            "QueueResult": "hangup",
            "QueueTime": "48",
            "QueueSid": "QU" + "c" * 32,
            "CallStatus": "in-progress",
        },
        NOW,
    )
    assert (queue.kind, queue.answered, queue.wait_s, queue.status) == (
        Kind.QUEUE_RESULT,
        False,
        48,
        "abandoned",
    )
    taken = twilio.parse(
        {"CallSid": CALL, "QueueTime": "12", "DequeingCallSid": CHILD, "QueueSid": "QU" + "c" * 32},
        NOW,
    )
    assert (taken.kind, taken.wait_s) == (Kind.AGENT_TAKEN, 12)
    rec = twilio.parse(
        {
            "CallSid": CALL,
            "RecordingSid": "RE" + "d" * 32,
            "RecordingUrl": "https://api.twilio.com/rec/RE1",
            "RecordingStatus": "completed",
        },
        NOW,
    )
    assert (rec.kind, rec.recording_url) == (Kind.RECORDING, "https://api.twilio.com/rec/RE1")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "missing parameter CallSid"),
        ({"CallSid": CALL}, "not a Twilio voice callback"),
        ({"CallSid": "CA<script>", "CallStatus": "ringing"}, "not a Twilio SID"),
        (status(Timestamp="yesterday"), "not an RFC 2822 date"),
        (status(SequenceNumber="-1"), "SequenceNumber"),
        (status(CallStatus="exploded"), "unknown value"),
        ({"CallSid": CALL, "QueueResult": "bridged", "QueueTime": "soon"}, "QueueTime"),
        ({"CallSid": CALL, "QueueResult": "teleported"}, "QueueResult"),
        ({"CallSid": CALL, "DialCallStatus": "maybe"}, "DialCallStatus"),
        (status(CallDuration="1e99"), "out of range"),
    ],
)
def test_malformed_callbacks_say_what_is_wrong(params: dict[str, str], words: str) -> None:
    with pytest.raises(twilio.Malformed, match=words):
        twilio.parse(params, NOW)


def test_twiml_answers() -> None:
    assert twilio.twiml_answer(None).endswith("<Response/>")
    redirect = twilio.twiml_answer("https://x.example/next?a=1&b=2")
    assert '<Redirect method="POST">https://x.example/next?a=1&amp;b=2</Redirect>' in redirect

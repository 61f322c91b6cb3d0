"""Helpers turning simulated calls (known truth) into normalised events."""

from __future__ import annotations

from datetime import UTC, datetime

from service.calls.model import Event
from service.demo.traffic import SimCall
from webhooks import twilio

RECEIVED = datetime(2030, 1, 1, tzinfo=UTC)  # receipt times must never matter


def events_of(call: SimCall) -> list[Event]:
    return [twilio.parse(params, RECEIVED) for _, params in call.callbacks]
